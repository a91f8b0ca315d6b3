"""Series in UTC buckets on both databases: zero-filled periods, DST-crossing timestamps, brand
share of voice, tracked phrases, and the trend/forecast endpoints."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient

from service.analytics.trends import SeriesError, floor, periods, series
from service.api.app import create_app
from service.store.repo import FeedbackFilter
from tests.analytics.conftest import AspectKeywordScorer

UTC = UTC


def _rows(specs):
    return [
        {
            "source": "t",
            "channel": "review",
            "external_id": f"t{i}",
            "text": text,
            "language": "en",
            "created_at": ts,
            "brand": brand,
            "region": "East",
        }
        for i, (ts, text, brand) in enumerate(specs)
    ]


def test_week_and_day_floors_are_utc_mondays_and_midnights():
    t = datetime(
        2026, 3, 29, 1, 30, tzinfo=timezone(timedelta(hours=2))
    )  # Sunday 23:30 UTC on the 28th
    assert floor(t, "day") == datetime(2026, 3, 28, tzinfo=UTC)
    assert floor(t, "week") == datetime(2026, 3, 23, tzinfo=UTC)
    assert floor(t, "hour") == datetime(2026, 3, 28, 23, tzinfo=UTC)
    assert (
        len(periods(datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 30, tzinfo=UTC), "week"))
        == 4
    )
    with pytest.raises(SeriesError, match="bucket"):
        periods(datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 3, tzinfo=UTC), "month")
    with pytest.raises(SeriesError, match="at most"):
        periods(datetime(2000, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC), "hour")


def test_series_buckets_across_a_daylight_saving_change_and_fills_gaps(db_url, make_runtime):
    """Europe/Berlin moved to summer time at 2026-03-29 01:00 UTC. Local timestamps with their
    offsets on either side land in the UTC day they belong to; empty days are zero rows."""
    specs = [
        ("2026-03-28T23:30:00+01:00", "too spicy now", "spicewell"),  # 22:30 UTC on the 28th
        ("2026-03-29T00:30:00+01:00", "too spicy again", "spicewell"),  # 23:30 UTC on the 28th
        ("2026-03-29T03:30:00+02:00", "lovely flavour", "spicewell"),  # 01:30 UTC on the 29th
        ("2026-03-29T23:59:00+02:00", "the box arrived crushed", "noodleking"),  # 21:59 UTC, 29th
        ("2026-04-01T12:00:00+00:00", "lovely flavour", "spicewell"),
    ]
    rt = make_runtime(db_url, scorer=AspectKeywordScorer())
    assert rt.ingest_service().ingest(list(enumerate(_rows(specs)))).counts["created"] == 5
    since, until = datetime(2026, 3, 28, tzinfo=UTC), datetime(2026, 4, 2, tzinfo=UTC)
    with rt.sessions() as s:
        day = series(s, flt=FeedbackFilter(), since=since, until=until, bucket="day")
        assert [p.day for p in day.periods] == [28, 29, 30, 31, 1]
        assert day.items.tolist() == [2, 2, 0, 0, 1]
        assert day.negative.tolist() == [2, 1, 0, 0, 0]
        assert (
            day.negative_share[2] is None and day.mean_sentiment[2] is None
        )  # nothing said: no share
        taste = series(
            s,
            flt=FeedbackFilter(brands=("spicewell",)),
            since=since,
            until=until,
            bucket="day",
            aspect="taste",
        )
        assert taste.mentions.tolist() == [2, 1, 0, 0, 1]
        assert taste.items.tolist() == [2, 2, 0, 0, 1]  # the segment: every brand
        assert taste.negative_share[:2] == [1.0, 0.0] and taste.share_of_voice[1] == 0.5
        week = series(s, flt=FeedbackFilter(), since=since, until=until, bucket="week")
        assert [p.isoformat()[:10] for p in week.periods] == ["2026-03-23", "2026-03-30"]
        assert week.items.tolist() == [4, 1]
        hour = series(
            s, flt=FeedbackFilter(), since=since, until=since + timedelta(days=2), bucket="hour"
        )
        assert (
            hour.items[22] == 1
            and hour.items[23] == 1
            and hour.items[25] == 1
            and hour.items.sum() == 4
        )


def test_all_zero_window_and_endpoints(sqlite_url, make_runtime):
    rt = make_runtime(sqlite_url, scorer=AspectKeywordScorer())
    rows = _rows(
        [
            (
                f"2026-03-{d:02d}T10:00:00+00:00",
                "too spicy now" if d > 20 else "lovely flavour",
                "spicewell",
            )
            for d in range(2, 29)
        ]
    )
    rt.ingest_service().ingest(list(enumerate(rows)))
    with rt.sessions() as s:
        empty = series(
            s,
            flt=FeedbackFilter(),
            since=datetime(2025, 1, 6, tzinfo=UTC),
            until=datetime(2025, 2, 3, tzinfo=UTC),
        )
        assert empty.items.tolist() == [0, 0, 0, 0] and empty.negative_share == [None] * 4
    with TestClient(create_app(runtime=rt)) as c:
        r = c.get("/v1/trends", params={"bucket": "day", "aspect": "taste", "days": 30})
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["points"]) >= 27 and body["trend"]["negative_share"]["direction"] == "up"
        f = c.get(
            "/v1/forecast",
            params={
                "metric": "negative_share",
                "aspect": "taste",
                "bucket": "day",
                "horizon": 3,
                "alpha": 0.1,
            },
        )
        assert f.status_code == 200, f.text
        fc = f.json()
        assert len(fc["forecast"]) == 3 and fc["alpha"] == 0.1 and fc["model"]
        assert all(0 <= p["lower"] <= p["mean"] <= p["upper"] <= 1 for p in fc["forecast"])
        assert c.get("/v1/trends", params={"bucket": "month"}).status_code == 422
        assert c.get("/v1/trends", params={"phrase_id": 99}).status_code == 404
        tp = c.post("/v1/tracked-phrases", json={"phrase": "  too   spicy ", "paraphrases": False})
        assert tp.status_code == 201 and tp.json()["phrase"] == "too spicy"
        assert (
            c.post("/v1/tracked-phrases", json={"phrase": "too spicy"}).json()["id"]
            == tp.json()["id"]
        )
        assert c.post("/v1/tracked-phrases", json={"phrase": ""}).status_code == 422
        ph = c.get(
            "/v1/trends", params={"bucket": "day", "phrase_id": tp.json()["id"], "days": 30}
        ).json()
        assert sum(p["mentions"] for p in ph["points"]) == 8  # the 21st to the 28th
