"""The demo's action: the spicy recipe rolled back in East × 18-24 a week after the taste alert
(the generator makes the effect real and keeps its size), recorded against that alert, and its
effect measured against the segments it did not touch (real model, demo store)."""

from service.demo.run import record_demo_action


def test_the_demo_action_answers_the_taste_alert_and_its_interval_covers_the_injected_effect(
    demo_store, demo_alerts
):
    rt, truth, cfg = demo_store
    out = record_demo_action(rt, cfg, list(truth.values()))
    assert out["alert_id"] is not None  # linked to the East × 18-24 taste alert of the replay
    e = out["effect"]
    assert e["verdict"] == "worked", e["message"]
    assert e["pre_trend"]["ok"]
    assert e["lower"] <= out["truth"]["did"] <= e["upper"] and out["covered"]
    assert out["truth"]["did"] < -0.3  # the rollback removed most of the extra complaints
    assert e["weeks_after"] == cfg.weeks - cfg.rollback_week
    chosen = [c["segment"] for c in e["controls"] if c["chosen"]]
    assert chosen and {"region": "East", "age_group": "18-24"} not in chosen
    assert "fell from" in e["summary"]
