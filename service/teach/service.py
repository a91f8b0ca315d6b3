"""Teaching Radar against the store: training data, training runs, the queue, promotion.

``Teacher`` holds what the runtime wires in (sessions, the generic pipeline's encoder, tagger
and sentiment head, the taxonomy, the settings) and does the store side of ``service/teach``:

- ``train``: every human label plus rated items as weak labels → one encoder pass
  (``features.featurize``) → cross-validated report against the generic model
  (``train.evaluate``) → the final model on every label → a ``team_model`` row;
- ``queue``: the next items to label (``queue.choose``) among the newest unlabeled ones;
- ``promote`` / ``rollback``: which model scores new items (the runtime picks it up).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property

import numpy as np
from sqlalchemy import select

from service.domain import SENTIMENT_LABELS
from service.nlp.tagger import definition_fingerprint
from service.store import labels as store
from service.store.repo import FeedbackFilter
from service.store.tables import AspectScoreRow, FeedbackRow, ScoreRow
from service.teach.features import featurize
from service.teach.queue import Candidates, choose
from service.teach.train import Recipe, TeamLabels, Weak, evaluate, fit_team

NAME = re.compile(r"^[a-z0-9][a-z0-9_.\-]{0,39}$")


class TeachError(ValueError):
    pass


@dataclass
class Teacher:
    sessions: object
    load_encoder: object  # () -> the generic pipeline's encoder (loaded on first use)
    load_tagger: object  # () -> its tagger (no team heads), fitted
    thresholds: object  # aspect id -> the generic tagger's threshold
    base_sentiment: object
    taxonomy: object
    settings: object  # TeachSettings
    meta: dict  # registry.team_meta(): base pipeline, encoder, sentiment head checksum

    @cached_property
    def encoder(self):
        return self.load_encoder()

    @cached_property
    def tagger(self):
        return self.load_tagger()

    # --- training data -------------------------------------------------------------------

    def labels_for(self, items: list) -> TeamLabels:
        ids = self.taxonomy.ids
        lab = TeamLabels.empty(
            len(items),
            ids,
            fingerprints={a.id: definition_fingerprint(a) for a in self.taxonomy.aspects},
            trainable={a.id for a in self.taxonomy.aspects if a.kind == "topic"},
        )
        for i, it in enumerate(items):
            if it.sentiment:
                lab.sentiment[i] = SENTIMENT_LABELS.index(it.sentiment)
            for aid, v in it.aspects.items():
                if aid in ids:
                    lab.aspects[i, ids.index(aid)] = 1 if v == "present" else 0
            for aid, v in it.aspect_sentiments.items():
                if aid in ids:
                    lab.aspect_sentiment[i, ids.index(aid)] = SENTIMENT_LABELS.index(v)
        return lab

    def weak_labels(self, session, exclude: set[int]) -> Weak | None:
        """Rated items as weak sentiment labels, read from their stored embeddings (scored by
        this encoder; others are skipped)."""
        t = self.settings
        if t.rating_weight <= 0 or t.rating_max_items <= 0:
            return None
        rated = store.rated_items(
            session,
            negative_max=t.rating_negative_max,
            positive_min=t.rating_positive_min,
            scale=t.rating_scale,
            exclude=exclude,
            limit=t.rating_max_items,
        )
        if not rated:
            return None
        label_of = {i: lab for i, _, _, lab in rated}
        prefix = f"{self.meta['base_pipeline']}:{self.meta['base_encoder']}-"
        embs, ys = [], []
        ids = list(label_of)
        for start in range(0, len(ids), 500):
            part = ids[start : start + 500]
            for fid, blob, version in session.execute(
                select(ScoreRow.feedback_id, ScoreRow.embedding, ScoreRow.model_version).where(
                    ScoreRow.feedback_id.in_(part)
                )
            ):
                if version.startswith(prefix):
                    embs.append(np.frombuffer(blob, dtype="<f2").astype(np.float32))
                    ys.append(SENTIMENT_LABELS.index(label_of[fid]))
        if not embs:
            return None
        return Weak(np.stack(embs), np.array(ys), t.rating_weight)

    # --- a training run ------------------------------------------------------------------

    def train(
        self, *, name: str | None, actor: str, now: datetime | None = None, progress=None
    ) -> dict:
        """Train, evaluate and store a team model; returns its summary (not promoted)."""
        now = now or datetime.now(UTC)
        name = name or f"team-{now.strftime('%Y%m%d-%H%M%S')}"
        if not NAME.match(name) or name == "generic":
            raise TeachError(
                f"model name {name!r}: use 1-40 lowercase letters, digits, '.', '_' or '-' "
                "(and not 'generic')"
            )
        step = progress or (lambda stage, done, total: None)
        t0 = time.perf_counter()
        with self.sessions() as s:
            if store.team_model(s, name=name) is not None:
                raise TeachError(f"a team model named {name!r} exists; choose another name")
            items = store.labeled_items(s)
            weak = self.weak_labels(s, {it.id for it in items})
        if not items:
            raise TeachError(
                "no labels yet: correct items, answer the labeling queue or `radar labels import`"
            )
        labels = self.labels_for(items)
        step("encode", 0, len(items))
        feats = featurize(
            [it.text for it in items],
            [it.language for it in items],
            encoder=self.encoder,
            tagger=self.tagger,
            progress=lambda d, n: step("encode", d, n),
        )
        t_encode = time.perf_counter() - t0
        recipe = Recipe(min_labels=self.settings.min_aspect_labels, folds=self.settings.folds)
        report = evaluate(
            self.base_sentiment,
            feats,
            labels,
            weak,
            recipe,
            progress=lambda d, n: step("cross-validate", d, n),
        )
        step("fit", 0, 1)
        model, info = fit_team(
            self.base_sentiment,
            feats,
            labels,
            weak,
            recipe,
            meta={
                **self.meta,
                "dim": int(self.encoder.dim),
                "taxonomy": self.taxonomy.fingerprint(),
            },
        )
        step("fit", 1, 1)
        blob = model.to_bytes()
        sha = hashlib.sha256(blob).hexdigest()
        counts = {
            "items": len(items),
            "sentiment": int((labels.sentiment >= 0).sum()),
            "aspects": {
                aid: {
                    "present": int((labels.aspects[:, k] == 1).sum()),
                    "absent": int((labels.aspects[:, k] == 0).sum()),
                }
                for k, aid in enumerate(labels.aspect_ids)
                if (labels.aspects[:, k] >= 0).any()
            },
            "aspect_sentiment": int((labels.aspect_sentiment >= 0).sum()),
            "weak_ratings": 0 if weak is None else int(len(weak.label)),
        }
        params = {
            "labels": counts,
            "fit": info,
            "seconds": {"encode": round(t_encode, 2), "total": round(time.perf_counter() - t0, 2)},
            "size_bytes": len(blob),
        }
        with self.sessions() as s:
            row = store.save_team_model(
                s,
                name=name,
                base_pipeline=self.meta["base_pipeline"],
                base_encoder=self.meta["base_encoder"],
                taxonomy=self.taxonomy.fingerprint(),
                sha256=sha,
                weights=blob,
                report=json.dumps(report),
                params=json.dumps(params),
                created_by=actor[:128],
                created_at=now,
            )
            s.commit()
            return summary(row)

    # --- the queue -----------------------------------------------------------------------

    def queue(self, *, flt: FeedbackFilter, limit: int, team=None) -> dict:
        """The next ``limit`` items to label within ``flt`` (a data scope included), with why."""
        ids = self.taxonomy.ids
        with self.sessions() as s:
            labeled = store.labeled_ids(s)
            counts = store.label_counts(s)
            stmt = flt.scored(
                FeedbackRow.id,
                FeedbackRow.text,
                FeedbackRow.language,
                ScoreRow.embedding,
                ScoreRow.p_negative,
                ScoreRow.p_neutral,
                ScoreRow.p_positive,
            )
            stmt = stmt.order_by(FeedbackRow.created_at.desc(), FeedbackRow.id.desc()).limit(
                self.settings.queue_pool + len(labeled)
            )
            rows = [r for r in s.execute(stmt) if r[0] not in labeled][: self.settings.queue_pool]
            conf = np.zeros((len(rows), len(ids)))
            pos = {r[0]: i for i, r in enumerate(rows)}
            for start in range(0, len(rows), 500):
                part = [r[0] for r in rows[start : start + 500]]
                for fid, aid, c in s.execute(
                    select(
                        AspectScoreRow.feedback_id, AspectScoreRow.aspect, AspectScoreRow.confidence
                    ).where(AspectScoreRow.feedback_id.in_(part))
                ):
                    if aid in ids:
                        conf[pos[fid], ids.index(aid)] = c
            labeled_emb = None
            if labeled:
                sample = list(labeled)[:2000]
                blobs = s.scalars(
                    select(ScoreRow.embedding).where(ScoreRow.feedback_id.in_(sample))
                ).all()
                labeled_emb = (
                    np.stack([np.frombuffer(b, "<f2").astype(np.float32) for b in blobs])
                    if blobs
                    else None
                )
        per_aspect = np.array([sum(counts.get(f"aspect:{a}", {}).values()) for a in ids], float)
        if not rows:
            return {"items": [], "pool": 0, "labels": _count_summary(counts, ids)}
        emb = np.stack([np.frombuffer(r[3], "<f2").astype(np.float32) for r in rows])
        sent = np.array([[r[4], r[5], r[6]] for r in rows])
        generic = self.base_sentiment.predict_proba(emb) if team is not None else None
        thresholds = np.array([self.thresholds(a) for a in ids])
        age = np.linspace(0, 1, len(rows))
        picked = choose(
            Candidates(emb, sent, conf, thresholds, generic, age),
            k=limit,
            label_counts=per_aspect,
            labeled_emb=labeled_emb,
        )
        items = [
            {
                "id": rows[i][0],
                "text": rows[i][1],
                "language": rows[i][2],
                "priority": round(score, 3),
                "signals": sig,
                "sentiment": SENTIMENT_LABELS[int(sent[i].argmax())],
                "aspects": [ids[k] for k in np.where(conf[i] > 0)[0]],
            }
            for i, score, sig in picked
        ]
        return {"items": items, "pool": len(rows), "labels": _count_summary(counts, ids)}


def _count_summary(counts: dict, ids: list[str]) -> dict:
    return {
        "sentiment": sum(counts.get("sentiment", {}).values()),
        "aspects": {a: counts.get(f"aspect:{a}", {}) for a in ids},
    }


def summary(row, *, serving: bool | None = None) -> dict:
    out = {
        "name": row.name,
        "sha256": row.sha256,
        "base_pipeline": row.base_pipeline,
        "base_encoder": row.base_encoder,
        "taxonomy": row.taxonomy,
        "created_by": row.created_by,
        "created_at": row.created_at,
        "promoted_at": row.promoted_at,
        "demoted_at": row.demoted_at,
        "size_bytes": len(row.weights),
        "report": json.loads(row.report),
        "params": json.loads(row.params or "{}"),
    }
    if serving is not None:
        out["serving"] = serving
    return out


def quality_gap(report: dict) -> list[str]:
    """What got worse than the generic model in a report by more than a point."""
    worse = []
    for target, key in (
        ("sentiment", "macro_f1"),
        ("aspects", "f1"),
        ("aspect_sentiment", "macro_f1"),
    ):
        part = report.get(target)
        if part and part["team"][key] < part["generic"][key] - 1.0:
            worse.append(f"{target} {key} {part['team'][key]} < generic {part['generic'][key]}")
    return worse
