"""Crash safety: ``kill -9`` the server and the ingest job mid-write, then check the store.

    .venv/bin/python benchmarks/crash_safety.py [--items 4000] [--clients 4] [--rows-per-week 120] [--pg]

(a) ``radar serve`` (real model, access control on) on a fresh store; ``--clients`` threads
    send ``--items`` demo items in batches of ``--batch`` to ``POST /v1/feedback``. Once
    ``--kill-after`` of the batches are acknowledged, while the other clients' requests are in
    flight, the server gets SIGKILL. It is restarted on the same store and, read from the
    database itself: every acknowledged item is stored exactly once under the id the server
    answered, with its score by the served model; no partial item (every stored item has its
    score, its attributes and, when it has a MinHash signature, its band rows; every aspect row
    has its score and a taxonomy aspect); no duplicate (source, external_id); nothing stored that
    was never sent; a sample of stored scores matches a fresh ``POST /v1/score`` of the stored
    text. Then the clients resend everything (a retry): every item already stored must answer
    ``unchanged`` and every other ``created``, and the final count must equal the distinct items
    sent, with the same invariants.
(b) ``radar ingest FILE`` on a demo CSV (``--rows-per-week`` × 26 rows plus cross-posts) into a
    fresh store, SIGKILLed once ``--ingest-kill-at`` of its rows are stored (plus a random part
    of one chunk's time, so the kill lands anywhere in a chunk), the store checked, then rerun
    to completion: the stored count equals the file's distinct valid rows, the rerun stores
    only what was missing (created = valid − stored at the kill, unchanged = stored at the kill),
    no duplicate, every item scored, the same invariants.

Prints one JSON object with the figures and each check's pass/fail; exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx  # noqa: E402
import radar_harness as h  # noqa: E402


def _ok(checks: dict) -> bool:
    return all(c["ok"] for c in checks.values())


def _report(settings: dict, figures: dict, checks: dict[str, dict]) -> dict:
    """One part's report: ``checks`` by stage ("crash", then the retry's), ok if all are."""
    return {
        "settings": settings,
        "figures": figures,
        **{f"checks_after_{stage}": c for stage, c in checks.items()},
        "ok": all(_ok(c) for c in checks.values()),
    }


def _spot_check(server: h.Server, key: str, url: str, snapshot: dict, n: int) -> dict:
    """``n`` stored items, spread over the store's ids, rescored through the API and compared
    with what the store holds for them."""
    ids = sorted(snapshot["ids"].values())
    sample = ids[:: max(1, len(ids) // n)][:n] if n else []
    return h.score_spot_check(server.base, key, url, sample)


# --- (a) the server ---------------------------------------------------------------------------


class _Sender:
    """One client: sends its batches in order; on the first failure (the server died) it stops."""

    def __init__(self, base: str, key: str, batches: list[list[dict]], timeout_s: float):
        self.base, self.key, self.batches, self.timeout_s = base, key, batches, timeout_s
        self.acked: dict[tuple[str, str], tuple[str, int | None]] = {}  # key -> (status, id)
        self.done = 0  # batches acknowledged
        self.failed: list[int] = []  # batches whose request failed (in flight at the crash)
        self.errors: Counter = Counter()
        self.in_flight = False
        self.statuses: Counter = Counter()

    def run(self, stop_on_error: bool = True) -> None:
        with httpx.Client(
            base_url=self.base, timeout=httpx.Timeout(self.timeout_s, connect=5)
        ) as c:
            for i, batch in enumerate(self.batches):
                self.in_flight = True
                try:
                    r = c.post("/v1/feedback", json={"items": batch}, headers=h.auth(self.key))
                except httpx.HTTPError as exc:
                    self.in_flight = False
                    self.errors[f"exception:{type(exc).__name__}"] += 1
                    self.failed.append(i)
                    if stop_on_error:
                        return
                    continue
                self.in_flight = False
                if r.status_code != 200:
                    self.errors[str(r.status_code)] += 1
                    self.failed.append(i)
                    if stop_on_error:
                        return
                    continue
                for res in r.json()["items"]:
                    self.statuses[res["status"]] += 1
                    self.acked[h.key_of(batch[res["index"]])] = (res["status"], res["id"])
                self.done += 1


def _split(items: list[dict], clients: int, batch: int) -> list[list[list[dict]]]:
    per = [items[i::clients] for i in range(clients)]
    return [[p[j : j + batch] for j in range(0, len(p), batch)] for p in per]


def server_crash(
    *,
    items: int = 4000,
    clients: int = 4,
    batch: int = 50,
    kill_after: float = 0.3,
    db: str = "sqlite",
    workdir: Path,
    seed: int = 23,
    timeout_s: float = 600,
    spot_check: int = 100,
) -> dict:
    database = h.fresh_database(db, workdir)
    server = None
    try:
        keys = h.create_keys(database.url, ["ingest", "viewer", "analyst"])
        sent_items = h.demo_items(items, seed=seed, tag=f"cs{uuid.uuid4().hex[:6]}")
        sent = {h.key_of(it): it for it in sent_items}
        plan = _split(sent_items, clients, batch)
        total_batches = sum(len(p) for p in plan)
        server = h.Server(
            database.url, workdir, env_extra={"RADAR_API__RATE_LIMIT_PER_MINUTE": "1000000"}
        )
        health = server.start(keys["viewer"])
        version = health["model_version"]

        # 1. load, and SIGKILL once enough batches are acknowledged
        senders = [_Sender(server.base, keys["ingest"], p, timeout_s) for p in plan]
        threads = [
            threading.Thread(target=s.run, name=f"sender-{i}") for i, s in enumerate(senders)
        ]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        killed_at = in_flight_at_kill = None
        while any(t.is_alive() for t in threads):
            if sum(s.done for s in senders) >= kill_after * total_batches:
                in_flight_at_kill = sum(s.in_flight for s in senders)
                server.kill9()
                killed_at = time.monotonic() - t0
                break
            time.sleep(0.02)
        for t in threads:
            t.join()
        exit_code = server.proc.returncode if server.proc else None
        acked = {k: v for s in senders for k, v in s.acked.items()}
        acked_batches = sum(s.done for s in senders)
        failed_batches = sum(len(s.failed) for s in senders)
        unacked_sent = {h.key_of(it) for s in senders for i in s.failed for it in s.batches[i]}

        # 2. restart on the same store; check what the crash left
        t1 = time.monotonic()
        health2 = server.start(keys["viewer"])
        restart_s = time.monotonic() - t1
        snap = h.store_snapshot(database.url)
        stored = snap["ids"]
        missing = [k for k in acked if k not in stored]
        wrong_id = [k for k, (_, i) in acked.items() if k in stored and stored[k] != i]
        checks_crash = {
            "killed_mid_ingest": {
                "ok": killed_at is not None
                and exit_code == -9
                and 0 < acked_batches < total_batches
                and (in_flight_at_kill or 0) > 0,
                "exit_code": exit_code,
                "batches_acknowledged": acked_batches,
                "batches_in_flight": in_flight_at_kill,
                "batches_total": total_batches,
            },
            "acknowledged_items_stored": {
                "ok": not missing and not wrong_id,
                "acknowledged": len(acked),
                "missing": len(missing),
                "stored_under_another_id": len(wrong_id),
                "examples": [list(k) for k in (missing + wrong_id)[:5]],
            },
            "acknowledged_as_created": {
                "ok": all(st == "created" for st, _ in acked.values()),
                "statuses": dict(Counter(st for st, _ in acked.values())),
            },
            "restarted": {
                "ok": health2.get("status") == "ok",
                "restart_s": round(restart_s, 1),
                "health_items": health2.get("items"),
                "stored": snap["count"],
            },
        }
        checks_crash.update(h.integrity_checks(snap, model_version=version, sent=sent))
        checks_crash["scores_match_items"] = _spot_check(
            server, keys["analyst"], database.url, snap, spot_check
        )
        stored_before_resend = set(stored)

        # 3. the clients retry: resend everything
        resenders = [_Sender(server.base, keys["ingest"], p, timeout_s) for p in plan]
        rthreads = [
            threading.Thread(target=s.run, kwargs={"stop_on_error": False}) for s in resenders
        ]
        t2 = time.monotonic()
        for t in rthreads:
            t.start()
        for t in rthreads:
            t.join()
        resend_s = time.monotonic() - t2
        r_acked = {k: v for s in resenders for k, v in s.acked.items()}
        r_errors = sum((s.errors for s in resenders), Counter())
        wrong_status = [
            k
            for k, (st, _) in r_acked.items()
            if st != ("unchanged" if k in stored_before_resend else "created")
        ]
        final = h.store_snapshot(database.url)
        id_changed = [k for k in stored_before_resend if final["ids"].get(k) != stored[k]]
        checks_final = {
            "resend_all_acknowledged": {
                "ok": not r_errors and len(r_acked) == len(sent),
                "acknowledged": len(r_acked),
                "errors": dict(r_errors),
            },
            "resend_statuses": {
                "ok": not wrong_status,
                "statuses": dict(sum((s.statuses for s in resenders), Counter())),
                "expected_unchanged": len(stored_before_resend),
                "expected_created": len(sent) - len(stored_before_resend),
                "unexpected": len(wrong_status),
                "examples": [list(k) for k in wrong_status[:5]],
            },
            "final_count_equals_distinct_sent": {
                "ok": final["count"] == len(sent) and set(final["ids"]) == set(sent),
                "stored": final["count"],
                "distinct_sent": len(sent),
            },
            "stored_ids_stable": {"ok": not id_changed, "changed": len(id_changed)},
        }
        checks_final.update(h.integrity_checks(final, model_version=version, sent=sent))
        checks_final["scores_match_items"] = _spot_check(
            server, keys["analyst"], database.url, final, spot_check
        )
        log = server.log_tail(10**6)
        server.stop()
        return _report(
            {
                "items": items,
                "clients": clients,
                "batch_items": batch,
                "kill_after_fraction": kill_after,
            },
            {
                "items_sent": len(sent),
                "batches_total": total_batches,
                "killed_after_s": round(killed_at, 2) if killed_at is not None else None,
                "batches_acknowledged_before_kill": acked_batches,
                "items_acknowledged_before_kill": len(acked),
                "batches_in_flight_at_kill": in_flight_at_kill,
                "batches_failed": failed_batches,
                "items_in_flight": len(unacked_sent),
                "in_flight_items_stored_anyway": len(unacked_sent & set(stored)),
                "stored_after_restart": snap["count"],
                "restart_s": round(restart_s, 1),
                "resend_s": round(resend_s, 1),
                "stored_final": final["count"],
                "server_log_tracebacks_after_restart": log.count("Traceback"),
            },
            {"crash": checks_crash, "resend": checks_final},
        )
    finally:
        if server:
            server.kill9()
        database.drop()


# --- (b) radar ingest FILE --------------------------------------------------------------------


def _expected_rows(file: Path) -> tuple[dict[tuple[str, str], dict], int, int]:
    """The file's valid rows as the CLI reads them: {key: {"attributes": …}}, valid rows, invalid rows."""
    from service.config import Settings
    from service.ingest.mapping import ColumnMapping
    from service.ingest.readers import RowError, read_records
    from service.runtime import Runtime

    validator = Runtime(Settings()).validator(ColumnMapping.from_pairs(None, None, None))
    valid: dict[tuple[str, str], dict] = {}
    n_valid = n_bad = 0
    for row, rec in read_records(file):
        got = rec if isinstance(rec, RowError) else validator.validate(row, rec)
        if isinstance(got, RowError):
            n_bad += 1
            continue
        n_valid += 1
        valid[(got.source, got.external_id)] = {"attributes": dict(got.attributes)}
    return valid, n_valid, n_bad


