"""The alert engine on hand-built data with a known shift (both databases): one alert for the
shifted cell and none elsewhere, idempotent runs, updates instead of duplicates, lifecycle,
cool-down, severe complaints, crisis spikes, the caller's scope and response metrics."""

import random
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from service.alerts.engine import AlertEngine
from service.alerts.rules import AlertConfig
from service.api.app import create_app
from service.api.deps import Caller, get_caller
from service.domain import AspectScore
from service.store import alerts as alerts_repo
from tests.analytics.conftest import AspectKeywordScorer, spicewell_review
from tests.conftest import ingest_new

START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
SHIFT_WEEK = 9


class SafetyScorer(AspectKeywordScorer):
    """The keyword scorer, plus a strongly negative health_safety aspect for each phrase of
    ``HARMS`` (phrase: the tag's confidence and sentiment score)."""

    HARMS = {"stomach ache": (0.95, -0.9)}

    def score(self, texts, languages=None):
        out = super().score(texts, languages)
        for t, s in zip(texts, out):
            for phrase, (confidence, score) in self.HARMS.items():
                if phrase in t:
                    s.score.aspects.append(
                        AspectScore(
                            aspect="health_safety",
                            confidence=confidence,
                            sentiment="negative",
                            sentiment_score=score,
                            evidence=t,
                        )
                    )
        return out


FILLER = (
    "morning lunch dinner office student weekend train shop online store family friend kitchen "
    "camping rainy sunny cheap promo sale pack cup ramen udon broth noon"
).split()


def _tail(rng) -> str:
    """Words that make every item distinct (near-duplicates are left out of every series)."""
    return " ".join(rng.sample(FILLER, 6))


def _post(external_id: str, text: str, at: datetime, **fields) -> dict:
    """A social post in English about spicewell (``fields``: more fields, or other values)."""
    return {
        "source": "s",
        "channel": "social",
        "external_id": external_id,
        "language": "en",
        "brand": "spicewell",
        "text": text,
        "created_at": at.isoformat(),
        **fields,
    }


def _crushed_burst(now, rng) -> list[dict]:
    """15 angry posts about crushed boxes over the last five hours: a crisis burst."""
    return [
        _post(
            f"c{i}",
            f"the box arrived crushed again, awful, {_tail(rng)}",
            now - timedelta(minutes=20 * i + 5),
        )
        for i in range(15)
    ]


def _spicy_text(rng, hot: bool) -> str:
    r = rng.random()
    return (
        "the noodles are too spicy now"
        if r < (0.5 if hot else 0.05)
        else "lovely flavour, great bowl"
        if r < 0.7
        else "the box arrived crushed"
        if r < 0.75
        else "bought it again"
    )


def _items(seed=5, text=_spicy_text, prefix="e"):
    """12 weeks × 3 regions × 2 age groups × 30 items; ``text(rng, hot)`` writes each, ``hot``
    in East × 18-24 from SHIFT_WEEK."""
    rng = random.Random(seed)
    rows, n = [], 0
    for week in range(12):
        for region in ("East", "West", "North"):
            for age in ("18-24", "25-34"):
                for _ in range(30):
                    hot = region == "East" and age == "18-24" and week >= SHIFT_WEEK
                    n += 1
                    said = f"{text(rng, hot)}, {_tail(rng)}"
                    at = START + timedelta(weeks=week, hours=rng.randrange(160))
                    rows.append(spicewell_review(f"{prefix}{n}", said, at, region, age))
    return rows


RULES = {
    "rules": [
        {
            "name": "pref",
            "type": "preference_shift",
            "brands": ["ours"],
            "dimensions": ["region", "age_group"],
            "history": 12,
            "recent": 2,
            "min_mentions": 5,
        }
    ]
}


@pytest.fixture
def store(db_url, make_runtime):
    return ingest_new(make_runtime(db_url, scorer=SafetyScorer()), _items())


