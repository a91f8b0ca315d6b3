"""Alerts: typed rules from ``configs/alerts.yaml`` (``rules``), rule families that turn analyses
into findings (``families``), the engine that runs them, and the alert lifecycle (dedupe, cool
down, acknowledge, resolve).

May import ``analytics``, ``store``, ``nlp``, ``ingest``, ``config`` and ``domain``; never
``delivery`` (notifiers read alerts from the store) or anything above.
"""
