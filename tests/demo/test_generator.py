import json
from collections import Counter
from datetime import datetime
from pathlib import Path

from service.demo.generator import DemoConfig, DemoGenerator, write_demo
from service.ingest.language import LanguageDetector


def _items(**kw):
    return list(DemoGenerator(DemoConfig(**kw)).items())


def test_same_seed_same_data_other_seed_other_data():
    a = [r for r, _ in _items(per_week=20, seed=1)]
    assert a == [r for r, _ in _items(per_week=20, seed=1)]
    assert a != [r for r, _ in _items(per_week=20, seed=2)]


def test_items_vary_like_real_feedback():
    rows = [r for r, _ in _items(per_week=200)]
    texts = [r["text"] for r in rows]
    assert len(set(texts)) / len(texts) > 0.8  # hardly any two items read alike
    langs = Counter(LanguageDetector().detect(t) for t in texts[:600])
    assert langs["en"] > 200 and langs["zh"] > 200
    lengths = sorted(map(len, texts))
    assert lengths[len(lengths) // 10] < 25 and lengths[-len(lengths) // 20] > 100
    assert any(ch in "".join(texts) for ch in "😍😡👍")
    assert {r["channel"] for r in rows} == {"review", "social", "complaint"}
    assert {r["brand"] for r in rows} == {"spicewell", "noodleking", "goldenbowl"}
    assert sum("[" not in t and "@example.com" in t for t in texts) > 0  # contact details to redact
    assert all(
        datetime.fromisoformat(r["created_at"].replace("Z", "+00:00")).tzinfo for r in rows[:50]
    )


def test_injected_effects_are_where_the_truth_says():
    cfg = DemoConfig(per_week=400)
    items = _items(per_week=400)

    def share(pred, topic):
        sel = [t for r, t in items if pred(r, t)]
        return sum(topic in t.topics for t in sel) / max(len(sel), 1), len(sel)

    in_cell = lambda r, t: (
        r["brand"] == cfg.shift_brand
        and r["region"] == cfg.shift_region  # noqa: E731
        and r["age_group"] == cfg.shift_age_group
    )
    shifted = lambda t: cfg.shift_week <= t.week < cfg.rollback_week  # noqa: E731
    after, n_after = share(lambda r, t: in_cell(r, t) and shifted(t), "too_spicy")
    before, _ = share(lambda r, t: in_cell(r, t) and t.week < cfg.shift_week, "too_spicy")
    rolled_back, n_back = share(
        lambda r, t: in_cell(r, t) and t.week >= cfg.rollback_week, "too_spicy"
    )
    elsewhere, _ = share(
        lambda r, t: not in_cell(r, t) and r["brand"] == cfg.shift_brand and shifted(t), "too_spicy"
    )
    assert after > 0.3 and before < 0.1 and elsewhere < 0.1 and n_after > 20
    assert rolled_back < 0.1 and n_back > 20  # the recipe rolled back: the extra complaints stop
    surge, _ = share(
        lambda r, t: r["brand"] == cfg.surge_brand and t.week >= cfg.surge_week, "packaging_damage"
    )
    pre, _ = share(
        lambda r, t: r["brand"] == cfg.surge_brand and t.week < cfg.surge_week, "packaging_damage"
    )
    assert surge > 0.3 and pre < 0.1
    early = [t for r, t in items if t.week < 6 and any(x.startswith("delivery") for x in t.topics)]
    late = [t for r, t in items if t.week >= 20 and any(x.startswith("delivery") for x in t.topics)]
    neg = lambda ts: sum("delivery_slow" in t.topics for t in ts) / len(ts)  # noqa: E731
    assert neg(early) > neg(late) + 0.2
    dups = [t for _, t in items if t.duplicate_of]
    assert dups and all(t.duplicate_of for t in dups)


def test_write_formats_and_truth(tmp_path):
    import pyarrow.parquet as pq

    for suffix in (".csv", ".jsonl", ".parquet"):
        info = write_demo(tmp_path / f"d{suffix}", DemoConfig(per_week=5, weeks=4))
        truth = json.loads(open(info["truth"]).read())
        assert info["rows"] == len(truth["items"]) >= 20
    assert pq.read_table(tmp_path / "d.parquet").num_rows == info["rows"]


def test_the_truth_keeps_the_rollbacks_injected_effect(tmp_path):
    from service.demo.generator import write_demo

    info = write_demo(tmp_path / "demo.csv", DemoConfig(per_week=400))
    truth = json.loads(Path(info["truth"]).read_text())
    e = truth["effects"]["rollback_effect"]
    assert (
        e["segment"] == {"region": "East", "age_group": "18-24"}
        and e["from_week"] == DemoConfig().rollback_week
    )
    assert e["did"] < -0.3 and e["treated"]["before"] > 0.4 and e["treated"]["after"] < 0.25
    assert abs(e["control"]["after"] - e["control"]["before"]) < 0.05