def _engine(rt, rules=RULES):
    return AlertEngine(
        AlertConfig.parse(rules),
        aspects=[a.id for a in rt.settings.taxonomy.aspects],
        our_brand="spicewell",
    )


def test_one_alert_for_the_shifted_cell_updated_not_repeated(store):
    rt = store
    engine = _engine(rt)
    before = START + timedelta(weeks=SHIFT_WEEK)  # the shift has not happened yet
    with rt.sessions() as s:
        assert engine.run(s, before).raised == []
        first = engine.run(s, START + timedelta(weeks=SHIFT_WEEK + 1))  # one week of it
        again = engine.run(s, START + timedelta(weeks=SHIFT_WEEK + 1))
        later = engine.run(s, START + timedelta(weeks=SHIFT_WEEK + 2, hours=3))
    assert len(first.raised) == 1, first
    assert again.raised == [] and again.updated == [] and again.unchanged == first.raised
    assert later.raised == [] and later.updated == first.raised
    with TestClient(create_app(runtime=rt)) as c:
        alerts = c.get("/v1/alerts").json()["alerts"]
        assert len(alerts) == 1
        a = alerts[0]
        assert a["type"] == "preference_shift" and a["aspect"] == "taste" and a["status"] == "open"
        assert a["segment"] == {"region": "East", "age_group": "18-24"} and a["region"] == "East"
        assert a["onset"][:10] == (START + timedelta(weeks=SHIFT_WEEK)).date().isoformat()
        assert a["observed"] > a["baseline"] and a["magnitude"] > 0.1
        assert len(a["details"]["quotes"]) == 3 and all(
            "too spicy" in q["text"] for q in a["details"]["quotes"]
        )
        assert "spicy" in a["details"]["phrases"]
        assert a["deadline_at"] > a["first_detected_at"]
        # lifecycle through the API, recorded with who and when
        c.app.dependency_overrides[get_caller] = lambda: Caller(id="lee", role="analyst")
        r = c.patch(f"/v1/alerts/{a['id']}", json={"status": "acknowledged", "note": "looking"})
        assert r.status_code == 200 and r.json()["acknowledged_by"] == "lee"
        assert c.patch(f"/v1/alerts/{a['id']}", json={"status": "bogus"}).status_code == 422
        r = c.patch(f"/v1/alerts/{a['id']}", json={"status": "resolved"})
        assert [e["action"] for e in r.json()["events"]] == [
            "raised",
            "updated",
            "acknowledged",
            "resolved",
        ]
        assert c.patch(f"/v1/alerts/{a['id']}", json={"status": "acknowledged"}).status_code == 409
        m = c.get("/v1/alerts/metrics").json()
        assert m["by_severity"]["L2"]["alerts"] == 1 and m["by_region"]["East"]["acknowledged"] == 1
        # a West manager sees nothing of it
        c.app.dependency_overrides[get_caller] = lambda: Caller(
            id="w", role="viewer", regions=("West",)
        )
        assert (
            c.get("/v1/alerts").json()["alerts"] == []
            and c.get(f"/v1/alerts/{a['id']}").status_code == 404
        )
    with rt.sessions() as s:  # resolved: the key cools down instead of raising again
        cool = engine.run(s, START + timedelta(weeks=SHIFT_WEEK + 3))
    assert cool.raised == [] and len(cool.cooling_down) == 1


