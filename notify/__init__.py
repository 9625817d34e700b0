"""Invitation delivery: SMTP email with an ``.ics`` (RFC 5545), SMS gateways, a persisted outbox with retries;
built by the scheduling issue."""
