"""How fast a team teaches Radar its domain: the learning curve of team models. Prints JSON.

    python benchmarks/learning_curve.py [--sets laptops16,dutch16,mams,zh-aspect-polarity]
                                        [--budgets 25,50,100,200,500] [--seeds 1]

Each set in ``../shared/data`` plays a new team's domain. Its sentences are split once (seed)
into a pool the team labels from (60%) and a test part (40%) never labeled. A simulated team
labels ``budget`` items from the pool, chosen

- ``queue``: by the labeling queue (``service/teach/queue.py``, the code the API serves) in
  rounds of 25, a team model retrained after each round (its uncertainty and its disagreement
  with the generic model pick the next round), the first round from the generic model;
- ``random``: at random (the baseline, in the same run);

then ``fit_team`` (what ``radar train`` fits) learns from those labels, and the test part is
scored. Reported against the generic model (no labels) and against a team model trained on
every pool label: sentiment macro-F1 and accuracy; aspect micro-F1 with precision, recall and
false positives; and the wall time of each training run (``fit_team`` + the 5-fold report
``radar train`` computes; the encoder pass is timed apart, it is the same per item as scoring).

Sets (the taxonomy of each aspect set was written before its sentences were read:
``benchmarks/taxonomies/``):

- ``laptops16``: SemEval-2016 laptops (en), 19 aspects of ``semeval16_laptops.yaml``, and the
  sentence sentiment (all opinions positive/negative/neutral; mixed sentences carry no
  sentiment label; sentences without opinions are neutral);
- ``dutch16``: SemEval-2016 Dutch restaurants (nl: no Dutch in the generic head's training),
  12 aspects, sentiment as above;
- ``mams``: MAMS ACSA train (en), 8 aspects (its sentences mix polarities: aspects only);
- ``zh-aspect-polarity``: Chinese camera, car, notebook and phone review clauses (zh), the
  sentence sentiment where its aspect polarities agree.

The generic aspect model for a set is the relevance model trained **without** that set's
family (``training.train_relevance.leave_one_out``), as a new team would get it.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

ROUND = 25


def sentence_sentiment(cats: dict[str, str]) -> int:
    """-1 (no label: mixed), else the class index of the sentence's agreeing opinions."""
    pol = {p for p in cats.values() if p in ("negative", "neutral", "positive")}
    if not cats:
        return 1
    if len(pol) != 1:
        return -1
    return ("negative", "neutral", "positive").index(pol.pop())


def zh_polarity():
    from training.data import data_dir

    by_text: dict[str, set] = {}
    with open(data_dir() / "chinese_aspect_polarity" / "train.tsv", encoding="utf-8") as fh:
        for r in csv.DictReader(fh, delimiter="\t"):
            if r["domain"] in ("camera", "car", "notebook", "phone"):
                by_text.setdefault(r["text"], set()).add(r["polarity"].lower())
    texts, ys = [], []
    for t, pols in by_text.items():
        if len(pols) == 1:
            texts.append(t)
            ys.append(("negative", "neutral", "positive").index(pols.pop()))
    return texts, np.array(ys)


def load(name: str):
    """``(texts, language, taxonomy or None, aspect gold (n, K) or None, sentiment (n,) or None, family)``."""
    from training import aspect_sets as A
    from training import data as D

    if name == "laptops16":
        s = A.semeval16_laptops()
        rows = D.semeval16_categories(
            D.data_dir() / "semeval2016_absa" / "ABSA16_Laptops_Train_SB1_v2.xml"
        )
    elif name == "dutch16":
        s = A.semeval16_dutch()
        rows = D.semeval16_categories(
            D.data_dir() / "semeval2016_absa" / "ABSA16NL_Restaurants_Train.xml"
        )
    elif name == "mams":
        s = A.mams_train()
        return s, None
    elif name == "zh-aspect-polarity":
        texts, ys = zh_polarity()
        return None, (texts, "zh", ys)
    else:
        raise SystemExit(f"unknown set {name!r}")
    by_text = {t: sentence_sentiment(c) for t, c in rows if t.strip()}
    return s, np.array([by_text[t] for t in s.texts])