def test_severe_complaint_and_crisis_spike(sqlite_url, make_runtime):
    rt = make_runtime(sqlite_url, scorer=SafetyScorer())
    rng = random.Random(9)
    now = START + timedelta(days=10)
    rows = [
        _post(
            f"b{i}",
            f"bought it again, {_tail(rng)}" if i % 4 else f"the box arrived crushed, {_tail(rng)}",
            now - timedelta(hours=180 - i),
        )
        for i in range(170)
    ]
    rows += _crushed_burst(now, rng)
    rows += [
        _post(
            "h1",
            "my son got a stomach ache after eating it",
            now - timedelta(hours=2),
            channel="complaint",
            region="West",
        )
    ]
    rt.ingest_service().ingest(list(enumerate(rows)))
    engine = _engine(
        rt,
        {
            "rules": [
                {"name": "crisis", "type": "crisis_spike", "min_count": 8},
                {"name": "safety", "type": "severe_complaint"},
            ]
        },
    )
    with rt.sessions() as s:
        report = engine.run(s, now)
        assert engine.run(s, now).raised == []
    with TestClient(create_app(runtime=rt)) as c:
        alerts = {a["type"]: a for a in c.get("/v1/alerts").json()["alerts"]}
    assert set(alerts) == {"crisis_spike", "severe_complaint"} and len(report.raised) == 2
    assert alerts["crisis_spike"]["severity"] == "L1" and alerts["crisis_spike"]["observed"] >= 15
    assert (
        alerts["severe_complaint"]["region"] == "West"
        and "stomach" in alerts["severe_complaint"]["title"]
    )


class TieredSafetyScorer(SafetyScorer):
    """Two health_safety tags: strong evidence (confidence 0.99, a verified harm) for glass in
    the food, weaker (0.95) for the stomach ache."""

    HARMS = {**SafetyScorer.HARMS, "glass": (0.99, -0.95)}


def test_severe_complaints_take_their_severity_from_the_strength_of_the_evidence(
    sqlite_url, make_runtime
):
    """Two severe_complaint rules on disjoint confidence ranges, as the shipped configuration
    has them: the strong tag raises one L1, the weaker one L2, and neither raises both."""
    rt = make_runtime(sqlite_url, scorer=TieredSafetyScorer())
    now = START + timedelta(days=10)
    rows = [
        _post("g1", "found a piece of glass in the noodles", now - timedelta(hours=3)),
        _post("h1", "my son got a stomach ache after eating it", now - timedelta(hours=2)),
        _post("b1", "bought it again, tasty as ever", now - timedelta(hours=1)),
    ]
    rt.ingest_service().ingest(list(enumerate(rows)))
    engine = _engine(
        rt,
        {
            "rules": [
                {"name": "safety", "type": "severe_complaint", "min_confidence": 0.975},
                {
                    "name": "safety-review",
                    "type": "severe_complaint",
                    "severity": "L2",
                    "min_confidence": 0.8,
                    "max_confidence": 0.975,
                },
            ]
        },
    )
    with rt.sessions() as s:
        report = engine.run(s, now)
        counted = alerts_repo.count_alerts(s, types=["severe_complaint"])
    assert counted == {"L1": 1, "L2": 1}
    with TestClient(create_app(runtime=rt)) as c:
        alerts = c.get("/v1/alerts").json()["alerts"]
    by_rule = {a["rule"]: a for a in alerts}
    assert len(report.raised) == 2 and len(alerts) == 2
    assert by_rule["safety"]["severity"] == "L1" and "glass" in by_rule["safety"]["title"]
    assert (
        by_rule["safety-review"]["severity"] == "L2"
        and "stomach" in by_rule["safety-review"]["title"]
    )


def test_radar_alerts_run_and_list(store, tmp_path, monkeypatch):
    from service.cli.main import app as cli

    rt = store
    runner = CliRunner()
    args = ["--database-url", rt.settings.database_url]
    as_of = (START + timedelta(weeks=SHIFT_WEEK + 1)).isoformat()
    first = runner.invoke(cli, [*args, "alerts", "run", "--as-of", as_of, "--json"])
    assert first.exit_code == 0, first.output
    second = runner.invoke(cli, [*args, "alerts", "run", "--as-of", as_of, "--json"])
    import json

    assert json.loads(second.output)["raised"] == []
    listed = runner.invoke(cli, [*args, "alerts", "list", "--json"])
    assert listed.exit_code == 0 and len(json.loads(listed.output)) == len(
        json.loads(first.output)["raised"]
    )


