"""Batch jobs on a Ray cluster (``radar ingest|score --engine ray``).

Above ``service.runtime``: each Ray worker builds its own ``Runtime`` and runs the same job
code as one machine does (``service.jobs``). Imported only where the Ray engine is asked for;
``ray`` itself is imported inside the functions that need it.
"""
