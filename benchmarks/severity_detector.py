"""Precision and recall of the severe-complaint (health and safety harm) detector on real texts.

    python benchmarks/severity_detector.py [--split heldout|ordinary|test|dev|development|all]
                                           [--taxonomy configs/taxonomy.yaml]
                                           [--gates -0.8,-0.6,-0.4,-0.2,0]

The texts are the hand-labeled rows of ``benchmarks/severity/labels.csv`` (references into
``../shared/data``, never the texts; how they were chosen and labeled:
``benchmarks/severity/README.md``), plus the demo generator's items, whose generator records
which items were written as health complaints. The detector is what the ``severe_complaint``
rule rests on: the ``kind: severity`` aspects of the taxonomy, tagged by their rules with
negation (``service/nlp/rules.py``) and checked by the pipeline's harm verifier
(``service/nlp/harm.py``; ``real_texts_rules_alone`` is the same without it). ``--split
ordinary`` reads the test half of ``ordinary_matches_labels.csv`` instead: a random sample of
what the rules match in ordinary reviews and tweets, so it measures precision (and how many
true matches the verifier drops), never the rules' recall. ``dev`` rows may be read while writing rules. ``test``
rows were the report until 2026-12-07, when they were read once and their errors studied; since
then ``dev`` and ``test`` together are the ``development`` rows the rules are written on, and
the ``heldout`` rows (labeled that day by a reader who never saw the detector, its rules or its
output) are the report, read once. Beside it, for comparison, what the previous detector did on
the same rows: the zero-shot ``health_safety`` tag with confidence ≥ 0.8 and sentiment ≤ −0.8 (the
shipped rule's thresholds). Prints JSON: precision, recall, F1 and the counts (false
positives and false negatives by language), with Wilson 95% intervals; and what the
``severe_complaint`` rule of ``configs/alerts.yaml`` would alert on the real texts (the shipped
file has two on disjoint confidence ranges: L1 for strong evidence, L2 for the rest), each also
at every sentiment gate of ``--gates`` (its ``max_sentiment_score``, a product choice between
missed harm and false alerts).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LABELS = ROOT / "benchmarks" / "severity" / "labels.csv"
ORDINARY = ROOT / "benchmarks" / "severity" / "ordinary_matches_labels.csv"


def resolve(data: Path, ref_file: str, ref: str) -> str:
    from training.data import resolve_ref

    return resolve_ref(ref_file, ref, data)


def wilson(k: int, n: int) -> list[float] | None:
    if n == 0:
        return None
    from service.analytics.stats import wilson

    lo, hi = wilson(k, n)
    return [round(lo, 3), round(hi, 3)]


def report(pred: list[bool], gold: list[bool], langs: list[str]) -> dict:
    tp = sum(p and g for p, g in zip(pred, gold))
    fp = sum(p and not g for p, g in zip(pred, gold))
    fn = sum(g and not p for p, g in zip(pred, gold))
    out = {
        "n": len(gold),
        "positives": sum(gold),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "precision": round(tp / max(tp + fp, 1), 4),
        "precision_ci95": wilson(tp, tp + fp),
        "recall": round(tp / max(tp + fn, 1), 4),
        "recall_ci95": wilson(tp, tp + fn),
    }
    p, r = out["precision"], out["recall"]
    out["f1"] = round(2 * p * r / (p + r), 4) if p + r else 0.0
    out["by_language"] = {
        lang: {
            "tp": sum(p and g for p, g, x in zip(pred, gold, langs) if x == lang),
            "fp": sum(p and not g for p, g, x in zip(pred, gold, langs) if x == lang),
            "fn": sum(g and not p for p, g, x in zip(pred, gold, langs) if x == lang),
            "positives": sum(g for g, x in zip(gold, langs) if x == lang),
            "n": sum(x == lang for x in langs),
        }
        for lang in sorted(set(langs))
    }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--split",
        default="heldout",
        choices=["heldout", "test", "dev", "development", "all", "ordinary", "ordinary-train"],
    )
    ap.add_argument("--taxonomy", type=Path, default=ROOT / "configs" / "taxonomy.yaml")
    ap.add_argument(
        "--demo-items", type=int, default=3000, help="Demo generator items scored as well."
    )
    ap.add_argument(
        "--no-baseline", action="store_true", help="Skip the previous zero-shot detector."
    )
    ap.add_argument(
        "--gates",
        type=lambda v: [float(x) for x in v.split(",")],
        default=[-0.8, -0.6, -0.4, -0.2, 0.0],
        help="Sentiment gates (max_sentiment_score) to report the alert rule at.",
    )
    ap.add_argument(
        "--show-errors",
        action="store_true",
        help="Print the wrong rows' references (development rows only: never read the held-out "
        "errors to fix rules).",
    )
    args = ap.parse_args()

    from service.config import Settings
    from service.domain import Taxonomy
    from service.runtime import Runtime
    from training.data import data_dir

    taxonomy = Taxonomy.from_yaml(args.taxonomy)
    severe = [a.id for a in taxonomy.aspects if a.kind == "severity"]
    data = data_dir()
    if args.split in ("ordinary", "ordinary-train"):
        with open(ORDINARY, encoding="utf-8") as fh:
            want = "test" if args.split == "ordinary" else "train"
            rows = [r for r in csv.DictReader(fh) if r["split"] == want]
    else:
        with open(LABELS, encoding="utf-8") as fh:
            wanted = {"development": {"dev", "test"}, "all": None}.get(args.split, {args.split})
            rows = [r for r in csv.DictReader(fh) if wanted is None or r["split"] in wanted]
    texts = [resolve(data, r["ref_file"], r["ref"]) for r in rows]
    langs = [r["language"] for r in rows]
    gold = [r["label"] == "1" for r in rows]

    st = Settings()
    rt = Runtime(st)
    pipe = rt.registry.pipeline(st.scorer)
    verified = rt.registry.tagger(st.scorer, taxonomy).fit(pipe.encoder)
    rules_only = rt.registry.tagger(st.scorer, taxonomy, verified=False).fit(pipe.encoder)

    def detect(ts: list[str], ls: list[str]) -> tuple[list[bool], list[bool]]:
        """Whether a severity aspect is tagged: by its rules checked by the pipeline's harm
        verifier, and by the rules alone (one encoder pass serves both)."""
        spans = pipe.preprocess(ts)
        text_emb, clause_emb = pipe.encoder.encode_with_spans(ts, spans)
        return tuple(
            [
                any(h.aspect in severe for h in hs)
                for hs in t.tag_batch(ts, spans, ls, text_emb, clause_emb)
            ]
            for t in (verified, rules_only)
        )

    pred, pred_rules = detect(texts, langs)
    out = {
        "split": args.split,
        "taxonomy": str(
            args.taxonomy.relative_to(ROOT) if args.taxonomy.is_relative_to(ROOT) else args.taxonomy
        ),
        "severity_aspects": severe,
        "harm_verifier": rt.registry.pipeline_spec(st.scorer).harm_verifier,
        "real_texts": report(pred, gold, langs),
        "real_texts_rules_alone": report(pred_rules, gold, langs),
    }
    borderline = [i for i, r in enumerate(rows) if "borderline" in r["notes"]]
    clear = [i for i in range(len(rows)) if i not in set(borderline)]
    out["real_texts_without_borderline"] = report(
        [pred[i] for i in clear], [gold[i] for i in clear], [langs[i] for i in clear]
    )
    if args.show_errors and args.split in ("dev", "test", "development"):
        out["dev_errors"] = [
            {"ref_file": r["ref_file"], "ref": r["ref"], "label": r["label"]}
            for r, p, g in zip(rows, pred, gold)
            if p != g
        ]

    from service.demo.generator import DemoConfig, DemoGenerator
    from service.ingest.language import LanguageDetector

    gen = DemoGenerator(DemoConfig(per_week=max(args.demo_items // 26 + 1, 1), seed=5))
    items = list(gen.items())[: args.demo_items]
    d_texts = [row["text"] for row, _ in items]
    d_langs = LanguageDetector().detect_many(d_texts)
    d_gold = ["health_issue" in truth.topics for _, truth in items]
    d_pred, _ = detect(d_texts, d_langs)
    out["demo_items"] = report(d_pred, d_gold, d_langs)

    # what raises an alert: the detector's tag through each shipped severe_complaint rule's
    # gates (the tag's sentiment score and confidence range), on the real pipeline's scores.
    # The shipped file has two: L1 for strong evidence, L2 (a review) for the rest.
    from service.alerts.rules import AlertConfig

    rules = [r for r in AlertConfig.from_yaml(st.alerts_path).rules if r.type == "severe_complaint"]
    real_scored, demo_scored = pipe.score(texts, langs), pipe.score(d_texts, d_langs)

    def severest(scored, rule) -> list[float | None]:
        """Per text, the lowest sentiment score of a tag of the rule's aspects inside its
        confidence range (None: no such tag)."""
        return [
            min(
                (
                    a.sentiment_score
                    for a in sc.score.aspects
                    if a.aspect in rule.aspects
                    and a.confidence >= rule.min_confidence
                    and (rule.max_confidence is None or a.confidence < rule.max_confidence)
                ),
                default=None,
            )
            for sc in scored
        ]

    def alerted(scores: list[float | None], gate: float) -> list[bool]:
        return [s is not None and s <= gate for s in scores]

    out["alert_rules"] = {}
    any_real, any_demo = [False] * len(texts), [False] * len(d_texts)
    for rule in rules:
        real, demo = severest(real_scored, rule), severest(demo_scored, rule)
        hit_real, hit_demo = (
            alerted(real, rule.max_sentiment_score),
            alerted(demo, rule.max_sentiment_score),
        )
        any_real = [a or b for a, b in zip(any_real, hit_real)]
        any_demo = [a or b for a, b in zip(any_demo, hit_demo)]
        out["alert_rules"][rule.name] = {
            "severity": rule.severity,
            "aspects": rule.aspects,
            "max_sentiment_score": rule.max_sentiment_score,
            "confidence": [rule.min_confidence, rule.max_confidence],
            "real_texts": report(hit_real, gold, langs),
            "demo_items": report(hit_demo, d_gold, d_langs),
            # the rule's sentiment gate is a product choice: what each setting would alert
            "real_texts_by_sentiment_gate": {
                f"{g:+.1f}": report(alerted(real, g), gold, langs) for g in args.gates
            },
        }
    out["real_texts_through_any_alert_rule"] = report(any_real, gold, langs)
    out["demo_items_through_any_alert_rule"] = report(any_demo, d_gold, d_langs)

    if not args.no_baseline:
        from service.config import Settings
        from service.nlp.aspects import ZeroShotAspectTagger
        from service.nlp.registry import ModelRegistry
        from service.nlp.text import clause_spans

        st = Settings()
        reg = ModelRegistry(st.models_dir, taxonomy=taxonomy, cache_dir=st.model_cache_dir)
        spec = reg.pipeline_spec("default")
        enc = reg.encoder(spec.encoder)
        head = reg.sentiment_head(spec.sentiment)
        cal = reg.artifact(spec.aspects).params
        zero = ZeroShotAspectTagger(
            taxonomy,
            threshold=float(cal["threshold"]),
            slope=float(cal["slope"]),
            margin=float(cal["margin"]),
        ).fit(enc)
        _, clauses = enc.encode_with_spans(texts, [clause_spans(t) for t in texts])
        base = []
        for c in clauses:
            hit = next((h for h in zero.tag(c) if h.aspect == "health_safety"), None)
            if hit is None or hit.confidence < 0.8:
                base.append(False)
                continue
            p = head.predict_proba(c[hit.clause][None, :])[0]
            base.append(float(p[2] - p[0]) <= -0.8)
        out["previous_zero_shot_detector"] = report(base, gold, langs)
    print(json.dumps(out, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
