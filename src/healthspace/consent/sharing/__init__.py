"""Sharing a record: grants to another HealthSpace account, proxies approved by the
practice, one-time share codes for a professional, and the pause a patient can use when
someone is pressuring them to share (docs/sharing.md)."""
