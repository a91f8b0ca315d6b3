"""NLP: the model registry (lazy, local-path loading), encoders and their local builds,
sentiment heads, the hybrid aspect tagger (taxonomy rules + relevance model + validated heads),
team models, and the scoring pipeline (batch in, scores out).

May import ``config`` and ``domain`` only: never the database, never the demo.
"""
