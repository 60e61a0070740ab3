"""``account_closing``: sent by ``portability.closure.account_close`` inside the closure's
transaction, before the account's data key is destroyed, with ``user_id`` (the login being
closed) and ``patient_id`` (its linked record, or None).

Receivers revoke what the account granted to others (sharing: connect
``sharing.services.revoke_all_for_account(user_id=...)``), and may return a dict of
counts, which go into the deletion receipt. A receiver that raises rolls the closure back:
nothing is deleted and no key destroyed.
"""

from django.dispatch import Signal

account_closing = Signal()