def _numb_text(rng, hot: bool) -> str:
    """A complaint the taxonomy's tagger does not see ("lips went numb": no aspect)."""
    return "my lips went numb" if rng.random() < (0.4 if hot else 0.01) else "bought it again"


def test_a_tracked_phrase_rising_in_one_cell_is_a_preference_shift(db_url, make_runtime):
    from service.analytics.trends import add_phrase

    rt = make_runtime(db_url, scorer=SafetyScorer())
    assert (
        rt.ingest_service().ingest(list(enumerate(_items(11, _numb_text, "n")))).counts["rejected"]
        == 0
    )
    as_of = START + timedelta(weeks=SHIFT_WEEK + 2)
    with rt.sessions() as s:
        assert _engine(rt).evaluate(s, as_of)[0] == []  # no aspect moved, nothing tracked yet
        add_phrase(
            s,
            phrase="lips went numb",
            embedding=None,
            threshold=None,
            model_version=None,
            actor="t",
        )
        findings, _ = _engine(rt).evaluate(s, as_of)
        off = {"rules": [{**RULES["rules"][0], "phrases": False}]}
        assert _engine(rt, off).evaluate(s, as_of)[0] == []
    assert len(findings) == 1, [f.title for f in findings]
    f = findings[0]
    assert f.segment == {"region": "East", "age_group": "18-24"} and f.metric == "phrase_rate"
    assert f.details["signal"] == {"phrase": "lips went numb"} and "“lips went numb”" in f.title
    assert f.key.endswith('|phrase:lips went numb|{"age_group": "18-24", "region": "East"}')
    assert (
        all("lips went numb" in q["text"] for q in f.details["quotes"])
        and len(f.details["quotes"]) == 3
    )


def test_a_phrase_and_its_aspect_rising_together_are_one_alert(store):
    from service.analytics.trends import add_phrase

    with store.sessions() as s:
        add_phrase(
            s, phrase="too spicy", embedding=None, threshold=None, model_version=None, actor="t"
        )
        report = _engine(store).run(s, START + timedelta(weeks=SHIFT_WEEK + 2))
        findings, _ = _engine(store).evaluate(s, START + timedelta(weeks=SHIFT_WEEK + 2))
    assert len(report.raised) == 1 and len(findings) == 1
    f = findings[0]
    assert f.aspect == "taste" and f.details["aspects"] == ["taste"]
    phrases = [
        f.details["signal"].get("phrase"),
        *(a.get("phrase") for a in f.details.get("also", [])),
    ]
    assert "too spicy" in phrases and f.title.count("rising") == 1, f.details


def test_a_cell_shift_and_its_brand_wide_echo_in_one_run_are_one_alert(store):
    surge = {"name": "surge", "type": "negative_surge", "brands": ["ours"], "history": 12}
    both = {"rules": [*RULES["rules"], surge]}
    alone = {"rules": [surge]}
    as_of = START + timedelta(weeks=SHIFT_WEEK + 3)
    with store.sessions() as s:
        echo, _ = _engine(store, alone).evaluate(s, as_of)  # the brand-wide rise is there
        findings, _ = _engine(store, both).evaluate(s, as_of)
        report = _engine(store, both).run(s, as_of)
    assert [(f.type, f.aspect) for f in echo] == [("negative_surge", "taste")]
    assert [(f.type, f.aspect, f.segment) for f in findings] == [
        ("preference_shift", "taste", {"region": "East", "age_group": "18-24"})
    ]
    assert len(report.raised) == 1


