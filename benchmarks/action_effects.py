"""Did-it-work benchmark: simulated actions with known effects on feeds of real sentences, the
real model's tags, and Radar's effect estimator (``service.analytics.effects.analyse``: control
choice, difference in differences, pre-trend check, verdict) and pilot planner. Prints JSON.

    python benchmarks/action_effects.py [--actions 600] [--plans 400] [--seed 0]

**Texts.** The alert benchmark's pool (``benchmarks/alert_benchmark.py``: real sentences from
``../shared/data`` with gold aspect labels, English and Chinese), scored once by the real pipeline
and cached under the model cache (shared with the alert benchmark). Nothing of a text is stored
here; only the figures.

**One simulated action.** A language and an aspect (taste, customer service, price) whose gold
complaints the pool has; a treated segment and 3, 5 or 8 other segments; 8 weeks before the
action and 2, 4 or 6 after; each segment's weekly volume Poisson around 10, 20, 50 or 100 items
(each segment ± 30%). An item is a gold complaint about the aspect with probability ``q`` (per
segment a level of its own, times a season shared by every segment, times a week-to-week wobble
of its own, lognormal σ 0.15) and otherwise any sentence of that language's pool. The action
multiplies the treated segment's ``q`` by ``f`` from its start: ``f = 1`` (no effect) for a third
of the actions, an improvement (0–0.8) or a worsening (1.3–2.5) for the rest. The metric is
what Radar reports from the **model's** tags (negative share of the aspect, or net sentiment), so
the known effect is the expected change of that metric: ``(f − 1) · E[q] · (μ_C − μ_B)``, where
``μ_C`` and ``μ_B`` are the metric's mean over the aspect's gold complaints and over the whole
pool, read off the real scores. (How well the model's tags follow the gold complaints is the
tagger's quality, issue 17; the estimator is measured on what it is given.)

**Reported.** Coverage of the 95% interval (target 93–97%), by volume, weeks after, number of
controls, effect direction and metric; verdicts when the true effect is 0 (false "worked",
target ≤ 5%; false "got worse"); verdicts by true effect size. **Plans**: 8 weeks of history, a
minimum effect worth detecting drawn per pilot, the planner's weeks for 80% power, then the pilot
run for those weeks with that effect: the share detected ("worked"; target 75–85%), overall and
for plans whose predicted power is within 0.80–0.85 (the rest overshoot because weeks are
whole), and the planner's predicted power beside it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from alert_benchmark import EFFECT_ASPECTS, CachedScorer, Pools, load_pool, pool_scorer  # noqa: E402

START = datetime(2026, 1, 5, tzinfo=UTC)
PRE_WEEKS = 8
POST_WEEKS = (2, 4, 6)
CONTROLS = (3, 5, 8)
VOLUMES = (10, 20, 50, 100)
WOBBLE = 0.15
MAX_PILOT = 26  # weeks: a longer plan is reported as such and not run
METRICS = ("negative_share", "net_sentiment")


class Texts:
    """Per language: the scored pool as arrays (model's negative tag per aspect, sentence
    sentiment) and, per aspect, the indices of its gold complaints."""

    def __init__(self, pools: Pools, scorer: CachedScorer):
        self.by_lang = {}
        for lang in ("en", "zh"):
            sents = pools.all[lang]
            scored = scorer.score([s.text for s in sents], [lang] * len(sents))
            neg = {
                a: np.array(
                    [
                        any(x.aspect == a and x.sentiment == "negative" for x in st.score.aspects)
                        for st in scored
                    ],
                    dtype=float,
                )
                for a in EFFECT_ASPECTS
            }
            net = np.array(
                [{"positive": 1.0, "negative": -1.0}.get(st.score.sentiment, 0.0) for st in scored]
            )
            gold = {
                a: np.array(
                    [i for i, s in enumerate(sents) if s.aspects.get(a) == "negative"], dtype=int
                )
                for a in EFFECT_ASPECTS
            }
            self.by_lang[lang] = {"neg": neg, "net": net, "gold": gold, "n": len(sents)}

    def choices(self) -> list[tuple[str, str]]:
        return [
            (lang, a)
            for lang, d in self.by_lang.items()
            for a in EFFECT_ASPECTS
            if len(d["gold"][a]) >= 30
        ]

    def values(self, lang: str, aspect: str, metric: str) -> np.ndarray:
        d = self.by_lang[lang]
        return d["neg"][aspect] if metric == "negative_share" else d["net"]


@dataclass(frozen=True)
class Scenario:
    """What one feed is drawn for: the language and aspect, the metric Radar reports, the number
    of control cells beside the treated one, the weekly volume per cell and the complaint
    probability ``q0`` the cells' levels are drawn around."""

    lang: str
    aspect: str
    metric: str
    controls: int
    volume: int
    q0: float


