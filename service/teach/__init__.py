"""Teaching Radar a team's domain: labels, the active labeling queue, training and evaluating
team models, promotion and rollback.

Beside ``analytics``: may import ``store``, ``nlp``, ``ingest``, ``config`` and ``domain``.
"""
