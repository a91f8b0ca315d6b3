"""The competitor benchmark on the demo data (real model): the competitor's packaging surge
is a packaging gap in its disfavour from the surge on, our spicy-taste problem a taste gap in
our disfavour in the East, and taste is the East's first priority."""

from __future__ import annotations

from datetime import timedelta

import numpy as np

from service.analytics import benchmark as bm
from service.store.repo import FeedbackFilter
from tests.conftest import DEMO_FIRST_WEEK


def _at(cfg, week: int):
    return cfg.start + timedelta(weeks=week)


def test_the_packaging_surge_is_a_gap_in_the_competitors_disfavour_from_its_onset(demo_store):
    rt, _, cfg = demo_store
    ours, end = rt.settings.competitors.our_brand, _at(cfg, cfg.weeks)
    with rt.sessions() as s:
        after = bm.benchmark(
            s,
            flt=FeedbackFilter(since=_at(cfg, cfg.surge_week), until=end),
            our_brand=ours,
            aspects=["packaging"],
        )
        before = bm.benchmark(
            s,
            flt=FeedbackFilter(since=_at(cfg, DEMO_FIRST_WEEK), until=_at(cfg, cfg.surge_week)),
            our_brand=ours,
            aspects=["packaging"],
        )
        series = bm.gap_series(
            s,
            flt=FeedbackFilter(),
            our_brand=ours,
            competitor=cfg.surge_brand,
            aspect="packaging",
            since=_at(cfg, DEMO_FIRST_WEEK),
            until=end,
        )
    gap = {g["competitor"]: g for g in after["gaps"]}[cfg.surge_brand]
    assert gap["significant"] and gap["favours"] == "ours" and gap["lower"] > 0.2, gap
    pre = {g["competitor"]: g for g in before["gaps"]}[cfg.surge_brand]
    assert pre["favours"] != "ours" and pre["gap"] < 0.1, pre  # before the surge we were not ahead
    weekly = np.array([np.nan if p["gap"] is None else p["gap"] for p in series["points"]])
    k = cfg.surge_week - DEMO_FIRST_WEEK
    assert np.nanmean(weekly[:k]) < 0.1 and np.nanmean(weekly[k:]) > 0.25, weekly.round(2)
    assert (weekly[k:] > 0).mean() >= 0.9  # every week from the surge on, bar noise
    # the other competitor's packaging is no different from ours
    assert not {g["competitor"]: g for g in after["gaps"]}["goldenbowl"]["significant"]


def test_our_spicy_taste_problem_is_a_taste_gap_in_the_east_and_its_first_priority(demo_store):
    rt, _, cfg = demo_store
    ours, end = rt.settings.competitors.our_brand, _at(cfg, cfg.weeks)
    # the injected cell (the shift is East × 18-24's alone; the whole East dilutes it fourfold)
    east = FeedbackFilter(
        regions=(cfg.shift_region,),
        attributes={"age_group": (cfg.shift_age_group,)},
        since=_at(cfg, cfg.shift_week),
        until=end,
    )
    with rt.sessions() as s:
        res = bm.benchmark(s, flt=east, our_brand=ours, aspects=["taste"])
        pri = bm.priorities(
            s, bm.benchmark(s, flt=east, our_brand=ours, taxonomy=rt.settings.taxonomy), flt=east
        )
        west = bm.benchmark(
            s,
            flt=FeedbackFilter(regions=("West",), since=_at(cfg, cfg.shift_week), until=end),
            our_brand=ours,
            aspects=["taste"],
        )
    market = {g["competitor"]: g for g in res["gaps"]}[bm.MARKET]
    assert market["significant"] and market["favours"] == "competitor" and market["upper"] < 0, (
        market
    )
    assert not any(
        g["significant"] for g in west["gaps"]
    )  # elsewhere our taste is as liked as theirs
    ranked = pri["priorities"][bm.ALL]
    assert ranked[0]["aspect"] == "taste", [(r["aspect"], r["priority"]) for r in ranked[:4]]
    assert pri["importance"]["aspects"]["taste"]["importance"] > 0
