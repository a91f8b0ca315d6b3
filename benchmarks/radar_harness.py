"""Shared pieces of the load and crash benchmarks: throw-away databases, API keys made in the
database, ``radar serve`` / ``radar ingest`` as real subprocesses, demo items, and the checks
that read the store directly (not through the API under test).

Used by ``benchmarks/load_test.py``, ``benchmarks/crash_safety.py`` and the short versions
in ``tests/robustness/``. Nothing here fakes the server: the subprocess is the ``radar``
command with the configured (real) scoring model.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
PG_ADMIN_URL = os.environ.get(
    "RADAR_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
RADAR = [sys.executable, "-m", "service.cli.main"]

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


# --- databases ------------------------------------------------------------------------------


@dataclass
class Database:
    kind: str  # sqlite | postgresql
    url: str
    _drop: str | None = None

    def drop(self) -> None:
        if self._drop:
            _on_server(PG_ADMIN_URL, f'DROP DATABASE IF EXISTS "{self._drop}" WITH (FORCE)')
            self._drop = None


def _on_server(admin_url: str, statement: str) -> None:
    """One statement on the PostgreSQL server of ``admin_url``, outside a transaction (CREATE
    or DROP DATABASE)."""
    from sqlalchemy import create_engine, text

    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            c.execute(text(statement))
    finally:
        admin.dispose()


def fresh_database(kind: str, workdir: Path) -> Database:
    """An empty SQLite file under ``workdir``, or a new PostgreSQL database (dropped by ``drop``)."""
    if kind == "sqlite":
        path = Path(workdir) / f"radar-{uuid.uuid4().hex[:8]}.db"
        return Database("sqlite", f"sqlite:///{path}")
    if kind in ("pg", "postgresql"):
        name = f"radar_bench_{uuid.uuid4().hex[:10]}"
        _on_server(PG_ADMIN_URL, f'CREATE DATABASE "{name}"')
        return Database("postgresql", PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}", _drop=name)
    raise ValueError(f"unknown database kind {kind!r}")


def add_database_option(ap: argparse.ArgumentParser, help: str) -> None:
    """``--pg``: the benchmark's ``db`` keyword, "pg" (throw-away PostgreSQL databases next to
    ``PG_ADMIN_URL``) or, without it, "sqlite"."""
    ap.add_argument(
        "--pg", dest="db", action="store_const", const="pg", default="sqlite", help=help
    )


@contextmanager
def pg_database(admin_url: str = PG_ADMIN_URL):
    """A throw-away PostgreSQL database next to ``admin_url`` for the block: its URL."""
    name = f"radar_bench_{uuid.uuid4().hex[:8]}"
    _on_server(admin_url, f'CREATE DATABASE "{name}"')
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        _on_server(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def create_keys(url: str, roles: Iterable[str]) -> dict[str, str]:
    """Migrate the store and make one API key per role directly in it: ``{role: "rk_…"}``."""
    from service.config import Settings
    from service.runtime import Runtime
    from service.store.access import create_key

    rt = Runtime(Settings(database_url=url))
    try:
        with rt.sessions() as s:
            return {
                role: create_key(s, role=role, actor="benchmark", name=f"benchmark {role}")[1]
                for role in roles
            }
    finally:
        rt.close()


def radar_env(url: str, **extra: str) -> dict[str, str]:
    """Environment of a ``radar`` subprocess: the given store, access control on (as shipped,
    whatever the calling process has), no progress bars."""
    env = dict(os.environ)
    env.update(
        {
            "RADAR_DATABASE_URL": url,
            "RADAR_API__AUTH": "true",
            "RADAR_NO_PROGRESS": "1",
            "HF_HUB_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update({k: str(v) for k, v in extra.items()})
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- subprocesses ---------------------------------------------------------------------------


class ServerError(RuntimeError):
    pass


@dataclass
class Server:
    """``radar serve`` in a subprocess on a loopback port."""

    url: str
    workdir: Path
    env_extra: dict[str, str] = field(default_factory=dict)
    port: int = 0
    proc: subprocess.Popen | None = None
    log_path: Path | None = None
    starts: int = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, health_key: str, timeout: float = 240.0) -> dict:
        """Start and wait until ``/v1/health`` answers ok; returns the health body."""
        self.port = self.port or free_port()
        self.starts += 1
        self.log_path = Path(self.workdir) / f"serve-{self.port}-{self.starts}.log"
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            RADAR + ["serve", "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=REPO,
            env=radar_env(self.url, **self.env_extra),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=5) as c:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise ServerError(
                        f"radar serve exited with {self.proc.returncode}:\n{self.log_tail()}"
                    )
                try:
                    r = c.get(self.base + "/v1/health", headers=auth(health_key))
                    if r.status_code == 200 and r.json().get("status") == "ok":
                        return r.json()
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
        self.kill9()
        raise ServerError(f"radar serve not ready within {timeout:g} s:\n{self.log_tail()}")

    def kill9(self) -> None:
        """SIGKILL, as a crash: no shutdown handlers run."""
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill9()

    def cpu_seconds(self) -> float | None:
        """User + system CPU time the server process has used so far (all its threads)."""
        return (
            process_cpu_seconds(self.proc.pid) if self.proc and self.proc.poll() is None else None
        )

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:] if self.log_path else ""
        except OSError:
            return ""


def process_cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def loadavg() -> list[float] | None:
    """The 1/5/15-minute load averages: other work on the machine skews every timing."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def start_ingest(url: str, file: Path, log_path: Path, *args: str, **env: str) -> subprocess.Popen:
    """``radar ingest FILE`` in a subprocess (stdout: its one-line JSON summary, stderr: the log)."""
    out = open(log_path, "wb")
    err = open(log_path.with_suffix(".stderr"), "wb")
    try:
        return subprocess.Popen(
            RADAR + ["ingest", str(file), *args],
            cwd=REPO,
            env=radar_env(url, **env),
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
    finally:
        out.close()
        err.close()


# --- items ----------------------------------------------------------------------------------


def item_stream(*, seed: int, tag: str):
    """An endless stream of demo items (a new generator seed whenever one is used up), with
    external ids ``{tag}-0000001``… unique across sources."""
    from service.demo.generator import DemoConfig, DemoGenerator

    n = 0
    while True:
        for row, _ in DemoGenerator(DemoConfig(per_week=100, weeks=26, seed=seed)).items():
            n += 1
            item = {
                k: row[k]
                for k in (
                    "source",
                    "channel",
                    "text",
                    "created_at",
                    "brand",
                    "product",
                    "region",
                    "rating",
                    "rating_scale",
                    "author",
                )
                if row.get(k) is not None
            }
            item["external_id"] = f"{tag}-{n:07d}"
            item["attributes"] = {
                "age_group": row["age_group"],
                "customer_tier": row["customer_tier"],
            }
            yield item
        seed += 7919


def demo_items(n: int, *, seed: int, tag: str) -> list[dict]:
    """``n`` realistic items (English and Chinese, ratings, emoji, typos, contact details,
    cross-posts) from the demo generator, in the API's data dictionary, with external ids
    ``{tag}-0000001``… that are unique across sources."""
    stream = item_stream(seed=seed, tag=tag)
    return [next(stream) for _ in range(n)]


def key_of(item: dict) -> tuple[str, str]:
    return (item["source"].lower(), str(item["external_id"]))


def percentiles(values: list[float], qs=(50, 95, 99), digits: int = 1) -> dict[str, float]:
    """Linear-interpolated percentiles (and n, mean, max) in the values' unit."""
    if not values:
        return {"n": 0}
    v = sorted(values)
    out: dict[str, float] = {"n": len(v)}
    for q in qs:
        pos = (len(v) - 1) * q / 100
        lo = int(pos)
        hi = min(lo + 1, len(v) - 1)
        out[f"p{q}"] = round(v[lo] + (v[hi] - v[lo]) * (pos - lo), digits)
    out["mean"] = round(sum(v) / len(v), digits)
    out["max"] = round(v[-1], digits)
    return out


# --- the store, read directly ---------------------------------------------------------------


def store_snapshot(url: str) -> dict:
    """Everything the checks need, read straight from the database (SQL, not the API)."""
    from sqlalchemy import text

    from service.config import Settings
    from service.store.db import make_engine

    aspects = {a.id for a in Settings(database_url=url).taxonomy.aspects}
    engine = make_engine(url)
    try:
        with engine.connect() as c:
            q = lambda sql: c.execute(text(sql)).all()  # noqa: E731
            rows = q(
                "SELECT f.id, f.source, f.external_id, s.feedback_id IS NOT NULL, s.model_version, "
                "f.minhash IS NOT NULL FROM feedback f LEFT JOIN score s ON s.feedback_id = f.id"
            )
            attrs = dict(
                q("SELECT feedback_id, COUNT(*) FROM feedback_attribute GROUP BY feedback_id")
            )
            banded = {r[0] for r in q("SELECT DISTINCT feedback_id FROM feedback_band")}
            aspect_rows = q(
                "SELECT a.feedback_id, a.aspect, a.sentiment, a.confidence, a.sentiment_score, "
                "s.feedback_id IS NOT NULL FROM aspect_score a "
                "LEFT JOIN score s ON s.feedback_id = a.feedback_id"
            )
            orphan_scores = q(
                "SELECT COUNT(*) FROM score s LEFT JOIN feedback f ON f.id = s.feedback_id "
                "WHERE f.id IS NULL"
            )[0][0]
            bad_scores = q(
                "SELECT COUNT(*) FROM score WHERE sentiment NOT IN ('negative','neutral','positive') "
                "OR sentiment_score < -1 OR sentiment_score > 1 OR embedding IS NULL "
                "OR abs(p_negative + p_neutral + p_positive - 1) > 0.01"
            )[0][0]
            dup_keys = q(
                "SELECT source, external_id, COUNT(*) FROM feedback GROUP BY source, external_id "
                "HAVING COUNT(*) > 1"
            )
    finally:
        engine.dispose()
    bad_aspects = sum(
        1
        for _, a, sent, conf, ss, has_score in aspect_rows
        if not has_score
        or a not in aspects
        or sent not in ("negative", "neutral", "positive")
        or not (0 <= conf <= 1)
        or not (-1 <= ss <= 1)
    )
    return {
        "ids": {(src, ext): fid for fid, src, ext, *_ in rows},
        "count": len(rows),
        "unscored": [fid for fid, _, _, scored, _, _ in rows if not scored],
        "model_versions": sorted({mv for *_, mv, _ in rows if mv}),
        "version_of": {fid: mv for fid, _, _, _, mv, _ in rows},
        "attributes": attrs,
        "minhash_without_bands": sum(1 for fid, *_, mh in rows if mh and fid not in banded),
        "aspect_rows": len(aspect_rows),
        "bad_aspect_rows": bad_aspects,
        "orphan_scores": orphan_scores,
        "bad_scores": bad_scores,
        "duplicate_keys": [(s, e, n) for s, e, n in dup_keys],
    }


def integrity_checks(
    snap: dict, *, model_version: str | None, sent: dict[tuple[str, str], dict] | None = None
) -> dict[str, dict]:
    """Store-wide invariants: no partial item, no duplicate key, consistent aspects, and (given
    what was sent) nothing stored that was never sent and every stored sent item has its
    attributes. Each check: ``{"ok": bool, ...figures}``."""
    checks = {
        "no_duplicate_keys": {
            "ok": not snap["duplicate_keys"],
            "duplicates": len(snap["duplicate_keys"]),
            "examples": [list(d) for d in snap["duplicate_keys"][:5]],
        },
        "every_item_scored": {
            "ok": not snap["unscored"],
            "unscored": len(snap["unscored"]),
            "examples": snap["unscored"][:5],
        },
        "scores_valid": {
            "ok": snap["bad_scores"] == 0 and snap["orphan_scores"] == 0,
            "invalid": snap["bad_scores"],
            "orphans": snap["orphan_scores"],
        },
        "aspects_consistent": {
            "ok": snap["bad_aspect_rows"] == 0,
            "aspect_rows": snap["aspect_rows"],
            "invalid_or_orphan": snap["bad_aspect_rows"],
        },
        "near_duplicate_index_complete": {
            "ok": snap["minhash_without_bands"] == 0,
            "items_with_signature_but_no_bands": snap["minhash_without_bands"],
        },
    }
    if model_version:
        stale = sum(1 for mv in snap["version_of"].values() if mv and mv != model_version)
        checks["scored_by_served_model"] = {
            "ok": stale == 0,
            "other_version": stale,
            "model_versions": snap["model_versions"],
        }
    if sent is not None:
        phantom = [k for k in snap["ids"] if k not in sent]
        missing_attrs = [
            k
            for k, fid in snap["ids"].items()
            if k in sent and snap["attributes"].get(fid, 0) != len(sent[k].get("attributes") or {})
        ]
        checks["nothing_unsent_stored"] = {
            "ok": not phantom,
            "unsent": len(phantom),
            "examples": [list(k) for k in phantom[:5]],
        }
        checks["attributes_complete"] = {
            "ok": not missing_attrs,
            "items_with_wrong_attribute_count": len(missing_attrs),
            "examples": [list(k) for k in missing_attrs[:5]],
        }
    return checks


def score_spot_check(base: str, key: str, url: str, sample_ids: list[int]) -> dict:
    """Stored scores belong to their item: rescore a sample of stored texts through the
    stateless ``POST /v1/score`` and compare the sentiment score with the stored one.

    A text's scores do not depend on the batch it was scored in (the int8 encoder quantises
    each token on its own; the heads run in float64), so every stored score must equal the
    fresh one to its stored 4 decimals: a score stored against the wrong item, or a scorer
    that depends on batch neighbours, fails."""
    from sqlalchemy import bindparam, text

    from service.store.db import make_engine

    if not sample_ids:
        return {"ok": True, "sampled": 0}
    engine = make_engine(url)
    try:
        with engine.connect() as c:
            rows = c.execute(
                text(
                    "SELECT f.id, f.text, s.sentiment_score FROM feedback f JOIN score s "
                    "ON s.feedback_id = f.id WHERE f.id IN :ids"
                ).bindparams(bindparam("ids", expanding=True)),
                {"ids": sample_ids},
            ).all()
    finally:
        engine.dispose()
    if not rows:
        return {"ok": False, "sampled": 0, "reason": "no stored score for the sampled ids"}
    r = httpx.post(
        base + "/v1/score",
        headers=auth(key),
        timeout=300,
        json={"items": [{"id": str(i), "text": t} for i, t, _ in rows]},
    )
    r.raise_for_status()
    fresh = {int(x["id"]): x["sentiment_score"] for x in r.json()["results"]}
    diffs = [abs(fresh[i] - s) for i, _, s in rows]
    q = percentiles(diffs, (50, 90), digits=4)
    return {
        "ok": max(diffs) <= 1e-4,
        "sampled": len(rows),
        "differing": sum(d > 1e-4 for d in diffs),
        "abs_sentiment_score_diff": {"p50": q["p50"], "p90": q["p90"], "max": q["max"]},
    }


def write_json(obj: dict) -> None:
    print(json.dumps(obj, indent=2, ensure_ascii=False, default=str), flush=True)