class Feed:
    """One feed's hidden state: per cell its complaint probability ``q`` per week (level ×
    season × wobble) and its weekly volume. ``counts`` draws the items."""

    def __init__(self, rng: np.random.Generator, texts: Texts, scenario: Scenario, weeks: int):
        lang, aspect, cells = scenario.lang, scenario.aspect, scenario.controls
        self.vals = texts.values(lang, aspect, scenario.metric)
        self.gold = texts.by_lang[lang]["gold"][aspect]
        self.n_all = texts.by_lang[lang]["n"]
        self.gap = float(self.vals[self.gold].mean()) - float(self.vals.mean())  # μ_C − μ_B
        season = 1 + 0.3 * np.sin(np.arange(weeks) / 3 + rng.uniform(0, 6))
        self.level = scenario.q0 * np.exp(rng.normal(0, 0.3, cells + 1))
        self.expected_q = self.level[:, None] * season[None, :] * np.exp(WOBBLE**2 / 2)
        self.q = (
            self.level[:, None]
            * season[None, :]
            * np.exp(rng.normal(0, WOBBLE, (cells + 1, weeks)))
        )
        self.n = rng.poisson(
            scenario.volume * np.exp(rng.normal(0, 0.3, cells + 1))[:, None], (cells + 1, weeks)
        )

    def truth(self, f: float, weeks: slice) -> float:
        """The expected change of the treated cell's metric over ``weeks`` when ``q`` is × ``f``."""
        return float(np.mean((f - 1) * self.expected_q[0, weeks] * self.gap))

    def counts(self, rng: np.random.Generator, weeks: slice, f: float = 1.0) -> np.ndarray:
        """Sums of the metric's item values per cell and week in ``weeks``, the treated cell's
        ``q`` × ``f``: each item a real sentence drawn from the pool."""
        q = self.q[:, weeks].copy()
        q[0] *= f
        q = np.clip(q, 0, 0.95)
        n = self.n[:, weeks]
        num = np.zeros(q.shape)
        for c in range(q.shape[0]):
            for t in range(q.shape[1]):
                k = rng.binomial(n[c, t], q[c, t])
                num[c, t] = (
                    self.vals[self.gold[rng.integers(0, len(self.gold), k)]].sum()
                    + self.vals[rng.integers(0, self.n_all, n[c, t] - k)].sum()
                )
        return num

    def panel(self, num: np.ndarray, weeks: slice, metric: str):
        from service.analytics import effects as E

        n = self.n[:, weeks].astype(float)
        cells = {
            (f"cell-{c}",): E.CellSeries((f"cell-{c}",), num[c], n[c]) for c in range(num.shape[0])
        }
        vol = {(f"cell-{c}",): n[c] for c in range(num.shape[0])}
        return E.Panel(
            [START + timedelta(weeks=i) for i in range(num.shape[1])],
            ("region",),
            metric,
            cells,
            vol,
        )


def _analyse(panel, weeks: int, aspect: str, **options):
    """Radar's estimator on a panel of ``weeks`` weeks: ``cell-0`` acted on from week
    ``PRE_WEEKS``, the other cells its candidate controls."""
    from service.analytics import effects as E

    pre = np.arange(weeks) < PRE_WEEKS
    return E.analyse(
        panel,
        ("cell-0",),
        pre,
        ~pre,
        keys=("region",),
        aspect=aspect,
        start=START + timedelta(weeks=PRE_WEEKS),
        end=None,
        **options,
    )


