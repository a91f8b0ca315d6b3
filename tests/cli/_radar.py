"""`radar` run as the command it is: a subprocess of this interpreter from the repository root."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RADAR = [sys.executable, "-m", "service.cli.main"]


def radar(args: list[str], url: str, **env: str) -> subprocess.CompletedProcess:
    """``radar ARGS`` on the store at ``url`` (``env`` added to this process's environment, less
    COLUMNS: the command sizes its output itself, as when piped), its output captured as text."""
    e = {**os.environ, "RADAR_NO_PROGRESS": "1", "RADAR_DATABASE_URL": url, **env}
    e.pop("COLUMNS", None)
    return subprocess.run(
        [*RADAR, *args], cwd=ROOT, env=e, capture_output=True, text=True, timeout=600
    )
