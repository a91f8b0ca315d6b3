"""The alert engine on the demo data (real model), run week by week as a scheduler would."""

from datetime import timedelta

from service.analytics.trends import trend_report
from service.store.repo import FeedbackFilter

SERIES_TYPES = ("preference_shift", "negative_surge")


def _replay(rt, cfg, first_week: int = 12):
    """Run the engine as of the start of each week; the first run of each key is its alert."""
    engine = rt.alert_engine()
    first_seen = {}
    with rt.sessions() as s:
        for week in range(first_week, cfg.weeks + 1):
            findings, _ = engine.evaluate(s, cfg.start + timedelta(weeks=week))
            for f in findings:
                if f.type in SERIES_TYPES:
                    first_seen.setdefault(f.key, (week, f))
    return first_seen


def test_demo_shifts_are_alerted_where_they_happen_and_nowhere_else(demo_store):
    rt, _, cfg = demo_store
    seen = _replay(rt, cfg)
    report = {k: (w, f.onset.date().isoformat(), f.details.get("detector")) for k, (w, f) in seen.items()}
    print("first alerts (week run, onset, detector):", report)
    spicy = [(w, f) for w, f in seen.values()
             if f.type == "preference_shift" and f.aspect == "taste"
             and f.segment == {"region": cfg.shift_region, "age_group": cfg.shift_age_group}]
    assert spicy, report
    week, f = spicy[0]
    # "within 2 weekly periods of its onset": a run at the start of week shift+3 has seen weeks
    # shift, shift+1 and shift+2
    assert week <= cfg.shift_week + 3, report
    assert f.brand == cfg.shift_brand and f.observed > f.baseline
    assert any("spic" in q["text"].lower() or "辣" in q["text"] for q in f.details["quotes"])
    surge = [(w, f) for w, f in seen.values() if f.type == "negative_surge" and f.aspect == "packaging"]
    assert surge and surge[0][1].brand == cfg.surge_brand and surge[0][0] <= cfg.surge_week + 3, report
    unaffected = [k for k, (w, f) in seen.items()
                  if not (f.aspect == "taste" and f.segment.get("region") == cfg.shift_region
                          and f.segment.get("age_group") == cfg.shift_age_group)
                  and not (f.aspect == "packaging" and f.brand == cfg.surge_brand)]
    assert unaffected == [], report
    assert not any(f.aspect == "delivery" for _, f in seen.values())


def test_the_delivery_improvement_is_a_trend_not_an_alarm(demo_store):
    rt, _, cfg = demo_store
    with rt.sessions() as s:
        out = trend_report(s, flt=FeedbackFilter(), since=cfg.start + timedelta(weeks=6),
                           until=cfg.start + timedelta(weeks=cfg.weeks), bucket="week", aspect="delivery")
    trend = out["trend"]["negative_share"]
    assert trend["direction"] == "down" and trend["upper"] < 0, trend
