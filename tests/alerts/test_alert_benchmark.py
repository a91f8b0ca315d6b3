"""A small run of the alert benchmark (``benchmarks/alert_benchmark.py``) in the test suite.

The benchmark itself samples real labeled sentences from ``../shared/data``; tests use data the
project generates, so this run draws from a generated pool of labeled sentences (English and
Chinese, per aspect and polarity). The real pipeline scores them (sentiment, severity tags);
the aspects are the sentences' gold labels (the benchmark's ``--tags gold``), so what is tested
is the engine on the benchmark's feeds: injected shifts, surges and bursts are found within
their periods, one incident per burst, and the rest of the feed (seasonal weeks, a slow trend,
cross-posts) raises next to nothing.
"""

import random

import pytest

from tests.conftest import load_benchmark


@pytest.fixture(scope="module")
def ab():
    return load_benchmark("alert_benchmark")


EN = {
    "taste": (
        ["the broth", "the noodles", "the sauce", "the soup", "the flavour"],
        {
            "negative": [
                "is bland",
                "tastes off",
                "is far too salty",
                "is watery and dull",
                "has no flavour",
            ],
            "positive": [
                "is delicious",
                "tastes great",
                "is rich and tasty",
                "is full of flavour",
                "is lovely",
            ],
        },
    ),
    "customer_service": (
        [
            "the hotline agent",
            "the support team",
            "the customer service",
            "the chat agent",
            "the service desk",
        ],
        {
            "negative": [
                "was rude to me",
                "never answered",
                "hung up on me",
                "ignored my refund",
                "was unhelpful",
            ],
            "positive": [
                "was very helpful",
                "solved it at once",
                "was friendly",
                "called me back",
                "was patient",
            ],
        },
    ),
    "price_value": (
        ["the price", "this pack", "the family box", "the bundle", "the new price"],
        {
            "negative": [
                "is a rip-off",
                "costs far too much",
                "is overpriced",
                "is not worth it",
                "went up again",
            ],
            "positive": [
                "is a bargain",
                "is great value",
                "is cheap for what you get",
                "is worth every cent",
                "is a good deal",
            ],
        },
    ),
}
ZH = {
    "taste": (
        ["汤底", "面条", "酱料", "味道", "口感"],
        {
            "negative": ["太咸了", "很淡没味", "有股怪味", "难吃", "不好吃"],
            "positive": ["很好吃", "味道很棒", "香浓", "很入味", "好吃极了"],
        },
    ),
    "customer_service": (
        ["客服", "售后", "客服人员", "热线", "在线客服"],
        {
            "negative": ["态度很差", "一直不回复", "挂我电话", "不给退款", "敷衍了事"],
            "positive": ["很耐心", "马上解决了", "态度很好", "回复很快", "很热情"],
        },
    ),
    "price_value": (
        ["价格", "这一箱", "家庭装", "套餐", "新价格"],
        {
            "negative": ["太贵了", "不值这个价", "又涨价了", "性价比很低", "坑人"],
            "positive": ["很便宜", "性价比高", "很划算", "物有所值", "很实惠"],
        },
    ),
}
FILLER_EN = [
    "bought it for the office",
    "my kids had it for lunch",
    "picked it up at the station shop",
    "tried the new pack today",
    "got it on sale last week",
    "had it after the gym",
]
FILLER_ZH = ["今天中午吃的", "给孩子买的", "在超市买的", "第二次买了", "活动时买的", "宿舍里吃的"]


def _pool(ab):
    """Labeled sentences: per language, aspect and polarity every subject × predicate, each with
    a filler (so no two texts are the same), and as many aspect-less ones."""
    rng = random.Random(3)
    pool = []
    for lang, table, fillers in (("en", EN, FILLER_EN), ("zh", ZH, FILLER_ZH)):
        for aspect, (subjects, predicates) in table.items():
            for polarity, preds in predicates.items():
                for subj in subjects:
                    for pred in preds:
                        filler = rng.choice(fillers)
                        text = (
                            f"{subj} {pred}, {filler}"
                            if lang == "en"
                            else f"{subj}{pred}，{filler}"
                        )
                        pool.append(
                            ab.Sentence(
                                text, lang, {aspect: polarity}, polarity, f"gen:{len(pool)}"
                            )
                        )
        for i in range(100):
            a, b = rng.sample(fillers, 2)
            text = f"{a}, and {b} ({i})" if lang == "en" else f"{a}，{b}（{i}）"
            pool.append(ab.Sentence(text, lang, {}, "neutral", f"gen:{len(pool)}"))
    return pool


