"""Hypothesis settings shared by the seeded robustness checks."""

# the same examples every run (no example database), no deadline (a slow machine fails
# nothing), and a failure printed with the blob that replays it
REPEATABLE = dict(derandomize=True, database=None, deadline=None, print_blob=True)