def test_a_gap_to_a_competitor_opening_is_a_competitor_gap_alert(db_url, make_runtime):
    rng = random.Random(3)
    rows, n = [], 0
    for week in range(12):
        for brand in ("spicewell", "noodleking"):
            for _ in range(60):
                bad = rng.random() < (0.6 if brand == "spicewell" and week >= SHIFT_WEEK else 0.15)
                n += 1
                rows.append(
                    {
                        "source": "shop",
                        "channel": "review",
                        "external_id": f"g{n}",
                        "language": "en",
                        "brand": brand,
                        "region": "East",
                        "text": f"{'too spicy flavour' if bad else 'lovely flavour'}, {_tail(rng)}",
                        "created_at": (
                            START + timedelta(weeks=week, hours=rng.randrange(160))
                        ).isoformat(),
                    }
                )
    rt = make_runtime(db_url, scorer=SafetyScorer())
    assert rt.ingest_service().ingest(list(enumerate(rows))).counts["rejected"] == 0
    rules = {
        "rules": [
            {"name": "gap", "type": "competitor_gap", "history": 12, "recent": 2, "min_mentions": 5}
        ]
    }
    with rt.sessions() as s:
        assert (
            _engine(rt, rules).evaluate(s, START + timedelta(weeks=SHIFT_WEEK))[0] == []
        )  # nothing yet
        findings, skipped = _engine(rt, rules).evaluate(s, START + timedelta(weeks=SHIFT_WEEK + 2))
    assert skipped == [] and len(findings) == 1, [f.title for f in findings]
    f = findings[0]
    assert (
        f.type == "competitor_gap"
        and f.aspect == "taste"
        and f.segment == {"competitor": "noodleking"}
    )
    assert f.observed < f.baseline and "moved in their favour" in f.title
    assert f.onset.date() >= (START + timedelta(weeks=SHIFT_WEEK - 1)).date()
    assert any("too spicy" in q["text"] for q in f.details["quotes"])


def test_a_rule_that_cannot_run_is_reported_and_the_others_still_run(db_url, make_runtime):
    """Items without an age_group (the shipped preference-shift rule's second dimension), a rule
    on an aspect the taxonomy lacks: both reported and skipped; the crisis rule still raises."""
    rt = make_runtime(db_url, scorer=SafetyScorer())
    rng = random.Random(4)
    now = START + timedelta(days=10)
    rows = [
        _post(
            f"q{i}", f"bought it again, {_tail(rng)}", now - timedelta(hours=180 - i), region="East"
        )
        for i in range(170)
    ]
    rows += _crushed_burst(now, rng)
    rt.ingest_service().ingest(list(enumerate(rows)))
    engine = _engine(
        rt,
        {
            "rules": [
                {"name": "pref", "type": "preference_shift", "dimensions": ["region", "age_group"]},
                {"name": "odd", "type": "negative_surge", "aspects": ["warp_drive"]},
                {"name": "crisis", "type": "crisis_spike", "min_count": 8},
            ]
        },
    )
    with rt.sessions() as s:
        report = engine.run(s, now).to_dict()
    reasons = {x["rule"]: x["reason"] for x in report["skipped"]}
    assert set(reasons) == {"pref", "odd"}
    assert (
        "age_group" in reasons["pref"]
        and "warp_drive" in reasons["odd"]
        and "taste" in reasons["odd"]
    )
    assert len(report["raised"]) == 1
    with rt.sessions() as s:
        from service.store.tables import AlertRow

        assert [a.rule for a in s.query(AlertRow)] == ["crisis"]


