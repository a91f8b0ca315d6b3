"""Batch jobs on one machine: ingest (validate, prepare, score, store in chunks, resumable) and
scoring files without a store.

May import ``store``, ``nlp``, ``ingest``, ``config`` and ``domain``. The runtime builds the
ingest service from here; the Ray engine above the runtime (``service.scale``) runs these jobs
on a cluster.
"""
