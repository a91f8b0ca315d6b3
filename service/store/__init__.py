"""The store: engine and sessions (SQLite or PostgreSQL), tables, migrations, daily rollups, and
keyword-only query functions per resource (``repo`` for items and scores, ``alerts``,
``actions``, ``labels``, ``access``, ``themes``, ``rollups``). Nothing here commits unless its
docstring says so: callers own transactions.

May import ``nlp`` (score types), ``ingest`` (prepared items, the duplicate policy), ``config``
and ``domain``.
"""