def metrics(pred_P, tags, y_sent, gold) -> dict:
    from service.teach.train import _prf, sentiment_figures

    out = {}
    if y_sent is not None:
        m = y_sent >= 0
        out["sentiment"] = sentiment_figures(pred_P[m], y_sent[m])
    if gold is not None:
        out["aspects"] = {k: v for k, v in _prf(tags, gold).items()}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--sets", default="laptops16,dutch16,mams,zh-aspect-polarity")
    ap.add_argument("--budgets", default="25,50,100,200,500")
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument(
        "--first-seed",
        type=int,
        default=0,
        help="Seeds first-seed .. first-seed+seeds-1 (the queue was tuned on seeds 0-2).",
    )
    ap.add_argument(
        "--queue-weights",
        default=None,
        help="JSON overriding some of the queue's signal weights, e.g. '{\"typicality\": 1}'.",
    )
    ap.add_argument(
        "--no-cover",
        action="store_true",
        help="The queue by score and diversity alone (no clusters): the previous queue.",
    )
    ap.add_argument(
        "--iterations",
        type=int,
        default=250,
        help="Boosting rounds of the leave-one-out relevance model.",
    )
    args = ap.parse_args()
    t_start = time.time()

    from service.config import Settings
    from service.domain import Taxonomy
    from service.nlp.registry import ModelRegistry
    from service.nlp.relevance import RelevanceModel
    from service.nlp.tagger import AspectTagger, definition_fingerprint
    from service.teach.features import from_embeddings
    from service.teach.queue import WEIGHTS, Candidates, choose
    from service.teach.train import (
        Recipe,
        TeamLabels,
        evaluate,
        fit_team,
        sentiment_probs,
        team_tags,
    )
    from training import aspect_sets as A

    st = Settings()
    reg = ModelRegistry(st.models_dir, taxonomy=st.taxonomy, cache_dir=st.model_cache_dir)
    spec = reg.pipeline_spec("default")
    encoder = reg.encoder(spec.encoder)
    base = reg.sentiment_head(spec.sentiment)
    served = reg.relevance_model(spec.relevance)
    budgets = [int(b) for b in args.budgets.split(",")]
    weights = {**WEIGHTS, **json.loads(args.queue_weights or "{}")}
    out = {
        "queue": {"weights": weights, "cover": not args.no_cover},
        "encoder": f"{spec.encoder} ({encoder.runtime})",
        "budgets": budgets,
        "seeds": list(range(args.first_seed, args.first_seed + args.seeds)),
        "sets": {},
    }
    sets_cache = None

    for name in args.sets.split(","):
        t_set = time.time()
        aspect_set, sent = load(name)
        if aspect_set is not None:
            from training.train_relevance import leave_one_out, set_features

            if sets_cache is None:
                sets_cache = A.load_all()
                feats_cache = {k: set_features(s, encoder) for k, s in sets_cache.items()}
            key = {"laptops16": "laptops16", "dutch16": "dutch16", "mams": "mams-train"}[name]
            cached = (
                Path(A.cache_dir())
                / f"loo-{key}-{args.iterations}-{sets_cache[key].digest()}.safetensors"
            )
            if cached.exists():
                trees = RelevanceModel.load(cached).trees
            else:
                _, _, trees = leave_one_out(
                    sets_cache, feats_cache, key, args.iterations, nested=False
                )
                RelevanceModel(trees, served.threshold).save(cached)
            taxonomy = aspect_set.taxonomy
            texts, language = aspect_set.texts, aspect_set.language
            tagger = AspectTagger(taxonomy, relevance=RelevanceModel(trees, served.threshold)).fit(
                encoder
            )
            emb = A.embed(aspect_set, encoder)
            gold_all = aspect_set.gold
            y_all = sent
        else:
            texts, language, y_all = sent
            taxonomy = Taxonomy.model_validate(
                {
                    "aspects": [
                        {
                            "id": "none",
                            "names": {"en": "none"},
                            "description": "unused",
                            "examples": ["unused"],
                        }
                    ]
                }
            )
            tagger = AspectTagger(taxonomy, relevance=served).fit(encoder)
            fake = A.AspectSet(
                f"{name}", language, taxonomy, texts, np.zeros((len(texts), 1), bool), family=name
            )
            emb = A.embed(fake, encoder)
            gold_all = None
        t0 = time.time()
        F = from_embeddings(
            texts, [language] * len(texts), emb.spans, emb.text, emb.clauses, tagger=tagger
        )
        featurize_s = time.time() - t0
        ids = taxonomy.ids
        n = len(texts)
        labels_all = TeamLabels.empty(
            n,
            ids,
            fingerprints={a.id: definition_fingerprint(a) for a in taxonomy.aspects},
            trainable=set(ids) if gold_all is not None else set(),
        )
        if gold_all is not None:
            labels_all.aspects[:] = gold_all.astype(int)
        if y_all is not None:
            labels_all.sentiment[:] = y_all
        row = {
            "items": n,
            "language": language,
            "aspects": len(ids) if gold_all is not None else 0,
            "taxonomy": f"benchmarks/taxonomies/{aspect_set.meta['taxonomy']}.yaml"
            if aspect_set
            else None,
            "tagging_s_per_1000": round(1000 * featurize_s / n, 2),
            "runs": [],
        }
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            rng = np.random.default_rng(100 + seed)
            perm = rng.permutation(n)
            cut = int(0.6 * n)
            pool, test = perm[:cut], perm[cut:]
            Ft = F.take(test)
            y_test = y_all[test] if y_all is not None else None
            g_test = gold_all[test] if gold_all is not None else None

            def score(model) -> dict:
                head = (
                    model.sentiment if model is not None and model.sentiment is not None else base
                )
                tags = team_tags(model, Ft, ids)[0] if model is not None else Ft.generic_tags
                return metrics(sentiment_probs(head, Ft.text), tags, y_test, g_test)

            run = {"seed": seed, "pool": len(pool), "test": len(test), "generic": score(None)}
            t0 = time.time()
            full, _ = fit_team(base, F.take(pool), labels_all.take(pool))
            run["all_labels"] = {
                **score(full),
                "labels": len(pool),
                "fit_s": round(time.time() - t0, 2),
            }
            for strategy in ("queue", "random"):
                picked: list[int] = []
                model = None
                curve = []
                order = rng.permutation(pool)  # the random strategy's order
                for budget in budgets:
                    if budget > len(pool):
                        break
                    while len(picked) < budget:
                        k = min(ROUND, budget - len(picked))
                        if strategy == "random":
                            picked.extend(int(i) for i in order[len(picked) : len(picked) + k])
                            continue
                        rest = np.setdiff1d(pool, picked)
                        Fr = F.take(rest)
                        head = (
                            model.sentiment
                            if model is not None and model.sentiment is not None
                            else base
                        )
                        probs = team_tags(model, Fr, ids)[1] if model is not None else Fr.probs
                        thr = np.array([tagger.threshold(a) for a in ids])
                        if model is not None and model.aspects is not None:
                            for m_, aid in enumerate(model.aspects.aspects):
                                thr[ids.index(aid)] = model.aspects.threshold[m_]
                        counts = (
                            np.array(
                                [
                                    (labels_all.aspects[picked, j] >= 0).sum() if picked else 0
                                    for j in range(len(ids))
                                ],
                                float,
                            )
                            if gold_all is not None
                            else np.zeros(len(ids))
                        )
                        cand = Candidates(
                            Fr.text,
                            sentiment_probs(head, Fr.text),
                            probs if gold_all is not None else np.zeros((len(rest), len(ids))),
                            thr,
                            sentiment_probs(base, Fr.text) if model is not None else None,
                        )
                        chosen = choose(
                            cand,
                            k=k,
                            label_counts=counts,
                            labeled_emb=F.text[picked] if picked else None,
                            weights=weights,
                            cover=not args.no_cover,
                        )
                        picked.extend(int(rest[i]) for i, _, _ in chosen)
                        model, _ = fit_team(base, F.take(picked), labels_all.take(picked))
                    t0 = time.time()
                    model, info = fit_team(base, F.take(picked), labels_all.take(picked))
                    fit_s = time.time() - t0
                    t0 = time.time()
                    evaluate(base, F.take(picked), labels_all.take(picked), None, Recipe())
                    report_s = time.time() - t0
                    curve.append(
                        {
                            "labels": budget,
                            **score(model),
                            "train_s": round(fit_s + report_s, 2),
                            "heads": len(info["aspects"].get("trained", [])),
                        }
                    )
                    print(
                        f"{name} seed {seed} {strategy} {budget}: {json.dumps(curve[-1])}",
                        file=sys.stderr,
                        flush=True,
                    )
                run[strategy] = curve
            row["runs"].append(run)
        row["wall_s"] = round(time.time() - t_set, 1)
        out["sets"][name] = row
    out["summary"] = summarise(out, budgets)
    out["wall_s"] = round(time.time() - t_start, 1)
    print(json.dumps(out, indent=2, ensure_ascii=False))


