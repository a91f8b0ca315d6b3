"""Delivery: email digests and webhooks (compose, charts, SMTP, webhook formats, the outbox and its
scheduler), for the subscriptions people keep.

May import ``analytics``, ``store``, ``nlp``, ``ingest``, ``config`` and ``domain``; never
``alerts`` (alerts are read from the store) or anything above.
"""