def test_a_small_run_of_the_alert_benchmark(ab, tmp_path, real_runtime_factory):
    pool = _pool(ab)
    base = real_runtime_factory(f"sqlite:///{tmp_path / 'unused.db'}").scorer
    scorer = ab.CachedScorer(base, None)
    scorer.warm([s.text for s in pool], [s.language for s in pool])
    from service.config import Settings

    severity_aspects = {a.id for a in Settings().taxonomy.aspects if a.kind == "severity"}
    gold = ab.GoldTags(scorer, pool, severity_aspects)
    pools = ab.Pools(pool)
    results = [
        ab.run_seed(seed, pools, [], gold, weeks=18, workdir=tmp_path, cell_sizes=(20,))
        for seed in (1, 2)
    ]
    summary = ab.summarise(results, weeks=18)
    for r in results:
        assert r["skipped"] == [] and r["linked"] > 0  # the cross-posts were linked, nothing failed
        crisis = next(p for p in r["per_effect"] if p["kind"] == "crisis")
        assert crisis["detected"] and crisis["incidents"] == 1
        burst = r["effects"][crisis["effect"]]
        spacing = (
            60 * burst["hours"] / max(burst["posts"] - 1, 1)
        )  # minutes between the burst's posts
        # its onset is among the burst's first posts (the first the model reads as negative; an
        # ordinary negative post minutes before the burst cannot be told from it), never the
        # window's start hours before it
        assert -spacing - 10 <= crisis["onset_minutes_after_first_post"] <= 3 * spacing + 1
        if "minutes_after_20th_post" in crisis:
            assert crisis["minutes_after_20th_post"] <= 60
    shifts = [
        (p, r["effects"][p["effect"]])
        for r in results
        for p in r["per_effect"]
        if p["kind"] == "preference_shift"
    ]
    big = [p for p, e in shifts if e["multiplier"] >= 2.5]
    found = [p for p in big if p["detected"] and p["delay_periods"] <= 3]
    surges = [p for r in results for p in r["per_effect"] if p["kind"] == "negative_surge"]
    report = {
        "shifts": shifts,
        "surges": surges,
        "false": summary["false_by_rule"],
        "echo": summary["echo_alerts"],
    }
    # with exact tags the engine finds every brand-wide surge within two weeks; of the large
    # shifts in one 20-item cell it finds some within three (1 of 3 here): a regression guard,
    # below the 0.90 (the 20-seed figures: README, "The alert benchmark")
    assert big and len(found) >= 1, report
    assert all(p["detected"] and p["delay_periods"] <= 2 for p in surges), report
    # seasonal weeks, a slow trend, cross-posts and everything else: at most two false alerts a seed
    assert summary["false_alerts"] <= 2 * len(results), report
    assert summary["targets"]["l1_not_crisis_or_harm"] == 0, report


def test_severe_complaints_on_background_reviews_are_judged_by_the_hand_labels(ab):
    """An L1 on a background review is a true harm or a false L1 as its hand label says, and
    unjudged only where no label holds its text; a false one counts against the L1 target and
    the false alerts, never against the series rules."""

    def severe(ref):
        return {"verdict": "unjudged_severe", "type": "severe_complaint", "ref": ref}

    result = {
        "effects": [],
        "per_effect": [],
        "alerts": [severe("a#1"), severe("a#2"), severe("a#2"), severe("b#9")],
        "counts": {"unjudged_severe": 4},
        "false_by_rule": {},
        "l1_not_crisis_or_harm": 0,
    }
    summary = ab.summarise([result], weeks=26, background={"a#1": 1, "a#2": 0})
    assert summary["severe_l1_on_background_reviews"] == {
        "true_harm": 1,
        "no_harm": 2,
        "unjudged": 1,
    }
    assert summary["targets"]["l1_not_crisis_or_harm"] == 2
    assert summary["false_alerts"] == 2
    assert summary["false_alerts_per_26_weeks_of_a_16_cell_brand_series_and_crisis_rules"] == 0
    # the shipped labels file is read by default and holds only references and labels
    labels = ab.load_background_harm_labels()
    assert labels and set(labels.values()) == {0, 1}
    assert all("#" in ref for ref in labels)