def _count(url: str) -> int:
    from sqlalchemy import text

    from service.store.db import make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as c:
            return c.execute(text("SELECT COUNT(*) FROM feedback")).scalar() or 0
    except Exception:  # noqa: BLE001 - the table may not exist yet
        return 0
    finally:
        engine.dispose()


def _summary(path: Path) -> dict | None:
    for line in reversed(path.read_text(errors="replace").splitlines()):
        try:
            return json.loads(line)
        except ValueError:
            continue
    return None


def ingest_crash(
    *,
    rows_per_week: int = 120,
    kill_at: float = 0.35,
    db: str = "sqlite",
    workdir: Path,
    seed: int = 29,
    chunk_size: int | None = None,
    timeout_s: float = 900,
    spot_check: int = 100,
) -> dict:
    from service.config import Settings
    from service.demo.generator import DemoConfig, write_demo
    from service.runtime import Runtime

    file = Path(workdir) / f"demo-{uuid.uuid4().hex[:6]}.csv"
    write_demo(file, DemoConfig(per_week=rows_per_week, weeks=26, seed=seed))
    with open(file, encoding="utf-8", newline="") as fh:
        file_rows = sum(1 for _ in csv.DictReader(fh))
    expected, n_valid, n_bad = _expected_rows(file)
    version = Runtime(Settings()).registry.pipeline_version(Settings().scorer)
    env = {"RADAR_INGEST__CHUNK_SIZE": str(chunk_size)} if chunk_size else {}
    database = h.fresh_database(db, workdir)
    server = None
    try:
        # 1. run until enough is stored, then SIGKILL a random part of a chunk later
        proc = h.start_ingest(database.url, file, Path(workdir) / "ingest-1.out", **env)
        t0 = time.monotonic()
        rng = random.Random(seed)
        last, changes = 0, []
        delay = None
        while proc.poll() is None and time.monotonic() - t0 < timeout_s:
            n = _count(database.url)
            if n != last:
                changes.append(time.monotonic())
                last = n
            if n >= kill_at * len(expected):
                gap = changes[-1] - changes[-2] if len(changes) >= 2 else 0.0
                delay = rng.uniform(0, gap)
                time.sleep(delay)
                break
            time.sleep(0.05)
        finished_first = proc.poll() is not None
        if not finished_first:
            proc.kill()  # SIGKILL
        proc.wait(60)
        killed_after = time.monotonic() - t0
        at_kill = h.store_snapshot(database.url)
        checks_crash = {
            "killed_mid_ingest": {
                "ok": not finished_first
                and proc.returncode == -9
                and 0 < at_kill["count"] < len(expected),
                "exit_code": proc.returncode,
                "stored_at_kill": at_kill["count"],
                "valid_rows": len(expected),
            },
        }
        checks_crash.update(h.integrity_checks(at_kill, model_version=version, sent=expected))

        # 2. rerun to completion
        out2 = Path(workdir) / "ingest-2.out"
        t1 = time.monotonic()
        proc2 = h.start_ingest(database.url, file, out2, **env)
        try:
            proc2.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc2.kill()
            proc2.wait(60)
        rerun_s = time.monotonic() - t1
        summary = _summary(out2) or {}
        final = h.store_snapshot(database.url)
        stored_at_kill = set(at_kill["ids"])
        id_changed = [k for k in stored_at_kill if final["ids"].get(k) != at_kill["ids"][k]]
        checks_final = {
            "rerun_succeeded": {
                "ok": proc2.returncode == 0,
                "exit_code": proc2.returncode,
                "stderr_tail": (
                    out2.with_suffix(".stderr").read_text(errors="replace")[-500:]
                    if proc2.returncode
                    else ""
                ),
            },
            "final_count_equals_valid_rows": {
                "ok": final["count"] == len(expected) and set(final["ids"]) == set(expected),
                "stored": final["count"],
                "distinct_valid_rows": len(expected),
            },
            "rerun_stored_only_the_rest": {
                "ok": (
                    summary.get("created") == len(expected) - len(stored_at_kill)
                    and summary.get("unchanged") == len(stored_at_kill)
                    and summary.get("updated") == 0
                    and summary.get("rejected") == n_bad
                ),
                "summary": summary,
                "expected_created": len(expected) - len(stored_at_kill),
                "expected_unchanged": len(stored_at_kill),
                "expected_rejected": n_bad,
            },
            "stored_ids_stable": {"ok": not id_changed, "changed": len(id_changed)},
        }
        checks_final.update(h.integrity_checks(final, model_version=version, sent=expected))
        if spot_check:  # rescore a sample through the API, served from this store
            keys = h.create_keys(database.url, ["analyst"])
            server = h.Server(database.url, workdir)
            server.start(keys["analyst"])
            checks_final["scores_match_items"] = _spot_check(
                server, keys["analyst"], database.url, final, spot_check
            )
            server.stop()
        return _report(
            {
                "rows_per_week": rows_per_week,
                "kill_at_fraction": kill_at,
                "chunk_size": chunk_size or Settings().ingest.chunk_size,
                "format": "csv",
            },
            {
                "file_rows": file_rows,
                "valid_rows": n_valid,
                "invalid_rows": n_bad,
                "distinct_valid_keys": len(expected),
                "killed_after_s": round(killed_after, 2),
                "kill_delay_into_chunk_s": round(delay, 2) if delay is not None else None,
                "stored_at_kill": at_kill["count"],
                "rerun_s": round(rerun_s, 1),
                "rerun_summary": summary,
                "stored_final": final["count"],
            },
            {"crash": checks_crash, "rerun": checks_final},
        )
    finally:
        if server:
            server.kill9()
        database.drop()


