"""E-mail sent by the worker from a transactional outbox: invitations and announcements."""
