"""Train the aspect relevance model across every labeled aspect set and its own taxonomy.

    python -m training.train_relevance [--name aspects-relevance-e5-v1] [--iterations 250]

Sets (``training/aspect_sets.py``): MAMS ACSA train and val, SemEval-2014 restaurants,
SemEval-2016 laptops and restaurants, the Dutch SemEval-2016 restaurants, the ASAP samples;
each with the taxonomy written for it before its sentences were read
(``benchmarks/taxonomies/``). One row per (sentence, aspect), the features of
``service/nlp/relevance.py`` read from the served encoder's single pass, label 1 when the
sentence's gold categories map onto the aspect. Each set is also added once with its rules
switched off (weight ½), so the model knows what a similarity means where a team wrote no
rule or writes in a language it has none for. Sets are weighted by 1/√rows, so the
19-aspect laptops set does not drown the 5-aspect one.

The threshold is chosen without looking at the set it is reported on: for each set, the
leave-one-family-out model (trained on the other families, never on a sentence that set also
has) is evaluated on it, and its threshold is the one that maximises pooled micro-F1 of the
same procedure run inside the training families. The served model is trained on every set;
its threshold maximises the pooled micro-F1 of the leave-one-family-out predictions.

Writes ``models/<name>.safetensors`` and its manifest entry, prints a table and JSON.
Feature matrices are cached per set (resumable); ~4 min on 2 cores after the embeddings.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass

import numpy as np

from service.nlp.relevance import FEATURES, Prototypes, RelevanceModel, TreeEnsemble, batch_features
from service.nlp.rules import compile_taxonomy_rules
from training import aspect_sets as A

THRESHOLDS = np.round(np.arange(0.2, 0.71, 0.025), 3)
RULE_COLUMNS = [FEATURES.index(f) for f in ("rule_matched", "any_rule_matched", "aspect_has_rules")]


@dataclass
class SetFeatures:
    X: np.ndarray  # (n, K, F)
    rule_hit: np.ndarray  # (n, K)
    best_clause: np.ndarray  # (n, K)


def set_features(s: A.AspectSet, encoder) -> SetFeatures:
    """Features of every (sentence, aspect) of a set, cached beside its embeddings."""
    path = (
        A.cache_dir()
        / f"{encoder.name}-{getattr(encoder, 'runtime', 'torch')}"
        / f"features-{s.name.replace('/', '_').replace(' ', '_')}-{s.digest()}-{len(FEATURES)}.npz"
    )
    if path.exists():
        z = np.load(path)
        return SetFeatures(z["X"], z["rule_hit"], z["best_clause"])
    e = A.embed(s, encoder)
    protos = Prototypes.of(s.taxonomy, encoder)
    rules = compile_taxonomy_rules(s.taxonomy)
    ids = s.ids
    ruled = np.array([aid in rules and rules[aid].applies(s.language) for aid in ids])
    hit = np.array(
        [
            [aid in rules and bool(rules[aid].match(text, s.language)) for aid in ids]
            for text in s.texts
        ]
    )
    X, best = batch_features(
        protos, e.text, e.clauses, hit, np.repeat(ruled[None, :], len(s), axis=0)
    )
    out = SetFeatures(X, hit, best)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, X=out.X, rule_hit=out.rule_hit, best_clause=out.best_clause)
    tmp.replace(path)
    return out


def _rows(parts: list[tuple[A.AspectSet, SetFeatures, np.ndarray]]):
    X, Y, W = [], [], []
    for s, f, mask in parts:
        x = f.X[mask].reshape(-1, f.X.shape[2])
        y = s.gold[mask].reshape(-1)
        w = np.full(len(y), 1.0 / np.sqrt(len(y)))
        off = x.copy()
        off[:, RULE_COLUMNS] = 0  # the same sentences where no rule was written
        X += [x, off]
        Y += [y, y]
        W += [w, w * 0.5]
    X, Y, W = np.concatenate(X), np.concatenate(Y), np.concatenate(W)
    return X, Y, W * len(W) / W.sum()


def fit(parts, iterations: int, seed: int = 0) -> TreeEnsemble:
    from sklearn.ensemble import HistGradientBoostingClassifier

    X, Y, W = _rows(parts)
    clf = HistGradientBoostingClassifier(
        max_iter=iterations,
        learning_rate=0.05,
        max_leaf_nodes=31,
        min_samples_leaf=40,
        l2_regularization=1.0,
        random_state=seed,
    )
    clf.fit(X, Y, sample_weight=W)
    return TreeEnsemble.from_sklearn(clf)


def predict(trees: TreeEnsemble, f: SetFeatures) -> np.ndarray:
    n, K, F = f.X.shape
    return trees.predict_proba(f.X.reshape(-1, F)).reshape(n, K)


def best_threshold(preds: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """The threshold with the best pooled micro-F1 over ``(probabilities, gold)`` pairs."""
    best = (-1.0, 0.5)
    for t in THRESHOLDS:
        tp = sum(int(((p >= t) & g).sum()) for p, g in preds)
        npred = sum(int((p >= t).sum()) for p, g in preds)
        ngold = sum(int(g.sum()) for p, g in preds)
        f1 = 2 * tp / max(npred + ngold, 1)
        if f1 > best[0]:
            best = (f1, float(t))
    return best[1]


def leave_one_out(
    sets: dict[str, A.AspectSet],
    feats: dict[str, SetFeatures],
    target: str,
    iterations: int,
    nested: bool = True,
) -> tuple[np.ndarray, float, TreeEnsemble]:
    """Probabilities for ``target`` from a model that never saw its family, the threshold
    chosen inside the training families (nested leave-one-family-out), and the model."""
    T = sets[target]
    key_of = {id(s): k for k, s in sets.items()}
    train = [(s, feats[key_of[id(s)]], m) for s, m in A.training_sets_for(T, sets)]
    trees = fit(train, iterations)
    probs = predict(trees, feats[target])
    if not nested:
        return probs, 0.5, trees
    inner = []
    families = {s.family for s, _, _ in train}
    for fam in sorted(families):
        held = [(s, f, m) for s, f, m in train if s.family == fam]
        rest = [(s, f, m) for s, f, m in train if s.family != fam]
        t_inner = fit(rest, iterations)
        inner += [(predict(t_inner, f)[m], s.gold[m]) for s, f, m in held]
    return probs, best_threshold(inner), trees


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--name", default="aspects-relevance-e5-v1")
    ap.add_argument(
        "--pipeline", default="default", help="Whose encoder the features are read from."
    )
    ap.add_argument("--iterations", type=int, default=250)
    args = ap.parse_args(argv)
    t0 = time.time()
    from service.config import Settings
    from training.manifest import model_registry, update_artifact

    settings = Settings()
    reg = model_registry(settings)
    encoder = reg.encoder(reg.pipeline_spec(args.pipeline).encoder)
    sets = A.load_all()
    feats = {k: set_features(s, encoder) for k, s in sets.items()}
    # the served threshold: pooled leave-one-family-out predictions of every set
    loo = []
    for fam in sorted({s.family for s in sets.values()}):
        held = [k for k, s in sets.items() if s.family == fam]
        rest = [(s, feats[k], np.ones(len(s), bool)) for k, s in sets.items() if s.family != fam]
        held_keys = set().union(*(sets[k].keys() for k in held))
        rest = [
            (s, f, np.array([A.dedup_key(t) not in held_keys for t in s.texts])) for s, f, _ in rest
        ]
        trees = fit(rest, args.iterations)
        loo += [(predict(trees, feats[k]), sets[k].gold) for k in held]
    threshold = best_threshold(loo)
    trees = fit([(s, feats[k], np.ones(len(s), bool)) for k, s in sets.items()], args.iterations)
    model = RelevanceModel(trees, threshold)
    path = settings.models_dir / f"{args.name}.safetensors"
    model.save(path, sets=sorted(sets), iterations=args.iterations)
    from service.nlp.checksums import sha256_file

    wall = time.time() - t0
    n_rows = sum(len(s) * len(s.ids) for s in sets.values())
    n_defs = len({(a.id, a.description) for s in sets.values() for a in s.taxonomy.aspects})
    update_artifact(
        settings.models_dir,
        args.name,
        {
            "kind": "aspect_relevance",
            "base": reg.pipeline_spec(args.pipeline).encoder,
            "files": {"weights": {"path": path.name, "sha256": sha256_file(path)}},
            "params": {
                "threshold": threshold,
                "features": list(FEATURES),
                "trees": int(len(trees.offsets)),
            },
            "metrics": {
                "see": "benchmarks/aspects_new_taxonomy.py (leave-one-family-out zero-shot per set)"
            },
            "training_data": [
                f"{s.name}: {len(s)} sentences × {len(s.ids)} aspects of benchmarks/taxonomies/"
                f"{s.meta.get('taxonomy', '')}"
                for s in sets.values()
            ],
            "trained_with": f"python -m training.train_relevance --iterations {args.iterations} "
            f"({wall:.0f}s on this machine; {n_rows} pairs, {n_defs} aspect definitions)",
        },
    )
    print(
        json.dumps(
            {
                "artifact": args.name,
                "threshold": threshold,
                "trees": int(len(trees.offsets)),
                "pairs": n_rows,
                "definitions": n_defs,
                "wall_s": round(wall, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