def test_a_crisis_burst_is_one_incident(db_url, make_runtime):
    """A week of ordinary social posts, then 30 negative posts in four hours, some of them
    health complaints: run hourly, as `radar serve --alerts-every 1h` does, for three days.
    One crisis alert, raised within an hour of the 20th post; its onset is the first post of
    the burst; its title keeps the peak; the severe complaints inside the burst are part of it
    (the one raised before the threshold was reached folds in); quiet days raise nothing."""
    rt = make_runtime(db_url, scorer=SafetyScorer())
    rng = random.Random(11)
    t0 = START + timedelta(days=20, hours=9, minutes=7)  # the burst's first post
    rows = [
        _post(
            f"bg{i}",
            f"the box arrived crushed, {_tail(rng)}"
            if i % 5 == 0
            else f"bought it again, {_tail(rng)}",
            t0 - timedelta(hours=200) + timedelta(hours=i),
        )
        for i in range(199)
    ]
    burst = [t0 + timedelta(minutes=8 * i) for i in range(30)]
    rows += [
        _post(
            f"cr{i}",
            f"my son got a stomach ache after eating it, it came late, {_tail(rng)}"
            if i in (0, 12, 25)
            else f"the box arrived crushed again, awful, {_tail(rng)}",
            t,
        )
        for i, t in enumerate(burst)
    ]
    rt.ingest_service().ingest(list(enumerate(rows)))
    engine = _engine(
        rt,
        {
            "rules": [
                {"name": "crisis", "type": "crisis_spike", "min_count": 8, "window_hours": 6},
                {"name": "safety", "type": "severe_complaint"},
            ]
        },
    )
    reports = []
    with rt.sessions() as s:
        at = t0.replace(minute=0) - timedelta(hours=2)
        while at < t0 + timedelta(days=3):
            reports.append((at, engine.run(s, at).to_dict()))
            at += timedelta(hours=1)

    with rt.sessions() as s:
        crises = alerts_repo.list_alerts(s, types=["crisis_spike"])
        severe = alerts_repo.list_alerts(s, types=["severe_complaint"])
        assert len(crises) == 1, [a.title for a in crises]
        crisis = alerts_repo.alert_dict(crises[0])
        assert crisis["onset"] == burst[0].isoformat()  # its first post, not the window's start
        raised_at = datetime.fromisoformat(crisis["first_detected_at"])
        assert (
            burst[0] < raised_at <= burst[19] + timedelta(hours=1)
        )  # within an hour of the 20th post at the latest
        assert crisis["details"]["peak"] == 30 and "peak 30" in crisis["title"]
        also = {a["item"] for a in crisis["details"]["also"]}
        assert len(also) == 3  # the three health complaints of the burst
        # the first health complaint came before the threshold: raised alone, then folded in
        assert len(severe) <= 1 and all(a.status == "resolved" for a in severe)
        assert all(
            "crisis" in e.note
            for a in severe
            for e in alerts_repo.events_of(s, alert_ids=[a.id])
            if e.action == "resolved"
        )
    raised = [(at, r["raised"]) for at, r in reports if r["raised"]]
    assert sum(len(r) for _, r in raised) == 1 + len(severe), (
        raised
    )  # nothing raised on the quiet days


def test_an_ongoing_shift_keeps_its_onset_when_the_window_moves_past_it(store):
    """Once the rule's window (``recent``: 2 weeks) no longer reaches the shift's onset, a later
    run measures a later step inside the rise; the alert keeps its onset, its title's date and
    the rate expected before the rise, and is still detected."""
    rt = store
    engine = _engine(rt)
    onset = (START + timedelta(weeks=SHIFT_WEEK)).date().isoformat()
    with rt.sessions() as s:
        first = engine.run(s, START + timedelta(weeks=SHIFT_WEEK + 1))
        late = engine.run(s, START + timedelta(weeks=SHIFT_WEEK + 3))  # onsets tried: 10 and 11
    assert len(first.raised) == 1 and late.raised == [] and late.updated == [], late
    assert late.unchanged == first.raised
    with TestClient(create_app(runtime=rt)) as c:
        (a,) = c.get("/v1/alerts").json()["alerts"]
    assert a["onset"][:10] == onset and f"since {onset}" in a["title"], a["title"]
    assert (
        a["last_detected_at"][:10] == (START + timedelta(weeks=SHIFT_WEEK + 3)).date().isoformat()
    )
    assert a["observed"] > 2 * a["baseline"], a
