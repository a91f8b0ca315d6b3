"""Analyses over stored, scored feedback: segment breakdowns and differences, themes, trends and
forecasts, shift detectors, the competitor benchmark, and action effects (difference in
differences).

May import ``store``, ``nlp``, ``ingest``, ``config`` and ``domain``. Never sends anything and
never imports ``alerts``, ``delivery`` or what is above them; ``teach`` is its neighbour, not a
dependency.
"""
