"""Train the harm verifier that checks what the health-and-safety rules match.

    python -m training.train_harm_verifier [--name harm-verifier-e5-v1] [--pipeline default]

Examples: every hand-labeled real text the safety rules of the configured taxonomy match, from
``benchmarks/severity/labels.csv`` (its ``dev`` and ``test`` rows, the development rows the
rules were written on; **never** ``heldout``, a report),
``benchmarks/severity/alert_pool_labels.csv`` (the alert benchmark's background reviews the
rules tag) and the ``train`` half of ``benchmarks/severity/ordinary_matches_labels.csv`` (a
random sample of what the rules match in ordinary reviews and tweets; its ``test`` half is the
other report). All labeled by reading; a text that is also a report row is left out. The files
hold references and labels only; the texts are read from ``../shared/data``. The feature is the embedding of the
clause the rules matched, from the pipeline's own encoder pass (``service/nlp/harm.py``), so
the verifier sees exactly what serving gives it.

Model: a standardised L2 logistic regression. Its strength and its threshold are chosen on
out-of-fold predictions (5 folds × 5 repeats, stratified on label and source): the strength by
log loss, the threshold by F1 over every matched row (ties: the higher threshold). Prints a
table and JSON: the out-of-fold precision and recall of rules + verifier against the rules
alone, per source and language. Writes ``models/<name>.safetensors`` and its manifest entry.
About a minute on 2 cores.

It also chooses the **L1 tier**: how sure the verifier must be before one report wakes a
regional lead. A single complaint raises an L1 alert when its tag's sentiment clears the L1
``severe_complaint`` rule's gate and the verifier's probability is at least the lowest cut
(on a grid of 0.025) whose out-of-fold precision through that path reaches ``L1_PRECISION``
(0.92, the detector's precision target in issue 17); weaker matches go to the L2 rule. The cut
is printed as the L1 rule's ``min_confidence`` (a verified safety tag's confidence is
``c + (1 - c) · p``, ``c`` the aspect's rule confidence) and recorded in the manifest; the
shipped ``configs/alerts.yaml`` carries it.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SEVERITY = ROOT / "benchmarks" / "severity"
STRENGTHS = (0.003, 0.01, 0.03, 0.1)
THRESHOLDS = np.round(np.arange(0.2, 0.81, 0.025), 3)
L1_PRECISION = 0.92
L1_CUTS = np.round(np.arange(0.4, 0.976, 0.025), 3)
FOLDS, REPEATS = 5, 5


SOURCES = ("development", "alert_pool", "ordinary_matches")


def _read(name: str) -> list[dict]:
    with open(SEVERITY / name, encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def labeled_rows() -> list[dict]:
    """The training rows of each source, with the report rows' texts (and any text seen twice)
    left out."""
    from service.ingest.normalize import dedup_key
    from training.data import resolve_ref

    main, ordinary = _read("labels.csv"), _read("ordinary_matches_labels.csv")
    reports = [r for r in main if r["split"] == "heldout"]
    reports += [r for r in ordinary if r["split"] == "test"]
    held = {dedup_key(resolve_ref(r["ref_file"], r["ref"])) for r in reports}
    out, seen = [], set()
    for source, rows in zip(
        SOURCES,
        (
            [r for r in main if r["split"] in ("dev", "test")],
            _read("alert_pool_labels.csv"),
            [r for r in ordinary if r["split"] == "train"],
        ),
    ):
        for r in rows:
            text = resolve_ref(r["ref_file"], r["ref"])
            key = dedup_key(text)
            if key in held or key in seen:
                continue
            seen.add(key)
            out.append(
                {
                    "text": text,
                    "language": r["language"],
                    "label": int(r["label"]),
                    "source": source,
                }
            )
    return out


def matched_clauses(encoder, tagger, rows: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """``(n, d)`` embedding of the clause the safety rules matched in each row (rows they do
    not match: zeros) and ``(n,)`` whether they matched, read through the pipeline's own
    encoder and tagger (built without a verifier)."""
    from service.nlp.text import clause_spans

    safety = {a.id for a in tagger.taxonomy.aspects if a.kind == "severity" and a.safety}
    texts = [r["text"] for r in rows]
    langs = [r["language"] for r in rows]
    X, matched = np.zeros((len(rows), encoder.dim)), np.zeros(len(rows), bool)
    step = 64
    for s in range(0, len(texts), step):
        t, lang = texts[s : s + step], langs[s : s + step]
        spans = [clause_spans(x) for x in t]
        text_emb, clause_emb = encoder.encode_with_spans(t, spans)
        for j, hits in enumerate(tagger.tag_batch(t, spans, lang, text_emb, clause_emb)):
            hit = next((h for h in hits if h.aspect in safety), None)
            if hit is not None:
                matched[s + j] = True
                X[s + j] = clause_emb[j][hit.clause]
        print(f"encoded {min(s + step, len(texts))}/{len(texts)}", file=sys.stderr)
    return X, matched


def _fit(X, y, C, threshold: float = 0.5, meta: dict | None = None):
    """A standardised L2 logistic regression on ``X`` as a ``HarmVerifier``."""
    from sklearn.linear_model import LogisticRegression

    from service.nlp.harm import HarmVerifier

    mean, scale = X.mean(axis=0), X.std(axis=0) + 1e-6
    lr = LogisticRegression(C=C, max_iter=5000).fit((X - mean) / scale, y)
    return HarmVerifier(mean, scale, lr.coef_[0], float(lr.intercept_[0]), threshold, meta or {})


def out_of_fold(X, y, strata, C) -> np.ndarray:
    from sklearn.model_selection import StratifiedKFold

    oof = np.zeros(len(y))
    for seed in range(REPEATS):
        for tr, te in StratifiedKFold(FOLDS, shuffle=True, random_state=seed).split(X, strata):
            oof[te] += _fit(X[tr], y[tr], C).probability(X[te]) / REPEATS
    return oof


def counts(pred, gold) -> dict:
    tp, fp, fn = int((pred & gold).sum()), int((pred & ~gold).sum()), int((~pred & gold).sum())
    return {
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "precision": round(tp / max(tp + fp, 1), 3),
        "recall": round(tp / max(tp + fn, 1), 3),
    }


def l1_tier(p, sentiment, y, gate: float, threshold: float) -> dict:
    """The out-of-fold precision and recall, over the matched rows, of the L1 path at each cut
    of the verifier's probability (``p``; ``sentiment``: the tag's sentiment score, which must
    be at most ``gate``), and the chosen cut: the lowest at or above the verifier's threshold
    whose precision reaches ``L1_PRECISION`` (None when none does)."""
    gold = y == 1
    table = {
        f"{cut:.3f}": counts((p >= cut) & (sentiment <= gate), gold)
        for cut in L1_CUTS
        if cut >= threshold
    }
    chosen = next(
        (float(c) for c, v in table.items() if v["precision"] >= L1_PRECISION and v["tp"]), None
    )
    return {"gate": gate, "target_precision": L1_PRECISION, "cut": chosen, "table": table}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--name", default="harm-verifier-e5-v1")
    ap.add_argument("--pipeline", default="default", help="Whose encoder and rules it reads.")
    args = ap.parse_args(argv)
    t0 = time.time()
    from sklearn.metrics import log_loss

    from service.config import Settings
    from training.manifest import model_registry, update_artifact

    settings = Settings()
    reg = model_registry(settings)
    encoder = reg.encoder(reg.pipeline_spec(args.pipeline).encoder)
    tagger = reg.tagger(args.pipeline, verified=False).fit(encoder)
    rows = labeled_rows()
    X_all, matched = matched_clauses(encoder, tagger, rows)
    gold_all = np.array([r["label"] == 1 for r in rows])
    src_all = np.array([r["source"] for r in rows])
    lang_all = np.array([r["language"] for r in rows])
    X, y = X_all[matched], gold_all[matched].astype(int)
    strata = y * len(SOURCES) + np.array([SOURCES.index(v) for v in src_all[matched]])
    losses, oofs = {}, {}
    for C in STRENGTHS:
        oofs[C] = out_of_fold(X, y, strata, C)
        losses[C] = float(log_loss(y, np.clip(oofs[C], 1e-6, 1 - 1e-6)))
        print(f"C={C}: out-of-fold log loss {losses[C]:.4f}", file=sys.stderr)
    C = min(STRENGTHS, key=lambda c: (round(losses[c], 4), -c))
    oof = oofs[C]

    def f1(th):
        c = counts(oof >= th, y == 1)
        return 2 * c["tp"] / max(2 * c["tp"] + c["fp"] + c["fn"], 1)

    threshold = float(max(THRESHOLDS, key=lambda th: (round(f1(th), 4), th)))
    # out-of-fold decisions on every labeled row (unmatched rows stay untagged either way)
    verified = matched.copy()
    verified[np.where(matched)[0]] = oof >= threshold
    report = {}
    for name, sel in {
        "all": np.ones(len(rows), bool),
        "development": src_all == "development",
        "alert_pool (rows the rules tag: precision only)": src_all == "alert_pool",
        "ordinary_matches train (rows the rules tag: precision only)": (
            src_all == "ordinary_matches"
        ),
        "en": lang_all == "en",
        "zh": lang_all == "zh",
    }.items():
        report[name] = {
            "rows": int(sel.sum()),
            "rules": counts(matched[sel], gold_all[sel]),
            "rules+verifier (out-of-fold)": counts(verified[sel], gold_all[sel]),
        }
    # the L1 tier, on the same out-of-fold probabilities and the tag's sentiment (the head on the
    # matched clause, as the pipeline reads a rule tag's sentiment)
    from service.alerts.rules import AlertConfig
    from service.nlp.sentiment import sentiment_score
    from service.nlp.tagger import rule_tag_confidence

    spec = reg.pipeline_spec(args.pipeline)
    head = reg.sentiment_head(spec.sentiment)
    severe = [
        r for r in AlertConfig.from_yaml(settings.alerts_path).rules if r.type == "severe_complaint"
    ]
    gate = next((r.max_sentiment_score for r in severe if r.severity == "L1"), -0.6)
    tier = l1_tier(oof, sentiment_score(head.predict_proba(X)), y, gate, threshold)
    # rows were matched, so the taxonomy has a safety aspect with rules
    rule_conf = next(
        a.rules.confidence for a in tagger.taxonomy.aspects if a.kind == "severity" and a.safety
    )
    if tier["cut"] is not None:
        tier["min_confidence"] = round(rule_tag_confidence(rule_conf, tier["cut"]), 4)
    model = _fit(X, y, C, threshold, {"C": C, "examples": int(len(y)), "positives": int(y.sum())})
    path = settings.models_dir / f"{args.name}.safetensors"
    model.save(path)
    wall = time.time() - t0
    update_artifact(
        settings.models_dir,
        args.name,
        {
            "kind": "harm_verifier",
            "base": spec.encoder,
            "files": {"weights": {"path": path.name}},  # update_artifact adds its sha256
            "params": {
                "threshold": threshold,
                "C": C,
                "feature": "matched clause embedding",
                "l1_cut": tier["cut"],
                "l1_min_confidence": tier.get("min_confidence"),
            },
            "metrics": {
                "out_of_fold": {
                    k: v["rules+verifier (out-of-fold)"]
                    for k, v in report.items()
                    if k in ("development", "all")
                },
                "l1_tier_out_of_fold": {k: v for k, v in tier.items() if k != "table"}
                | {"at_cut": tier["table"].get(f"{tier['cut']:.3f}") if tier["cut"] else None},
                "reports": "benchmarks/severity_detector.py --split heldout | ordinary",
            },
            "training_data": [
                f"benchmarks/severity/labels.csv dev+test rows the safety rules match "
                f"({int((matched & (src_all == 'development')).sum())})",
                f"benchmarks/severity/alert_pool_labels.csv rows ("
                f"{int((matched & (src_all == 'alert_pool')).sum())}; report texts left out)",
                f"benchmarks/severity/ordinary_matches_labels.csv train rows ("
                f"{int((matched & (src_all == 'ordinary_matches')).sum())})",
            ],
            "trained_with": f"python -m training.train_harm_verifier --name {args.name} "
            f"--pipeline {args.pipeline} ({wall:.0f}s on this machine)",
        },
    )

    def cell(c: dict) -> str:
        return f"{c['precision']:.2f}/{c['recall']:.2f} ({c['tp']}/{c['fp']}/{c['fn']})"

    print(f"{'rows':<56} {'rules: P/R (TP/FP/FN)':<26} rules+verifier, out-of-fold")
    for k, v in report.items():
        label = f"{k} ({v['rows']})"
        print(f"{label:<56} {cell(v['rules']):<26} {cell(v['rules+verifier (out-of-fold)'])}")
    print(f"\nL1 tier (out-of-fold, tag sentiment <= {gate}): verifier cut -> P/R (TP/FP/FN)")
    for c, v in tier["table"].items():
        print(f"  {c}  {cell(v)}{'  <- chosen' if tier['cut'] == float(c) else ''}")
    print(
        f"L1 rule min_confidence: {tier.get('min_confidence')} (cut {tier['cut']}, rule "
        f"confidence {rule_conf})"
    )
    print(
        json.dumps(
            {
                "artifact": args.name,
                "l1_tier": tier,
                "C": C,
                "threshold": threshold,
                "log_loss_by_C": {str(k): round(v, 4) for k, v in losses.items()},
                "examples": int(len(y)),
                "report": report,
                "wall_s": round(wall, 1),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