def _mean(xs):
    xs = [x for x in xs if x is not None]
    return round(float(np.mean(xs)), 1) if xs else None


def summarise(out: dict, budgets: list[int]) -> dict:
    """Means over seeds per set: the figures the issue's targets read."""
    s = {}
    for name, row in out["sets"].items():
        d = {}
        for target, key in (("sentiment", "macro_f1"), ("aspects", "f1")):
            if target not in row["runs"][0]["generic"]:
                continue
            t = {
                "generic": _mean([r["generic"][target][key] for r in row["runs"]]),
                "all_labels": _mean([r["all_labels"][target][key] for r in row["runs"]]),
            }
            for strategy in ("queue", "random"):
                t[strategy] = {
                    str(c["labels"]): _mean([r[strategy][i][target][key] for r in row["runs"]])
                    for i, c in enumerate(row["runs"][0][strategy])
                }
            if target == "aspects":
                t["queue_false_positives"] = {
                    str(c["labels"]): c["aspects"]["false_positives"]
                    for c in row["runs"][0]["queue"]
                }
                t["generic_false_positives"] = row["runs"][0]["generic"]["aspects"][
                    "false_positives"
                ]
            d[f"{target}_{key}"] = t
        d["train_s_max"] = max(
            c["train_s"] for r in row["runs"] for st in ("queue", "random") for c in r[st]
        )
        s[name] = d
    gains = []
    for d in s.values():
        for _k, t in d.items():
            if isinstance(t, dict) and "100" in t.get("queue", {}):
                gains.append(t["queue"]["100"] - t["random"]["100"])
    s["queue_minus_random_at_100_mean"] = _mean(gains)
    return s


if __name__ == "__main__":
    main()
