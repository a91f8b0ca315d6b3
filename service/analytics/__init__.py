"""Analyses over stored, scored feedback: segment breakdowns and differences, themes."""
