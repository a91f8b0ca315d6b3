"""Feedback Radar: customer feedback in, tagged and scored, analysed, alerted on and delivered.

The packages form layers, and imports point down them only (``tests/architecture`` checks every
import, at module top or inside a function):

    cli                                   the ``radar`` command
    api, web                              the HTTP API, the dashboard router and its assets
    scale, demo                           Ray batch jobs; the demo's generator and runner
    runtime                               Settings → the shared components (one composition root)
    alerts, delivery, jobs                rules and alert lifecycle; digests, webhooks, outbox; jobs
    analytics, teach                      segments, themes, trends, benchmark, effects; team models
    store                                 tables, migrations, keyword-only query functions
    nlp                                   encoders, sentiment, the hybrid aspect tagger
    ingest                                readers, mapping, validation, PII, language, duplicates
    config                                typed Settings from configs/*.yaml and RADAR_*
    domain                                the data dictionary (pydantic)

This module holds only ``__version__``, which any layer may read.
"""

__version__ = "0.1.0"
