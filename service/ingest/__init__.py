"""Ingest: readers (CSV, JSONL, Parquet, API payloads), column mapping, validation,
normalisation, language id, PII redaction, and de-duplication (fingerprints and the policy that
says when two items are one voice).

May import ``config`` and ``domain`` only: no database, no model.
"""
