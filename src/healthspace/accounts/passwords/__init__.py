"""Passwords and registration: password rules, basic account registration with email
confirmation, change of password, reset by email, and the password help page."""
