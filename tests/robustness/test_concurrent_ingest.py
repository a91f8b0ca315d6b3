"""Two writers of the same items at once: each item is answered "created" exactly once.

The race is forced, not hoped for: the scorer of both ingests waits at a barrier, so both
have looked the items up (and found nothing) before either writes. What each row is answered
must then come from the write transaction, under the key lock.
"""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from service.store.tables import FeedbackRow
from tests.conftest import FakeScorer


class BarrierScorer(FakeScorer):
    def __init__(self, parties: int):
        self.barrier = threading.Barrier(parties, timeout=30)

    def score(self, texts, languages=None):
        self.barrier.wait()
        return super().score(texts, languages)


def _rows(n: int, text: str = "the box arrived crushed, bad") -> list[tuple[int, dict]]:
    return [
        (
            i,
            {
                "source": "shop",
                "channel": "review",
                "external_id": f"r{i}",
                "text": f"{text} #{i}",
                "created_at": "2026-05-04T10:00:00Z",
                "region": "East",
            },
        )
        for i in range(n)
    ]


def _race(rt, batches: list[list[tuple[int, dict]]]):
    reports, errors = [None] * len(batches), []

    def run(k):
        try:
            reports[k] = rt.ingest_service().ingest(batches[k])
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(len(batches))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    with rt.sessions() as s:
        stored = s.scalar(select(func.count()).select_from(FeedbackRow))
    return reports, stored


def test_the_same_new_batch_twice_at_once_is_created_once(db_url, make_runtime):
    rt = make_runtime(db_url, scorer=BarrierScorer(2))
    reports, stored = _race(rt, [_rows(40), _rows(40)])
    assert stored == 40
    for i in range(40):
        statuses = sorted(r.results[i].status.value for r in reports)
        assert statuses == ["created", "unchanged"], (i, statuses)
        assert reports[0].results[i].id == reports[1].results[i].id


def test_overlapping_batches_with_different_text_one_created_one_updated(db_url, make_runtime):
    """Two batches in opposite key order (a deadlock if the locks were not taken sorted)."""
    rt = make_runtime(db_url, scorer=BarrierScorer(2))
    a = _rows(30)
    b = list(reversed(_rows(30, text="great taste, love it")))
    reports, stored = _race(rt, [a, b])
    assert stored == 30
    by_ext = [{r.external_id: r.status.value for r in rep.results} for rep in reports]
    for ext in by_ext[0]:
        assert sorted((by_ext[0][ext], by_ext[1][ext])) == ["created", "updated"], ext


@pytest.mark.parametrize("parties", [3])
def test_three_writers_one_created(db_url, make_runtime, parties):
    rt = make_runtime(db_url, scorer=BarrierScorer(parties))
    reports, stored = _race(rt, [_rows(10) for _ in range(parties)])
    assert stored == 10
    created = sum(r.counts["created"] for r in reports)
    unchanged = sum(r.counts["unchanged"] for r in reports)
    assert (created, unchanged) == (10, 10 * (parties - 1))