def simulate_actions(texts: Texts, n: int, seed: int) -> list[dict]:
    from service.analytics import effects as E

    rng = np.random.default_rng(seed)
    choices = texts.choices()
    rows = []
    for i in range(n):
        lang, aspect = choices[rng.integers(len(choices))]
        metric = METRICS[i % 2]
        kind = ("null", "better", "worse")[rng.integers(3)]
        f = (
            1.0
            if kind == "null"
            else float(rng.uniform(0.0, 0.8) if kind == "better" else rng.uniform(1.3, 2.5))
        )
        post, k, v = (
            int(rng.choice(POST_WEEKS)),
            int(rng.choice(CONTROLS)),
            int(rng.choice(VOLUMES)),
        )
        q0 = float(rng.uniform(0.03, 0.2))
        scenario = Scenario(lang, aspect, metric, controls=k, volume=v, q0=q0)
        weeks = PRE_WEEKS + post
        feed = Feed(rng, texts, scenario, weeks)
        pre_num = feed.counts(rng, slice(0, PRE_WEEKS))
        post_num = feed.counts(rng, slice(PRE_WEEKS, weeks), f)
        truth = feed.truth(f, slice(PRE_WEEKS, weeks))
        panel = feed.panel(np.concatenate([pre_num, post_num], axis=1), slice(0, weeks), metric)
        row = {
            "lang": lang,
            "aspect": aspect,
            "metric": metric,
            "kind": kind,
            "f": round(f, 3),
            "post": post,
            "controls": k,
            "volume": v,
            "truth": truth,
        }
        try:
            r = _analyse(panel, weeks, aspect)
        except E.EffectError as exc:
            row.update(error=str(exc))
            rows.append(row)
            continue
        e = r.estimate
        if e is None:
            row.update(error=r.message)
        else:
            row.update(
                effect=e.effect,
                lower=e.lower,
                upper=e.upper,
                covered=bool(e.lower <= truth <= e.upper),
                verdict=r.verdict,
                pre_trend_ok=r.pre_trend.ok,
            )
        rows.append(row)
    return rows


def simulate_plans(texts: Texts, n: int, seed: int) -> list[dict]:
    """Plan a pilot from 8 weeks of history, run it for the planned weeks with the minimum effect
    as its true effect, and see whether it is detected."""
    from service.analytics import effects as E

    rng = np.random.default_rng(seed + 10_000)
    choices = [c for c in texts.choices()]
    rows = []
    while len(rows) < n:
        lang, aspect = choices[rng.integers(len(choices))]
        metric = "negative_share"
        k, v = int(rng.choice(CONTROLS)), int(rng.choice(VOLUMES))
        q0 = float(rng.uniform(0.1, 0.4))
        scenario = Scenario(lang, aspect, metric, controls=k, volume=v, q0=q0)
        # one feed: the history alone sets the plan, then the pilot runs on for the planned weeks
        feed = Feed(rng, texts, scenario, PRE_WEEKS + MAX_PILOT)
        # the team's minimum effect: a share of the treated segment's extra complaints going away
        room = -feed.truth(0.0, slice(0, PRE_WEEKS))
        min_effect = float(rng.uniform(0.3, 0.9)) * room
        pre_num = feed.counts(rng, slice(0, PRE_WEEKS))
        panel = feed.panel(pre_num, slice(0, PRE_WEEKS), metric)
        pre = np.ones(PRE_WEEKS, dtype=bool)
        fits = E.rank_controls(panel, ("cell-0",), pre)
        chosen = [x.cell for x in fits if x.chosen]
        if not chosen:
            continue
        d = panel.cells[("cell-0",)].rate() - E.control_group(panel, chosen).rate()
        weeks, predicted, _ = E.plan_from_history(d, min_effect, pre_weeks=PRE_WEEKS)
        if weeks is None or weeks > MAX_PILOT:
            rows.append({"weeks": weeks, "skipped": f"longer than {MAX_PILOT} weeks"})
            continue
        total = PRE_WEEKS + weeks
        post = slice(PRE_WEEKS, total)
        whole = -feed.truth(0.0, post)  # the change if every extra complaint went away
        if whole <= min_effect:
            rows.append(
                {"weeks": weeks, "skipped": "the season leaves too few complaints for that effect"}
            )
            continue
        f = 1.0 - min_effect / whole
        truth = feed.truth(f, post)
        post_num = feed.counts(rng, post, f)
        panel = feed.panel(np.concatenate([pre_num, post_num], axis=1), slice(0, total), metric)
        try:
            r = _analyse(panel, total, aspect, min_effect=min_effect)
        except E.EffectError as exc:
            rows.append({"weeks": weeks, "skipped": str(exc)})
            continue
        rows.append(
            {
                "weeks": weeks,
                "predicted_power": predicted,
                "detected": r.verdict == "worked",
                "min_effect": min_effect,
                "truth": truth,
                "volume": v,
                "controls": k,
            }
        )
    return rows


