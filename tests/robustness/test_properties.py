"""Property-based checks (hypothesis, seeded: the same examples every run) on both databases.

- Ingest: generated batches of good and broken items posted to ``POST /v1/feedback`` with an
  ingest key. Every bad row is answered ``rejected`` at its index with the broken field named,
  nothing is a 5xx, the good rows are stored (exactly created + updated of them), posting the
  same batch again creates and changes nothing, and no stored item is lost or changed by
  rows that are rejected (bad rows aimed at stored items' keys included).
- Data scope: generated keys with random region/brand scopes and generated filters:
  ``GET /v1/feedback`` (every page), ``/v1/segments?dimension=region`` and ``/v1/trends``
  return and count exactly the items that the filter and the key's scope allow, computed in
  Python from the seeded items: never one outside the scope (trends' ``items``, share of
  voice's denominator, stays within a brand-scoped key's brands: a test of its own).
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, event, example, given, note, settings
from hypothesis import strategies as st
from sqlalchemy import select

from service.api.app import create_app
from service.store import access
from service.store.tables import FeedbackRow, ScoreRow
from tests.analytics.conftest import AspectKeywordScorer
from tests.robustness._hypothesis import REPEATABLE
from tests.robustness._store import AGES, BRANDS, CHANNELS, REGIONS, SECURED, START, seed_items

SETTINGS = dict(
    **REPEATABLE,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)
MAX_TEXT = 20_000  # limits.max_text_chars
UTC = UTC


def _post(client, items, key):
    # ensure_ascii so that lone surrogates travel as JSON escapes, as a careless client sends them
    return client.post(
        "/v1/feedback",
        content=json.dumps({"items": items}, ensure_ascii=True),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )


# --- ingest -------------------------------------------------------------------------------

SEEDED = 30
PIECES = [
    "too spicy",
    "lovely flavour",
    "the box arrived crushed",
    "courier late",
    "好吃",
    "太辣了",
    "包装破了",
    "очень остро",
    "حار جدا",
    "매워요",
    "😀🍜🔥",
    "👨‍👩‍👧 family pack",
    "cafe\u0301",
    "Ｆｕｌｌ ｗｉｄｔｈ",
    "ok",
]
visible_text = st.builds(
    lambda parts, noise: " ".join(parts) + noise,
    st.lists(st.sampled_from(PIECES), min_size=1, max_size=4),
    st.text(st.characters(codec="utf-8"), max_size=12),
)
moments = st.datetimes(
    min_value=datetime(2001, 1, 1),
    max_value=datetime(2035, 12, 31),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5))]),
)
timestamps = st.one_of(
    moments.map(lambda d: d.isoformat()),
    moments.map(lambda d: int(d.timestamp())),
    moments.map(lambda d: int(d.timestamp() * 1000)),
    moments.map(lambda d: d.strftime("%Y/%m/%d %H:%M:%S")),
)
optional = {
    "channel": st.sampled_from(CHANNELS + ("support", "other")),
    "brand": st.sampled_from(BRANDS + ("辣之源", "Noodle King ™")),
    "region": st.one_of(
        st.sampled_from(REGIONS),
        st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=20),
    ),
    "product": st.sampled_from(["cup", "bowl", "杯面"]),
    "rating": st.integers(0, 5),
    "language": st.sampled_from(["en", "zh", "ru"]),
    "author": st.text(st.characters(codec="utf-8"), min_size=1, max_size=30),
    "attributes": st.dictionaries(
        st.sampled_from(["age_group", "tier", "城市"]),
        st.one_of(st.sampled_from(AGES), st.integers(0, 99)),
        max_size=2,
    ),
}


@st.composite
def good_item(draw) -> dict:
    item = {
        "source": draw(st.sampled_from(["shop", "tmall", "app.v2", "Hot-Line"])),
        "text": draw(visible_text),
        "created_at": draw(timestamps),
    }
    for name in draw(st.lists(st.sampled_from(sorted(optional)), unique=True, max_size=5)):
        item[name] = draw(optional[name])
    return item


DROP = object()  # the field is left out
# every breakage: (the field it breaks, the value it gets, or DROP)
BREAKAGES = [(f, DROP) for f in ("source", "external_id", "text", "created_at")] + [
    (field, value)
    for field, values in {
        "text": [
            123,
            4.5,
            True,
            ["a"],
            {"a": 1},  # wrong types
            "辣" * (MAX_TEXT + 1),
            "x" * (MAX_TEXT + 2500),  # huge
            "",
            "   ",
            "\u200b\u200b",
            "\x00",
            "\ufeff\u2060",
            "\t\n",  # empty (or invisible)
            "abc \ud800 def",
            "\udfff",
            "x\udc80y",
        ],  # lone surrogates: not UTF-8
        "created_at": [
            True,
            ["2026-03-02"],
            {"at": 1},
            "not a date",
            "2026-13-45T00:00:00",
            "31/02/2026",
            "",
            "   ",
            "9999-12-31T23:59:59Z",
            "0001-01-01T00:00:00+05:00",
            1e20,
            -1e20,
            "1e400",
            "NaN",
            "2026-03-02T25:61:00",
            "\ud800",
        ],
        "rating": ["five", [5], 6, -1, 1e9],
        "channel": ["fax", "REVIEW", 5, "评论"],  # unknown channel
        "attributes": [
            [1, 2],
            "not json",
            {"k": [1]},
            {"k": {"x": 1}},
            {"k": "v\x00"},
            {"k": "\ud800"},
        ],
        "region": [["East"], {"r": 1}, "x" * 129, "East\ud800", "E\x00ast"],
        "brand": ["\udcff", "spice\x00well", "b" * 129],
        "external_id": ["\ud800", "id\x00", "i" * 257, ["a"]],
        "source": ["two words", "🍜", "s" * 65, "sh\x00p", "\ud83d"],
        "language": ["x" * 17, "e\x00n"],
        "colour": ["red"],  # a field the dictionary does not have
    }.items()
    for value in values
]


def _break(item: dict, field: str, value) -> dict:
    return (
        {k: v for k, v in item.items() if k != field} if value is DROP else {**item, field: value}
    )


@st.composite
def rows(draw) -> list[tuple[dict, str | None, bool]]:
    """A batch: (item without its key, the field it breaks or None, aimed at a stored item's key)."""
    out = []
    for _ in range(draw(st.integers(1, 8))):
        item = draw(good_item())
        broken = None
        if draw(st.integers(0, 2)) == 0:  # a third of the rows are broken
            broken, value = draw(st.sampled_from(BREAKAGES))
            item = _break(item | {"external_id": "placeholder"}, broken, value)
        out.append((item, broken, draw(st.booleans()) if draw(st.integers(0, 3)) == 0 else False))
    return out


_calls = itertools.count()


def _keyed(
    batch, stored_keys: list[tuple[str, str]]
) -> tuple[list[dict], list[tuple[str, str] | None]]:
    """Fill in external ids: fresh ones, unique per call, or a stored item's (source, id), each
    stored key at most once per batch (one key twice in a batch is its own case: the earlier
    row is rejected, tests/store/test_store.py)."""
    call, items, keys = next(_calls), [], []
    offset = call % len(stored_keys)
    used = set()
    for i, (item, broken, at_stored) in enumerate(batch):
        item = dict(item)
        ext = f"c{call}-{i}"
        stored = stored_keys[(offset + i) % len(stored_keys)]
        if at_stored and stored not in used:
            used.add(stored)
            source, ext = stored
            if broken != "source":
                item["source"] = source
            if broken is None:
                item["text"] = f"{item['text']} (edited {call})"  # an update: new content
        if broken != "external_id":
            item["external_id"] = ext
        items.append(item)
        keys.append((str(item["source"]).lower(), ext) if broken is None else None)
    return items, keys


def _snapshot(rt) -> dict[tuple[str, str], tuple]:
    with rt.sessions() as s:
        rows_ = s.execute(
            select(
                FeedbackRow.source,
                FeedbackRow.external_id,
                FeedbackRow.id,
                FeedbackRow.text,
                FeedbackRow.content_hash,
                FeedbackRow.created_at,
                FeedbackRow.region,
                FeedbackRow.brand,
                FeedbackRow.updated_at,
                ScoreRow.sentiment,
                ScoreRow.model_version,
            ).outerjoin(ScoreRow, ScoreRow.feedback_id == FeedbackRow.id)
        ).all()
    return {(r[0], r[1]): tuple(r[2:]) for r in rows_}


@pytest.fixture
def ingest_api(db_url, make_runtime):
    rt = make_runtime(db_url, scorer=AspectKeywordScorer(), api=SECURED)
    stored = seed_items(SEEDED, seed=5)
    assert rt.ingest_service().ingest(list(enumerate(stored))).counts["created"] == SEEDED
    with rt.sessions() as s:
        key = access.create_key(s, role="ingest", actor="test")[1]
    with TestClient(create_app(runtime=rt)) as client:
        yield rt, client, key, [(r["source"], r["external_id"]) for r in stored]


ALL_BAD = [
    ({"source": "shop", "external_id": "placeholder", "created_at": "2026-03-02"}, "text", True),
    (
        {
            "source": "shop",
            "external_id": "placeholder",
            "text": "too spicy",
            "created_at": "not a date",
        },
        "created_at",
        True,
    ),
    (
        {
            "source": "shop",
            "external_id": "placeholder",
            "text": "x",
            "created_at": "2026-03-02",
            "channel": "fax",
        },
        "channel",
        True,
    ),
]


@settings(max_examples=100, **SETTINGS)
@given(batch=rows())
@example(batch=ALL_BAD)  # only bad rows, each aimed at a stored item
def test_ingest_names_every_bad_row_and_stores_exactly_the_good_ones(ingest_api, batch):
    for _, broken, at_stored in batch:
        event(
            f"row: {'good' if broken is None else 'broken ' + broken}{' at a stored key' if at_stored else ''}"
        )
    _post_and_check(ingest_api, batch)


def test_a_batch_with_every_kind_of_bad_row(ingest_api):
    """Each breakage at least once (the property above mixes them at random), half of them
    aimed at stored items, between good rows."""
    good = {
        "source": "shop",
        "text": "too spicy 太辣了 😀",
        "created_at": "2026-03-02T10:00:00+08:00",
    }
    batch = [(good | {"region": "East"}, None, False)]
    for n, (field, value) in enumerate(BREAKAGES):
        batch.append(
            (_break(good | {"external_id": "placeholder"}, field, value), field, n % 2 == 0)
        )
        if n % 5 == 0:
            batch.append((good | {"text": f"lovely flavour {n}"}, None, n % 10 == 0))
    _post_and_check(ingest_api, batch)


def _post_and_check(ingest_api, batch):
    rt, client, key, stored_keys = ingest_api
    items, keys = _keyed(batch, stored_keys)
    before = _snapshot(rt)

    r = _post(client, items, key)
    assert r.status_code == 200, r.text[:500]
    body = r.json()
    answered = body["items"]
    assert [a["index"] for a in answered] == list(range(len(items)))
    for (_, broken, _), a in zip(batch, answered):
        if broken is None:
            assert a["status"] in ("created", "updated"), a
            assert a["id"] is not None and not a["errors"]
        else:
            named = {
                f.split(" ")[0].split(".")[0]
                for e in a["errors"]
                for f in (e["field"] or "").split(",")
            }
            assert a["status"] == "rejected" and broken in named, (broken, a)
    good = [k for k in keys if k is not None]
    assert body["rejected"] == len(items) - len(good)
    assert body["created"] + body["updated"] == len(good)

    after = _snapshot(rt)
    assert len(after) - len(before) == body["created"]
    assert {k for k in good} <= set(after)
    assert body["updated"] == sum(k in before for k in good)
    for k, row in before.items():  # nothing stored is lost; only the good rows' own items change
        assert k in after, k
        if k not in good:
            assert after[k] == row, k
    ids = {after[k][0] for k in good}
    assert ids == {a["id"] for a in answered if a["status"] != "rejected"}

    again = _post(
        client, items, key
    )  # idempotent: the same batch again creates and changes nothing
    assert again.status_code == 200, again.text[:500]
    second = again.json()
    assert (second["created"], second["updated"], second["rejected"]) == (0, 0, body["rejected"])
    assert [a["status"] for a in second["items"]] == [
        "unchanged" if a["status"] != "rejected" else "rejected" for a in answered
    ]
    assert [a["errors"] for a in second["items"]] == [a["errors"] for a in answered]
    assert _snapshot(rt) == after


# --- data scope ------------------------------------------------------------------------------

SCOPE_ITEMS = 100
ASPECTS = ("taste", "packaging", "delivery", "price")
ATTRS = [f"age_group:{a}" for a in AGES] + ["tier:gold", "tier:basic", "tier:platinum"]


def _truth(items: list[dict]) -> list[dict]:
    """The seeded items with what the keyword scorer gives them (their sentiment and aspects)."""
    scored = AspectKeywordScorer().score([i["text"] for i in items])
    return [
        {
            **i,
            "created_at": datetime.fromisoformat(i["created_at"]),
            "sentiment": s.score.sentiment,
            "aspects": {a.aspect for a in s.score.aspects},
        }
        for i, s in zip(items, scored)
    ]


def _allowed(item: dict, q: dict, scope: dict) -> bool:
    for field, attr in (
        ("region", "region"),
        ("brand", "brand"),
        ("channel", "channel"),
        ("sentiment", "sentiment"),
    ):
        if q.get(field) and item[attr] not in q[field]:
            return False
    for field in ("region", "brand"):
        if scope[field] and item[field] not in scope[field]:
            return False
    if q.get("aspect") and not item["aspects"] & set(q["aspect"]):
        return False
    wanted: dict[str, set] = {}
    for pair in q.get("attr", []):
        name, value = pair.split(":", 1)
        wanted.setdefault(name, set()).add(value)
    if any(item["attributes"].get(n) not in vs for n, vs in wanted.items()):
        return False
    return (q.get("since") is None or item["created_at"] >= q["since"]) and (
        q.get("until") is None or item["created_at"] < q["until"]
    )


span = st.integers(0, SCOPE_ITEMS * 10 + 12).map(lambda h: START + timedelta(hours=h))
queries = st.fixed_dictionaries(
    {},
    optional={
        "region": st.lists(
            st.sampled_from(REGIONS + ("South",)), min_size=1, max_size=3, unique=True
        ),
        "brand": st.lists(
            st.sampled_from(BRANDS + ("nobrand",)), min_size=1, max_size=2, unique=True
        ),
        "channel": st.lists(
            st.sampled_from(CHANNELS + ("other",)), min_size=1, max_size=2, unique=True
        ),
        "sentiment": st.lists(
            st.sampled_from(["negative", "neutral", "positive"]),
            min_size=1,
            max_size=2,
            unique=True,
        ),
        "aspect": st.lists(st.sampled_from(ASPECTS), min_size=1, max_size=2, unique=True),
        "attr": st.lists(st.sampled_from(ATTRS), min_size=1, max_size=3, unique=True),
        "since": span,
        "until": span,
    },
)
scopes = st.fixed_dictionaries(
    {
        "region": st.lists(st.sampled_from(REGIONS + ("South",)), max_size=2, unique=True),
        "brand": st.lists(st.sampled_from(BRANDS + ("nobrand",)), max_size=2, unique=True),
        "role": st.sampled_from(["viewer", "analyst", "admin"]),
    }
)


def _params(q: dict) -> list[tuple[str, str]]:
    out = []
    for k, v in q.items():
        out += [(k, x) for x in v] if isinstance(v, list) else [(k, v.isoformat())]
    return out


@pytest.fixture
def scoped_api(db_url, make_runtime):
    rt = make_runtime(db_url, scorer=AspectKeywordScorer(), api=SECURED)
    items = seed_items(SCOPE_ITEMS)
    assert rt.ingest_service().ingest(list(enumerate(items))).counts["created"] == SCOPE_ITEMS
    truth = _truth(items)
    with rt.sessions() as s:  # the ground truth's assumptions hold in the store
        stored = {r.external_id: r for r in s.scalars(select(FeedbackRow))}
        for t in truth:
            row = stored[t["external_id"]]
            assert (
                row.duplicate_of is None
            )  # trends count only originals: the seeded texts differ enough
            assert (
                row.region,
                row.brand,
                row.channel,
                row.score.sentiment,
                {a.aspect for a in row.score.aspects},
            ) == (t["region"], t["brand"], t["channel"], t["sentiment"], t["aspects"])
    with TestClient(create_app(runtime=rt)) as client:
        yield rt, client, truth


@settings(max_examples=60, **SETTINGS)
@given(q=queries, scope=scopes, page=st.integers(3, 60))
def test_reads_never_leave_the_keys_scope(scoped_api, q, scope, page):
    rt, client, truth = scoped_api
    with rt.sessions() as s:
        key = access.create_key(
            s, role=scope["role"], actor="test", regions=scope["region"], brands=scope["brand"]
        )[1]
    h = {"Authorization": f"Bearer {key}"}
    params = _params(q)
    note(f"query {params}, key scope {scope}")
    if q.get("since") and q.get("until") and q["since"] >= q["until"]:
        assert client.get("/v1/feedback", params=params, headers=h).status_code == 422
        return
    unknown = (
        [v for v in q.get("region", []) if v == "South"]
        + [v for v in q.get("brand", []) if v == "nobrand"]
        + [v for v in q.get("aspect", []) if v == "price"]
    )
    if unknown:
        # a region no item has, a brand no list or item names, an aspect the taxonomy lacks: a
        # 422 that names it, never an empty answer that looks like "nothing happened there"
        for path, extra in (
            ("/v1/feedback", []),
            ("/v1/segments", [("dimension", "region")]),
            ("/v1/trends", []),
        ):
            r = client.get(path, params=params + extra, headers=h)
            assert r.status_code == 422 and any(f"'{v}'" in r.text for v in unknown), (
                path,
                r.text[:300],
            )
        return
    expected = [t for t in truth if _allowed(t, q, scope)]
    ids = {t["external_id"] for t in expected}

    seen, cursor = [], None  # every page
    for _ in range(SCOPE_ITEMS + 1):
        r = client.get(
            "/v1/feedback",
            params=params + [("limit", page)] + ([("cursor", cursor)] if cursor else []),
            headers=h,
        )
        assert r.status_code == 200, r.text[:300]
        seen += [i["external_id"] for i in r.json()["items"]]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) and set(seen) == ids, (
        sorted(set(seen) - ids),
        sorted(ids - set(seen)),
    )

    r = client.get("/v1/segments", params=params + [("dimension", "region")], headers=h)
    assert r.status_code == 200, r.text[:300]
    segs = {s["segment"]["region"]: s["volume"] for s in r.json()["segments"]}
    assert segs == dict(Counter(t["region"] for t in expected))
    assert r.json()["total"]["volume"] == len(expected)

    r = client.get("/v1/trends", params=params + [("bucket", "week")], headers=h)
    assert r.status_code == 200, r.text[:300]
    points = r.json()["points"]
    aspect = q["aspect"][-1] if q.get("aspect") else None  # the series' aspect: the last one named
    assert sum(p["mentions"] for p in points) == sum(
        aspect is None or aspect in t["aspects"] for t in expected
    )
    if not scope[
        "brand"
    ]:  # `items` (share of voice's denominator) spans the scope's brands: its own test below
        # in the window the filtered items give: up to just after the newest, 182 days (`days`) long
        newest = max((t["created_at"] for t in expected), default=None)
        until = q.get("until") or (newest and newest + timedelta(seconds=1))
        window = {
            "since": q.get("since") or (until and until - timedelta(days=182)),
            "until": until,
        }
        market = [
            t
            for t in truth
            if until and _allowed(t, {k: v for k, v in q.items() if k != "brand"} | window, scope)
        ]
        assert sum(p["items"] for p in points) == len(market)


def test_trends_items_stay_within_a_brand_scope(sqlite_url, make_runtime):
    rt = make_runtime(sqlite_url, scorer=AspectKeywordScorer(), api=SECURED)
    items = seed_items(SCOPE_ITEMS)
    rt.ingest_service().ingest(list(enumerate(items)))
    with rt.sessions() as s:
        key = access.create_key(s, role="viewer", actor="test", brands=["spicewell"])[1]
    with TestClient(create_app(runtime=rt)) as client:
        points = client.get("/v1/trends", headers={"Authorization": f"Bearer {key}"}).json()[
            "points"
        ]
    ours = sum(i["brand"] == "spicewell" for i in items)
    assert sum(p["mentions"] for p in points) == ours  # holds
    assert sum(p["items"] for p in points) <= ours  # the denominator stays within the scope
