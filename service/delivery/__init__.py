"""Delivery: email digests and webhooks (compose, charts, SMTP, webhook formats, outbox)."""