def _rate(xs) -> float | None:
    xs = list(xs)
    return round(sum(xs) / len(xs), 4) if xs else None


def summarise(actions: list[dict], plans: list[dict]) -> dict:
    ok = [r for r in actions if "covered" in r]
    by = defaultdict(list)
    for r in ok:
        for key in (
            f"volume={r['volume']}",
            f"weeks_after={r['post']}",
            f"controls={r['controls']}",
            f"effect={r['kind']}",
            f"metric={r['metric']}",
            f"language={r['lang']}",
        ):
            by[key].append(r["covered"])
    null = [r for r in ok if r["kind"] == "null"]
    verdicts = defaultdict(lambda: defaultdict(int))
    for r in ok:
        size = abs(r["truth"])
        band = (
            "0"
            if r["kind"] == "null"
            else ("<2pt" if size < 0.02 else "2-5pt" if size < 0.05 else "≥5pt")
        )
        if r["metric"] == "negative_share":
            verdicts[f"{r['kind']} {band}"][r["verdict"]] += 1
    ran = [p for p in plans if "detected" in p]
    tight = [p for p in ran if 0.80 <= p["predicted_power"] < 0.85]
    return {
        "actions": len(actions),
        "estimated": len(ok),
        "not_estimated": len(actions) - len(ok),
        "coverage_95": _rate(r["covered"] for r in ok),
        "coverage_by": {k: {"n": len(v), "coverage": _rate(v)} for k, v in sorted(by.items())},
        "true_effect_zero": {
            "n": len(null),
            "false_worked": _rate(r["verdict"] == "worked" for r in null),
            "false_got_worse": _rate(r["verdict"] == "got_worse" for r in null),
            "pre_trend_flagged": _rate(not r["pre_trend_ok"] for r in null),
        },
        "verdicts_negative_share": {k: dict(v) for k, v in sorted(verdicts.items())},
        "plans": {
            "n": len(plans),
            "run": len(ran),
            "skipped": len(plans) - len(ran),
            "skipped_why": dict(
                Counter(p["skipped"].split(":")[0] for p in plans if "skipped" in p)
            ),
            "detected": _rate(p["detected"] for p in ran),
            "predicted_power_mean": _rate(p["predicted_power"] for p in ran),
            "weeks_planned": {
                str(w): n
                for w in range(1, MAX_PILOT + 1)
                if (n := sum(1 for p in ran if p["weeks"] == w))
            },
            "predicted_0.80-0.85": {
                "n": len(tight),
                "detected": _rate(p["detected"] for p in tight),
                "predicted_power_mean": _rate(p["predicted_power"] for p in tight),
            },
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--actions", type=int, default=600)
    ap.add_argument("--plans", type=int, default=400)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    warnings.filterwarnings("ignore", category=RuntimeWarning)

    from service.config import Settings

    t0 = time.time()
    pool = load_pool()
    pools = Pools(pool)
    scorer = pool_scorer(Settings(), [s.text for s in pool], [s.language for s in pool])
    texts = Texts(pools, scorer)
    t1 = time.time()
    actions = simulate_actions(texts, args.actions, args.seed)
    plans = simulate_plans(texts, args.plans, args.seed)
    print(
        json.dumps(
            {
                "model_version": scorer.version,
                "pool": {"en": len(pools.all["en"]), "zh": len(pools.all["zh"])},
                "aspects_languages": [f"{lang}:{a}" for lang, a in texts.choices()],
                "seed": args.seed,
                "seconds": {"scoring": round(t1 - t0, 1), "simulation": round(time.time() - t1, 1)},
                **summarise(actions, plans),
            },
            indent=2,
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":
    main()
