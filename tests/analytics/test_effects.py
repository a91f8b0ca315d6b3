"""Did it work: the DiD estimator, the pre-trend check, the control choice and the planner, on
generated stores with known effects (both databases) and on simulated panels."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from service.analytics import effects as E
from service.store.repo import FeedbackFilter
from tests.analytics.conftest import AspectKeywordScorer, spicewell_review
from tests.conftest import ingest_new, sqlite_only

START = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
WEEKS = 14
ACTION_WEEK = 8
REGIONS = ("East", "West", "North", "South")
AGES = ("18-24", "25-34")


def _rate(region: str, age: str, week: int) -> float:
    """The share of items saying "too spicy" (a negative taste mention): 10% everywhere with a
    shared season; East × 18-24 at 40% until the action (week 8), then back to 10%; North ×
    18-24 climbing from 5% by 7 points a week (its trend was never parallel)."""
    season = 1 + 0.2 * np.sin(week / 2)
    if (region, age) == ("East", "18-24"):
        return (0.40 if week < ACTION_WEEK else 0.10) * season
    if (region, age) == ("North", "18-24"):
        return min(0.05 + 0.07 * week, 0.9)
    return 0.10 * season


def effect_items(seed: int = 11, per_cell: int = 30) -> list[dict]:
    rng = random.Random(seed)
    items = []
    for week in range(WEEKS):
        for region in REGIONS:
            for age in AGES:
                for _j in range(per_cell):
                    hot = rng.random() < _rate(region, age, week)
                    text = (
                        "the noodles are too spicy now"
                        if hot
                        else rng.choice(
                            (
                                "lovely flavour, great bowl",
                                "bought it again",
                                "the box arrived crushed",
                            )
                        )
                    )
                    at = START + timedelta(
                        weeks=week, days=rng.randrange(7), hours=rng.randrange(24)
                    )
                    n = len(items)
                    items.append(spicewell_review(f"e{n}", f"{text} #{n}", at, region, age))
    return items


@pytest.fixture
def effect_store(db_url, make_runtime):
    """Both databases: the estimate read through each one's queries (and rollups); the tests of
    what does not depend on the database (the choice of controls, the pre-trend check) run on
    SQLite alone."""
    return ingest_new(make_runtime(db_url, scorer=AspectKeywordScorer()), effect_items())


def _truth(region: str, age: str) -> float:
    """The DiD the data were made with: the treated cell's change minus the other cells' (the
    expected rates, before and after the action week)."""

    def mean(r, a, weeks):
        return float(np.mean([_rate(r, a, w) for w in weeks]))

    pre, post = range(0, ACTION_WEEK), range(ACTION_WEEK, WEEKS)
    return (mean(region, age, post) - mean(region, age, pre)) - (
        mean("West", "25-34", post) - mean("West", "25-34", pre)
    )


# the recipe change from the action week, measured on the "too spicy" share as of the data's end
EFFECT = dict(
    flt=FeedbackFilter(brands=("spicewell",)),
    metric="negative_share",
    aspect="taste",
    start=START + timedelta(weeks=ACTION_WEEK),
    end=None,
    now=START + timedelta(weeks=WEEKS),
)


def _estimate(s, segment: dict[str, str], **options) -> E.EffectReport:
    """The effect on ``segment``: ``EFFECT``, with ``options`` changed or added."""
    return E.estimate_effect(s, segment=segment, **{**EFFECT, **options})


def test_did_on_a_generated_store_finds_the_known_effect_and_no_effect_where_there_is_none(
    effect_store,
):
    rt = effect_store
    with rt.sessions() as s:
        r = _estimate(s, {"region": "East", "age_group": "18-24"})
        truth = _truth("East", "18-24")
        assert truth == pytest.approx(-0.32, abs=0.02)  # −30 points × the season of the weeks after
        assert r.estimate.lower <= truth <= r.estimate.upper
        assert r.verdict == "worked" and r.pre_trend.ok
        assert r.estimate.pre_weeks == ACTION_WEEK and r.estimate.post_weeks == WEEKS - ACTION_WEEK
        assert r.treated_before > 0.3 and r.treated_after < 0.2
        chosen = [c["segment"] for c in r.to_dict()["controls"] if c["chosen"]]
        assert chosen and {"region": "East", "age_group": "18-24"} not in chosen
        assert {"region": "North", "age_group": "18-24"} not in chosen  # its trend was not parallel
        assert "fell from" in r.to_dict()["summary"] and "worked" in r.to_dict()["summary"]

        null = _estimate(
            s,
            {"region": "West", "age_group": "25-34"},
            exclude=[{"region": "East", "age_group": "18-24"}],
        )
        assert null.estimate.lower <= 0 <= null.estimate.upper
        assert null.verdict in ("no_effect", "no_effect_yet")
        if null.verdict == "no_effect_yet":  # how long it would take, or that no length would do
            assert (
                f"{null.more_weeks} more week" in null.message
                if null.more_weeks
                else "however long it runs" in null.message
            )

        # the rollups give the same answer as the items
        from service.store import rollups

        rollups.refresh(s, dims=["attr:age_group"])
        s.commit()
        again = _estimate(s, {"region": "East", "age_group": "18-24"})
        assert again.estimate.effect == pytest.approx(r.estimate.effect, abs=1e-9)


@sqlite_only
def test_pre_trend_check_fails_where_the_trends_differed(effect_store):
    rt = effect_store
    with rt.sessions() as s:
        r = _estimate(s, {"region": "North", "age_group": "18-24"})
        assert not r.pre_trend.ok and r.pre_trend.p_value < 0.05 and r.pre_trend.slope > 0
        assert r.verdict == "inconclusive" and "drifting apart" in r.message
        # named controls are used as named, and the check still applies
        named = _estimate(
            s,
            {"region": "North", "age_group": "18-24"},
            controls=[{"region": "West", "age_group": "18-24"}],
        )
        assert [c["segment"] for c in named.to_dict()["controls"] if c["chosen"]] == [
            {"region": "West", "age_group": "18-24"}
        ]
        assert named.chosen_by == "team" and named.pre_trend is not None


@sqlite_only
def test_control_choice_leaves_out_cells_other_actions_touched_and_errors_name_the_problem(
    effect_store,
):
    rt = effect_store
    with rt.sessions() as s:
        r = _estimate(s, {"region": "East", "age_group": "18-24"}, exclude=[{"region": "West"}])
        rows = r.to_dict()["controls"]
        assert all(c["segment"]["region"] != "West" for c in rows if c["chosen"])
        assert {c["reason"] for c in rows if c["segment"]["region"] == "West"} == {
            "touched by another action"
        }
        with pytest.raises(E.EffectError, match="weeks"):  # started too early for 3 weeks before
            _estimate(s, {"region": "East", "age_group": "18-24"}, start=START + timedelta(weeks=1))
        with pytest.raises(E.EffectError, match="no items in the segment"):
            _estimate(s, {"region": "Mars", "age_group": "18-24"})
        with pytest.raises(E.EffectError, match="needs an aspect"):
            _estimate(s, {"region": "East"}, metric="rating", aspect=None)
        soon = _estimate(
            s,
            {"region": "East", "age_group": "18-24"},
            now=START + timedelta(weeks=ACTION_WEEK, days=3),
        )
        assert soon.verdict == "not_yet" and soon.estimate is None


def _panel(
    rng,
    *,
    cells: int,
    volume: int,
    weeks: int,
    pre: int,
    effect_rate: float = 0.0,
    base: float = 0.15,
):
    out, vol = {}, {}
    for c in range(cells + 1):
        level = base * np.exp(rng.normal(0, 0.2))
        q = np.full(weeks, level)
        if c == 0:
            q[pre:] += effect_rate
        n = rng.poisson(volume, weeks).astype(float)
        k = rng.binomial(n.astype(int), np.clip(q, 0, 1)).astype(float)
        out[(f"c{c}",)] = E.CellSeries((f"c{c}",), k, n)
        vol[(f"c{c}",)] = n
    return E.Panel(
        [START + timedelta(weeks=i) for i in range(weeks)], ("region",), "negative_share", out, vol
    )


def test_the_plan_detects_its_minimum_effect_about_as_often_as_it_promises():
    """Plan from 8 weeks of history, then run pilots of the planned length with the minimum
    effect: the share detected is near the promised power (80% at least, rounded up to whole weeks)."""
    rng = np.random.default_rng(5)
    pre_weeks, min_effect = 8, -0.08
    hist = _panel(rng, cells=5, volume=150, weeks=pre_weeks, pre=pre_weeks)
    pre = np.ones(pre_weeks, dtype=bool)
    chosen = [f.cell for f in E.rank_controls(hist, ("c0",), pre) if f.chosen]
    d = hist.cells[("c0",)].rate() - E.control_group(hist, chosen).rate()
    weeks, predicted, sigma = E.plan_from_history(d, abs(min_effect), pre_weeks=pre_weeks)
    assert weeks is not None and 1 <= weeks <= 12 and predicted >= 0.8
    assert (
        weeks == 1 or E.assured_power(abs(min_effect), sigma, pre_weeks, pre_weeks, weeks - 1) < 0.8
    )
    detected, runs = 0, 300
    for _ in range(runs):
        p = _panel(
            rng, cells=5, volume=150, weeks=pre_weeks + weeks, pre=pre_weeks, effect_rate=min_effect
        )
        m = np.arange(pre_weeks + weeks) < pre_weeks
        r = E.analyse(p, ("c0",), m, ~m, keys=("region",), aspect="taste", start=START, end=None)
        detected += r.verdict == "worked"
    # the history's noise is itself an estimate from 8 weeks: allow for it around the promise
    assert 0.6 <= detected / runs <= 0.97, (detected / runs, predicted)


def test_null_effects_rarely_pass_for_worked_and_the_interval_covers():
    rng = np.random.default_rng(9)
    worked = covered = 0
    runs = 300
    for _ in range(runs):
        p = _panel(rng, cells=4, volume=30, weeks=12, pre=8)
        m = np.arange(12) < 8
        r = E.analyse(p, ("c0",), m, ~m, keys=("region",), aspect="taste", start=START, end=None)
        worked += r.verdict == "worked"
        covered += r.estimate.lower <= 0 <= r.estimate.upper
    assert worked / runs <= 0.06
    assert 0.90 <= covered / runs <= 0.99


def test_check_where_names_each_problem():
    errs = E.check_where(
        aspects=["taste"],
        segment={"region": "East"},
        aspect="smell",
        metric="rating",
        controls=[{"age_group": "18-24"}, {"region": "East"}],
    )
    fields = {e["field"] for e in errs}
    assert fields == {"aspect", "controls.0", "controls.1"}
    assert (
        E.check_where(aspects=["taste"], segment={}, aspect=None, metric="volume", controls=None)[
            0
        ]["field"]
        == "segment"
    )
    assert any(
        e["field"] == "metric"
        for e in E.check_where(
            aspects=["taste"], segment={"region": "E"}, aspect=None, metric="rating", controls=None
        )
    )
