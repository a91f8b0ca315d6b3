"""The micro-batcher: concurrent callers share model calls, each gets its own results, the
queue is bounded, a caller that stops waiting leaves it, and a failure reaches every caller."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC

import pytest

from service.nlp.batcher import MicroBatcher, Overloaded
from service.nlp.cancel import Cancelled, cancellable
from tests.conftest import FakeScorer


class Recording(FakeScorer):
    def __init__(self, gate: threading.Event | None = None, fail_on: str | None = None):
        self.calls: list[list[str]] = []
        self.gate = gate
        self.fail_on = fail_on

    def score(self, texts, languages=None):
        if self.gate is not None:
            self.gate.wait(5)
        self.calls.append(list(texts))
        if self.fail_on and self.fail_on in texts:
            raise ValueError("model failed")
        return super().score(texts, languages)


def _requests(n: int, size: int) -> list[list[str]]:
    return [
        [f"request {r} text {i} {'good' if (r + i) % 2 else 'bad'}" for i in range(size)]
        for r in range(n)
    ]


def test_concurrent_callers_share_calls_and_get_their_own_results():
    inner = Recording()
    batcher = MicroBatcher(inner, max_batch=64, max_wait_ms=30)
    reqs = _requests(12, 5)
    with ThreadPoolExecutor(12) as pool:
        got = list(pool.map(batcher.score, reqs))
    direct = [FakeScorer().score(r) for r in reqs]
    for g, d in zip(got, direct):
        assert [s.score for s in g] == [s.score for s in d]
        assert all((a.embedding == b.embedding).all() for a, b in zip(g, d))
    assert sorted(t for c in inner.calls for t in c) == sorted(t for r in reqs for t in r)
    assert len(inner.calls) < len(reqs)  # shared calls
    assert all(len(c) <= 64 for c in inner.calls)
    batcher.close()


def test_a_full_queue_is_refused_at_once():
    gate = threading.Event()
    inner = Recording(gate)
    batcher = MicroBatcher(inner, max_batch=4, max_wait_ms=1, max_queue=10)
    with ThreadPoolExecutor(4) as pool:
        first = pool.submit(
            batcher.score, ["a good one"] * 4
        )  # taken by the worker, which then blocks
        time.sleep(0.2)
        queued = [pool.submit(batcher.score, [f"q{i}"] * 4) for i in range(2)]  # 8 of 10 queued
        time.sleep(0.1)
        t0 = time.perf_counter()
        with pytest.raises(Overloaded):
            batcher.score(["x"] * 4)
        assert time.perf_counter() - t0 < 0.5
        gate.set()
        assert len(first.result(5)) == 4 and all(len(q.result(5)) == 4 for q in queued)
    batcher.close()


def test_a_caller_that_stops_waiting_leaves_the_queue():
    gate = threading.Event()
    inner = Recording(gate)
    batcher = MicroBatcher(inner, max_batch=2, max_wait_ms=1)
    stop = threading.Event()

    def waiting():
        with cancellable(stop):
            return batcher.score(["dropped one", "dropped two"])

    with ThreadPoolExecutor(2) as pool:
        busy = pool.submit(batcher.score, ["busy", "busy too"])
        time.sleep(0.2)
        gone = pool.submit(waiting)
        time.sleep(0.2)
        stop.set()
        with pytest.raises(Cancelled):
            gone.result(5)
        gate.set()
        busy.result(5)
    time.sleep(0.2)
    assert ["dropped one", "dropped two"] not in inner.calls
    batcher.close()


def test_a_failed_call_reaches_every_caller_and_the_worker_goes_on():
    gate = threading.Event()
    inner = Recording(gate, fail_on="boom")
    batcher = MicroBatcher(inner, max_batch=64, max_wait_ms=1)
    with ThreadPoolExecutor(3) as pool:
        first = pool.submit(batcher.score, ["first"])  # holds the worker while the next two queue
        time.sleep(0.2)
        a = pool.submit(batcher.score, ["boom"])
        b = pool.submit(batcher.score, ["innocent bystander"])
        time.sleep(0.2)
        gate.set()
        assert len(first.result(5)) == 1
        for f in (a, b):  # one shared call
            with pytest.raises(ValueError):
                f.result(5)
    assert len(batcher.score(["after the failure"])) == 1
    batcher.close()


def test_the_api_shares_the_model_and_answers_503_when_its_queue_is_full(sqlite_url, make_runtime):
    from datetime import datetime

    from fastapi.testclient import TestClient

    from service.api.app import create_app

    gate = threading.Event()
    inner = Recording(gate)
    rt = make_runtime(sqlite_url, scorer=inner, scoring={"queue_max_items": 6, "batch_wait_ms": 20})
    at = datetime(2026, 5, 1, tzinfo=UTC).isoformat()

    def items(tag: str, n: int) -> dict:
        return {
            "items": [
                {
                    "source": "t",
                    "external_id": f"{tag}{i}",
                    "text": f"{tag} {i} good",
                    "created_at": at,
                    "language": "en",
                }
                for i in range(n)
            ]
        }

    with TestClient(create_app(runtime=rt)) as c, ThreadPoolExecutor(4) as pool:
        gate.set()
        assert (
            c.post("/v1/feedback", json=items("w", 1)).json()["created"] == 1
        )  # warm: the first load is slow
        gate.clear()
        inner.calls.clear()
        first = pool.submit(
            c.post, "/v1/feedback", json=items("a", 3)
        )  # the worker takes it and waits
        time.sleep(0.3)
        queued = [
            pool.submit(c.post, "/v1/feedback", json=items(t, 3)) for t in "bc"
        ]  # 6 of 6 queued
        time.sleep(0.3)
        r = c.post("/v1/feedback", json=items("d", 3))
        assert (
            r.status_code == 503
            and r.headers["Retry-After"] == "1"
            and "queue" in r.json()["error"]["message"]
        )
        gate.set()
        assert [f.result(10).json()["created"] for f in (first, *queued)] == [3, 3, 3]
    assert len(inner.calls) == 2  # b and c shared one model call
    assert sorted(inner.calls[1]) == sorted(f"{t} {i} good" for t in "bc" for i in range(3))


def test_a_runtime_serves_again_after_an_app_stopped(sqlite_url, make_runtime):
    from fastapi.testclient import TestClient

    from service.api.app import create_app

    rt = make_runtime(sqlite_url, scorer=FakeScorer())
    for _ in range(2):  # each app's lifespan closes the runtime's batcher at its end
        with TestClient(create_app(runtime=rt)) as c:
            r = c.post("/v1/score", json={"items": [{"text": "good noodles"}]})
            assert r.status_code == 200, r.text
