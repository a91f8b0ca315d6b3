"""Checkpoints of a training run, so that an interrupted run resumes where it stopped.

A checkpoint is keyed by everything that defines its run (the arguments, the training data),
so only the same run resumes from it; it holds the ``state_dict`` of each part (model,
optimiser, scheduler) and a counter (the step or epoch it was written after).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch


def run_checkpoint(cache_dir: Path, name: str, run: list) -> Path:
    """The checkpoint file of the run ``run`` (JSON-able) of artifact ``name``."""
    key = hashlib.sha1(json.dumps(run, sort_keys=True).encode()).hexdigest()[:12]
    path = Path(cache_dir) / "checkpoints" / f"{name}-{key}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def resume(path: Path, counter: str, **parts) -> int:
    """Load each part's state from the checkpoint at ``path`` where there is one: the
    ``counter`` it was written at (0 for a fresh run)."""
    if not path.exists():
        return 0
    state = torch.load(path, weights_only=True)
    for name, part in parts.items():
        part.load_state_dict(state[name])
    return state[counter]


def save_checkpoint(path: Path, counter: str, value: int, **parts) -> None:
    """Write each part's state and ``counter`` = ``value`` to ``path`` (whole or not at all)."""
    tmp = path.with_suffix(".tmp")
    torch.save({**{name: part.state_dict() for name, part in parts.items()}, counter: value}, tmp)
    tmp.replace(path)
