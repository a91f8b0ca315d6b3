"""Load test of the HTTP API: the real ``radar serve`` under N concurrent clients.

    .venv/bin/python benchmarks/load_test.py [--clients 8] [--duration 30] [--batch 20] [--rounds 2] [--pg]

A fresh database (SQLite file, or with ``--pg`` a throw-away PostgreSQL database), an ingest
key, a viewer key and an analyst key made directly in the store, then ``radar serve`` as a
subprocess on a loopback port with the real scoring model and access control on (as shipped),
the rate limit raised (``RADAR_API__RATE_LIMIT_PER_MINUTE``). Each client (a thread with its
own httpx connection) alternates ``POST /v1/feedback`` batches of demo items (English and
Chinese, ratings, emoji, contact details, cross-posts; unique external ids) with one read:
a ``GET /v1/feedback`` page (following ``next_cursor`` up to 5 pages),
``GET /v1/segments?dimension=region`` and ``GET /v1/alerts`` in turn, until its segment's
deadline or the request budget (``--max-requests`` for the run) is spent; requests in flight
at a deadline complete.

Baseline (``--baseline-clients``, 1) and concurrent (``--clients``) load run in the same run on
the same server, ``--duration`` seconds each, interleaved in ``--rounds`` segments per mode in
ABBA order (B C C B, then B C … for more rounds): the machine this runs on is shared, and interleaving makes other work
on it weigh on both modes alike, so the speed-up is a ratio measured under the same conditions.
Throughput is the work answered within the segments' windows over their length (a request
straddling a window edge counts for its share inside), so ramp-up and drain do not bias it.

After the load, read from the database itself: stored items == items the server acknowledged
as ``created`` (as sets of (source, external_id)), every item scored by the served model, no
duplicate key, aspects, attributes and the near-duplicate index complete, nothing stored that
was not sent, and a sample of stored scores matches a fresh ``POST /v1/score`` of the stored
text. Then a probe (``probes``; ``--no-probe`` skips it): the same new batch POSTed by two
clients at once, as a client retrying while its first attempt is still in flight, must be
acknowledged ``created`` once per item. The server's CPU time per mode is read from /proc (CPU
ms per item is less sensitive to other load than wall-clock rates).

The load generator runs on the same machine as the server and takes a little of its CPU
(reported). Prints one JSON object; exits 1 when a request failed, a check or the probe failed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx  # noqa: E402
import radar_harness as h  # noqa: E402

READS = ("feedback_page", "segments", "alerts")


class Budget:
    """The shared bound on the number of requests of a phase."""

    def __init__(self, total: int):
        self.left = total
        self.lock = threading.Lock()

    def take(self) -> bool:
        with self.lock:
            if self.left <= 0:
                return False
            self.left -= 1
            return True


class ClientStats:
    def __init__(self):
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.status: Counter = Counter()  # "op status" -> n
        self.errors: Counter = Counter()  # "503", "exception:ReadTimeout", "item:rejected" -> n
        self.item_status: Counter = Counter()
        self.created: set[tuple[str, str]] = set()
        self.sent: dict[tuple[str, str], dict] = {}
        self.requests = 0
        self.spans: list[
            tuple[float, float, int]
        ] = []  # (start, end, items created) of answered requests


def _client(
    idx: int,
    *,
    base: str,
    keys: dict[str, str],
    deadline: float,
    budget: Budget,
    batch: int,
    page_size: int,
    timeout_s: float,
    seed: int,
    tag: str,
    stats: ClientStats,
) -> None:
    stream = h.item_stream(seed=seed + 1000 * idx, tag=f"{tag}-c{idx}")
    ingest_h, read_h = h.auth(keys["ingest"]), h.auth(keys["viewer"])
    reads = idx % len(READS)
    cursor, pages = None, 0
    n = 0
    with httpx.Client(base_url=base, timeout=httpx.Timeout(timeout_s, connect=10)) as c:
        while time.monotonic() < deadline and budget.take():
            if n % 2 == 0:
                op = "ingest"
                items = [next(stream) for _ in range(batch)]
                for it in items:
                    stats.sent[h.key_of(it)] = it
                req = lambda: c.post("/v1/feedback", json={"items": items}, headers=ingest_h)  # noqa: E731
            else:
                op = READS[reads % len(READS)]
                reads += 1
                if op == "feedback_page":
                    params = {"limit": page_size, **({"cursor": cursor} if cursor else {})}
                    req = lambda: c.get("/v1/feedback", params=params, headers=read_h)  # noqa: E731
                elif op == "segments":
                    req = lambda: c.get(
                        "/v1/segments", params={"dimension": "region"}, headers=read_h
                    )  # noqa: E731
                else:
                    req = lambda: c.get("/v1/alerts", headers=read_h)  # noqa: E731
            n += 1
            stats.requests += 1
            t0 = time.perf_counter()
            started = time.monotonic()
            try:
                r = req()
            except httpx.HTTPError as exc:
                stats.latency[op].append((time.perf_counter() - t0) * 1000)
                stats.status[f"{op} {type(exc).__name__}"] += 1
                stats.errors[f"exception:{type(exc).__name__}"] += 1
                continue
            stats.latency[op].append((time.perf_counter() - t0) * 1000)
            ended = time.monotonic()
            stats.status[f"{op} {r.status_code}"] += 1
            if r.status_code != 200:
                stats.errors[str(r.status_code)] += 1
                continue
            body = r.json()
            created = 0
            if op == "ingest":
                for res in body["items"]:
                    stats.item_status[res["status"]] += 1
                    if res["status"] == "created":
                        stats.created.add(h.key_of(items[res["index"]]))
                        created += 1
                    else:  # every id is new: anything but created is wrong
                        stats.errors[f"item:{res['status']}"] += 1
            stats.spans.append((started, ended, created))
            if op == "feedback_page":
                cursor, pages = (body.get("next_cursor"), pages + 1) if pages < 4 else (None, 0)
                if not cursor:
                    pages = 0


def _segment(
    *,
    clients: int,
    seconds: float,
    budget: int,
    server: h.Server,
    keys: dict[str, str],
    tag: str,
    **kw,
) -> dict:
    """``clients`` threads for ``seconds``; requests in flight at the deadline complete (the drain)."""
    stats = [ClientStats() for _ in range(clients)]
    b = Budget(budget)
    load, cpu0 = h.loadavg(), server.cpu_seconds()
    t0 = time.monotonic()
    deadline = t0 + seconds
    threads = [
        threading.Thread(
            target=_client,
            args=(i,),
            name=f"client-{i}",
            kwargs=dict(
                base=server.base,
                keys=keys,
                deadline=deadline,
                budget=b,
                tag=tag,
                stats=stats[i],
                **kw,
            ),
        )
        for i in range(clients)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    end = time.monotonic()
    cpu1 = server.cpu_seconds()
    return {
        "stats": stats,
        "t0": t0,
        "deadline": deadline,
        "window_s": min(seconds, end - t0),
        "drain_s": max(0.0, end - deadline),
        "server_cpu_s": (cpu1 - cpu0) if cpu0 is not None and cpu1 is not None else None,
        "loadavg": load,
    }


def _mode_report(clients: int, segments: list[dict]) -> dict:
    latency: dict[str, list[float]] = defaultdict(list)
    status, errors, item_status = Counter(), Counter(), Counter()
    created = 0
    for seg in segments:
        for s in seg["stats"]:
            for op, v in s.latency.items():
                latency[op].extend(v)
            status.update(s.status)
            errors.update(s.errors)
            item_status.update(s.item_status)
            created += len(s.created)
    window = sum(seg["window_s"] for seg in segments)
    # Work done within the windows: each answered request counts for the share of its duration
    # that lies inside its segment's window (requests straddling the start or the deadline
    # count in part), so neither the ramp-up nor the drain biases the rate.
    req_credit = item_credit = 0.0
    for seg in segments:
        for s in seg["stats"]:
            for a, b, n_created in s.spans:
                share = max(0.0, min(b, seg["deadline"]) - max(a, seg["t0"])) / max(b - a, 1e-9)
                req_credit += share
                item_credit += share * n_created
    cpu = [seg["server_cpu_s"] for seg in segments]
    cpu_s = sum(cpu) if None not in cpu else None
    busy = window + sum(seg["drain_s"] for seg in segments)
    return {
        "clients": clients,
        "segments": len(segments),
        "window_s": round(window, 2),
        "drain_s": round(sum(seg["drain_s"] for seg in segments), 2),
        "requests": sum(s.requests for seg in segments for s in seg["stats"]),
        "requests_per_s": round(req_credit / window, 2) if window else None,
        "items_acknowledged_created": created,
        "items_per_s": round(item_credit / window, 1) if window else None,
        "latency_ms": {op: h.percentiles(v) for op, v in sorted(latency.items())},
        "status_counts": dict(sorted(status.items())),
        "errors": dict(sorted(errors.items())),
        "error_count": sum(errors.values()),
        "item_statuses": dict(item_status),
        "cpu": {
            "server_cpu_s": round(cpu_s, 2) if cpu_s is not None else None,
            "server_cpu_utilisation": round(cpu_s / busy, 2)
            if cpu_s is not None and busy
            else None,
            "server_cpu_ms_per_item_created": round(1000 * cpu_s / created, 2)
            if cpu_s is not None and created
            else None,
            "loadavg_at_segment_starts": [seg["loadavg"] for seg in segments],
        },
    }


def resubmission_probe(
    server: h.Server,
    keys: dict[str, str],
    db_url: str,
    *,
    trials: int = 3,
    batch: int = 20,
    seed: int = 97,
) -> dict:
    """The same batch of new items POSTed by two clients at the same moment (a client retrying
    while its first attempt is still in flight, e.g. after a client timeout or a 503): each item
    must be stored once and acknowledged as ``created`` once (the other answer ``unchanged``)."""
    tag = f"rs{uuid.uuid4().hex[:6]}"
    acks: Counter = Counter()
    same_ids = True
    errors: Counter = Counter()
    for t in range(trials):
        items = h.demo_items(batch, seed=seed + t, tag=f"{tag}-{t}")
        answers: list = [None, None]
        barrier = threading.Barrier(2)

        def post(i: int) -> None:
            barrier.wait()
            try:
                answers[i] = httpx.post(
                    server.base + "/v1/feedback",
                    json={"items": items},
                    headers=h.auth(keys["ingest"]),
                    timeout=300,
                )
            except httpx.HTTPError as exc:
                answers[i] = exc

        threads = [threading.Thread(target=post, args=(i,)) for i in range(2)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        bodies = []
        for a in answers:
            if isinstance(a, Exception) or a.status_code != 200:
                errors[type(a).__name__ if isinstance(a, Exception) else str(a.status_code)] += 1
                continue
            bodies.append(a.json())
            for res in a.json()["items"]:
                acks[res["status"]] += 1
        if len(bodies) == 2:
            same_ids &= [r["id"] for r in bodies[0]["items"]] == [
                r["id"] for r in bodies[1]["items"]
            ]
    stored = sum(1 for _, ext in h.store_snapshot(db_url)["ids"] if ext.startswith(tag + "-"))
    return {
        "ok": not errors and acks["created"] == stored == trials * batch and same_ids,
        "trials": trials,
        "items_per_batch": batch,
        "distinct_items": trials * batch,
        "stored": stored,
        "acknowledged": dict(acks),
        "acknowledged_created": acks["created"],
        "same_ids_in_both_answers": same_ids,
        "errors": dict(errors),
    }


def run(
    *,
    clients: int = 8,
    duration_s: float = 30,
    baseline_clients: int = 1,
    rounds: int = 2,
    batch: int = 20,
    max_requests: int = 20000,
    db: str = "sqlite",
    workdir: Path | None = None,
    rate_limit: int = 1_000_000,
    page_size: int = 50,
    timeout_s: float = 300,
    seed: int = 11,
    spot_check: int = 100,
    server_env: dict[str, str] | None = None,
    probe: bool = True,
) -> dict:
    """Baseline and concurrent load on one fresh store and server, interleaved in ``rounds`` rounds
    (ABBA order) so that other work on the machine weighs on both alike; then the checks."""
    tmp = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="radar-load-")
        workdir = Path(tmp.name)
    database = h.fresh_database(db, Path(workdir))
    server = None
    try:
        keys = h.create_keys(database.url, ["ingest", "viewer", "analyst"])
        server = h.Server(
            database.url,
            Path(workdir),
            env_extra={"RADAR_API__RATE_LIMIT_PER_MINUTE": str(rate_limit), **(server_env or {})},
        )
        health = server.start(keys["viewer"])
        run_tag = f"lt{uuid.uuid4().hex[:6]}"
        seg_s = duration_s / rounds
        seg_budget = max(1, max_requests // (2 * rounds))
        segments: dict[str, list[dict]] = {"baseline": [], "concurrent": []}
        order: list[str] = []
        client_cpu0 = time.process_time()
        for r in range(rounds):
            for mode in ("baseline", "concurrent") if r % 2 == 0 else ("concurrent", "baseline"):
                n = baseline_clients if mode == "baseline" else clients
                segments[mode].append(
                    _segment(
                        clients=n,
                        seconds=seg_s,
                        budget=seg_budget,
                        server=server,
                        keys=keys,
                        tag=f"{run_tag}-{mode[0]}{r}",
                        batch=batch,
                        page_size=page_size,
                        timeout_s=timeout_s,
                        seed=seed + 100_000 * len(order),
                    )
                )
                order.append(mode)
        client_cpu = time.process_time() - client_cpu0

        created: set[tuple[str, str]] = set()
        sent: dict[tuple[str, str], dict] = {}
        for segs in segments.values():
            for seg in segs:
                for s in seg["stats"]:
                    created |= s.created
                    sent.update(s.sent)
        snap = h.store_snapshot(database.url)
        stored = set(snap["ids"])
        checks = {
            "stored_equals_acknowledged_created": {
                "ok": stored == created,
                "stored": snap["count"],
                "acknowledged_created": len(created),
                "acknowledged_but_missing": len(created - stored),
                "stored_not_acknowledged": len(stored - created),
            }
        }
        checks.update(h.integrity_checks(snap, model_version=health["model_version"], sent=sent))
        sample = (
            sorted(snap["ids"].values())[:: max(1, snap["count"] // spot_check)][:spot_check]
            if spot_check
            else []
        )
        checks["scores_match_items"] = h.score_spot_check(
            server.base, keys["analyst"], database.url, sample
        )
        probes = (
            {
                "concurrent_resubmission_acknowledged_once": resubmission_probe(
                    server, keys, database.url
                )
            }
            if probe
            else {}
        )
        log = server.log_tail(10**6)
        server.stop()
    finally:
        if server:
            server.kill9()
        database.drop()
        if tmp:
            tmp.cleanup()

    base = _mode_report(baseline_clients, segments["baseline"])
    conc = _mode_report(clients, segments["concurrent"])

    def ratio(k: str) -> float | None:
        return round(conc[k] / base[k], 2) if base[k] and conc[k] is not None else None

    errors = base["error_count"] + conc["error_count"]
    tracebacks = log.count("Traceback")
    return {
        "benchmark": "load_test",
        "database": "postgresql" if db in ("pg", "postgresql") else "sqlite",
        "scorer": "real: radar serve with the configured pipeline",
        "model_version": health["model_version"],
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "settings": {
            "clients": clients,
            "baseline_clients": baseline_clients,
            "duration_s_per_mode": duration_s,
            "rounds": rounds,
            "order": order,
            "batch_items": batch,
            "max_requests": max_requests,
            "rate_limit_per_minute": rate_limit,
            "server_env": server_env or {},
            "page_size": page_size,
            "client_timeout_s": timeout_s,
            "mix": "each client alternates POST /v1/feedback with one read: a feedback page (following "
            "next_cursor), segments?dimension=region, alerts in turn",
            "throughput": "answered requests (and items acknowledged as created) within the segments' "
            "windows / their total length, a request straddling a window's start or deadline "
            "counting for the share of its duration inside; requests in flight at a deadline "
            "complete (drain_s) and count in latencies and in the checks",
        },
        "baseline": base,
        "concurrent": conc,
        "speedup": {
            "requests_per_s": ratio("requests_per_s"),
            "items_per_s": ratio("items_per_s"),
            "server_cpu_per_item": (
                round(
                    conc["cpu"]["server_cpu_ms_per_item_created"]
                    / base["cpu"]["server_cpu_ms_per_item_created"],
                    2,
                )
                if conc["cpu"]["server_cpu_ms_per_item_created"]
                and base["cpu"]["server_cpu_ms_per_item_created"]
                else None
            ),
        },
        "errors_total": errors,
        "load_generator_cpu_s": round(client_cpu, 2),
        "server_log_tracebacks": tracebacks,
        "checks": checks,
        "probes": probes,
        "ok": errors == 0
        and tracebacks == 0
        and all(c["ok"] for c in checks.values())
        and all(p["ok"] for p in probes.values()),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument(
        "--duration",
        dest="duration_s",
        metavar="DURATION",
        type=float,
        default=30,
        help="Seconds of load per mode (baseline, concurrent).",
    )
    ap.add_argument("--baseline-clients", type=int, default=1)
    ap.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="Baseline and concurrent segments alternate (ABBA) this many rounds; each mode runs "
        "--duration seconds in all.",
    )
    ap.add_argument("--batch", type=int, default=20, help="Items per POST /v1/feedback.")
    ap.add_argument(
        "--max-requests",
        type=int,
        default=20000,
        help="Bound on the requests of the whole run (split evenly over the segments).",
    )
    h.add_database_option(ap, "A throw-away PostgreSQL database instead of SQLite.")
    ap.add_argument(
        "--rate-limit", type=int, default=1_000_000, help="RADAR_API__RATE_LIMIT_PER_MINUTE."
    )
    ap.add_argument("--page-size", type=int, default=50)
    ap.add_argument("--timeout", type=float, default=300, help="Client timeout per request (s).")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument(
        "--no-probe",
        dest="probe",
        action="store_false",
        help="Skip the probe that POSTs the same new batch from two clients at once.",
    )
    ap.add_argument(
        "--workdir", type=Path, default=None, help="Keep databases and server logs here."
    )
    ap.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="RADAR_X=VALUE",
        help="Extra environment of the server, e.g. RADAR_SCORING__THREADS=1 (repeatable).",
    )
    options = vars(ap.parse_args(argv))  # run()'s keywords, but for these two:
    options["timeout_s"] = options.pop("timeout")
    options["server_env"] = dict(kv.split("=", 1) for kv in options["server_env"])
    report = run(**options)
    h.write_json(report)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