def run(
    *,
    items: int = 4000,
    clients: int = 4,
    batch: int = 50,
    kill_after: float = 0.3,
    rows_per_week: int = 120,
    ingest_kill_at: float = 0.35,
    chunk_size: int | None = None,
    db: str = "sqlite",
    workdir: Path | None = None,
    seed: int = 23,
    spot_check: int = 100,
    parts: tuple[str, ...] = ("server", "ingest"),
) -> dict:
    tmp = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="radar-crash-")
        workdir = Path(tmp.name)
    try:
        report: dict = {
            "benchmark": "crash_safety",
            "database": "postgresql" if db in ("pg", "postgresql") else "sqlite",
        }
        # where both parts keep their store, and how many stored items they spot-check
        store = {"db": db, "workdir": Path(workdir), "spot_check": spot_check}
        if "server" in parts:
            report["server_kill"] = server_crash(
                items=items, clients=clients, batch=batch, kill_after=kill_after, seed=seed, **store
            )
        if "ingest" in parts:
            report["ingest_kill"] = ingest_crash(
                rows_per_week=rows_per_week,
                kill_at=ingest_kill_at,
                chunk_size=chunk_size,
                seed=seed + 6,
                **store,
            )
    finally:
        if tmp:
            tmp.cleanup()
    report["ok"] = all(report[p]["ok"] for p in ("server_kill", "ingest_kill") if p in report)
    report["failed_checks"] = [
        f"{p}.{stage}.{name}"
        for p in ("server_kill", "ingest_kill")
        if p in report
        for stage, checks in report[p].items()
        if stage.startswith("checks")
        for name, c in checks.items()
        if not c["ok"]
    ]
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--items", type=int, default=4000, help="(a) items sent to the server.")
    ap.add_argument("--clients", type=int, default=4, help="(a) concurrent clients.")
    ap.add_argument("--batch", type=int, default=50, help="(a) items per POST /v1/feedback.")
    ap.add_argument(
        "--kill-after",
        type=float,
        default=0.3,
        help="(a) share of batches acknowledged before the kill.",
    )
    ap.add_argument(
        "--rows-per-week", type=int, default=120, help="(b) demo rows per week (26 weeks)."
    )
    ap.add_argument(
        "--ingest-kill-at",
        type=float,
        default=0.35,
        help="(b) share of rows stored before the kill.",
    )
    ap.add_argument(
        "--chunk-size",
        type=int,
        default=None,
        help="(b) RADAR_INGEST__CHUNK_SIZE (default: configured).",
    )
    ap.add_argument("--only", choices=("server", "ingest"), default=None)
    h.add_database_option(ap, "Throw-away PostgreSQL databases instead of SQLite.")
    ap.add_argument("--seed", type=int, default=23)
    ap.add_argument(
        "--workdir", type=Path, default=None, help="Keep databases, files and logs here."
    )
    options = vars(ap.parse_args(argv))  # run()'s keywords
    only = options.pop("only")
    report = run(**options, parts=(only,) if only else ("server", "ingest"))
    h.write_json(report)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
