"""Team models with the real model on a generated store: training improves the team's own
held-out labels over the generic model, promotion, rescoring and rollback, the registry's
refusals, the labeling queue's choices, and the training job through the API."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.domain import Label
from service.nlp.registry import ModelError
from service.store import labels as store
from service.store import repo
from service.teach.queue import Candidates, choose

START = datetime(2026, 10, 1, tzinfo=UTC)
NOW = datetime(2026, 12, 1, tzinfo=UTC)

# A domain whose convention the generic model does not know: in this team's complaint channel
# a parcel that has not arrived is a complaint (negative), not a neutral statement.
LATE = [
    "my order {n} still hasn't arrived",
    "where is my parcel, it has been {d} days",
    "order {n} is still not here after {d} days",
    "still waiting for delivery of order {n}",
    "the package was supposed to come {d} days ago",
    "tracking says order {n} has not moved in {d} days",
    "nobody told me when order {n} will arrive",
    "it is day {d} and my noodles have not been delivered",
]
NEUTRAL = [
    "I ordered order {n} on monday",
    "picked up order {n} at the store today",
    "is there a vegetarian option for order {n}",
    "do you ship to the north region, order {n}",
    "I bought the {d} pack for my office",
    "what time does the shop open on day {d}",
]
POSITIVE = [
    "order {n} arrived early and tasted great",
    "love the new flavour, will buy again",
    "delivery of order {n} was fast, thanks",
    "the noodles were delicious and the box was intact",
    "great value for a {d} pack",
]


def _rows(seed: int, n_late: int, n_neutral: int, n_pos: int, prefix: str):
    rng = random.Random(seed)
    rows, gold = [], {}
    i = 0
    for templates, label, count in (
        (LATE, "negative", n_late),
        (NEUTRAL, "neutral", n_neutral),
        (POSITIVE, "positive", n_pos),
    ):
        for _ in range(count):
            i += 1
            text = rng.choice(templates).format(n=rng.randint(1000, 99999), d=rng.randint(2, 12))
            ext = f"{prefix}{i}"
            rows.append(
                {
                    "source": "shop",
                    "external_id": ext,
                    "channel": "complaint",
                    "text": text,
                    "created_at": (START + timedelta(hours=i)).isoformat(),
                    "region": "East",
                    "language": "en",
                }
            )
            gold[ext] = label
    return rows, gold


@pytest.fixture
def team_store(db_url, real_runtime_factory):
    rt = real_runtime_factory(db_url)
    rows, gold = _rows(1, 50, 35, 35, "t")
    held, held_gold = _rows(2, 25, 15, 15, "h")
    rated, rated_gold = _rows(3, 10, 0, 10, "r")  # unlabeled but rated: weak labels
    for r in rated:
        r.update(rating=1 if rated_gold[r["external_id"]] == "negative" else 5, rating_scale=5)
    rep = rt.ingest_service().ingest(list(enumerate(rows + held + rated)), keep_results=False)
    assert rep.counts["rejected"] == 0
    with rt.sessions() as s:
        ids = {
            k[1]: e.id
            for k, e in repo.existing_by_key(
                s, keys=[("shop", r["external_id"]) for r in rows + held + rated]
            ).items()
        }
        for ext, label in gold.items():
            store.put_labels(
                s,
                feedback_id=ids[ext],
                labels=[Label(target="sentiment", value=label)],
                source="import",
                actor="test",
                now=NOW,
            )
        s.commit()
    yield rt, ids, held, held_gold
    rt.close()


def _macro_f1(pred, gold):
    f1 = []
    for c in ("negative", "neutral", "positive"):
        tp = sum(p == c and g == c for p, g in zip(pred, gold))
        n = sum(p == c for p in pred) + sum(g == c for g in gold)
        f1.append(2 * tp / n if n else 0.0)
    return float(np.mean(f1))


def test_a_team_model_beats_the_generic_one_on_held_out_labels_and_serves_once_promoted(team_store):
    rt, ids, held, held_gold = team_store
    m = rt.train_team_model(name="complaints-v1", actor="test")
    report = m["report"]
    assert report["items"] == 120 and report["folds"] == 5
    # the cross-validated report shows the gain on the team's own labels
    assert report["sentiment"]["team"]["macro_f1"] > report["sentiment"]["generic"]["macro_f1"] + 5
    assert m["params"]["labels"]["sentiment"] == 120 and m["size_bytes"] < 200_000
    # the rated items joined as weak labels (but near-duplicates of earlier items)
    weak = m["params"]["labels"]["weak_ratings"]
    assert 0 < weak <= 20 and m["params"]["fit"]["sentiment"]["weak_rows"] == weak
    # not served until promoted
    assert rt.scorer is rt.base_scorer
    texts = [r["text"] for r in held]
    generic = [s.score.sentiment.value for s in rt.scorer.score(texts)]
    serving = rt.promote_model("complaints-v1", actor="test")
    assert serving["model"] == "complaints-v1" and "team-complaints-v1@" in serving["model_version"]
    team = [s.score.sentiment.value for s in rt.scorer.score(texts)]
    gold = [held_gold[r["external_id"]] for r in held]
    assert _macro_f1(team, gold) > _macro_f1(generic, gold) + 0.05, (
        _macro_f1(team, gold),
        _macro_f1(generic, gold),
    )
    # stored items are stale for the new version; rescore brings them to it, labels stay
    from service.jobs.ingest import rescore

    with rt.sessions() as s:
        assert repo.count_stale(s, model_version=rt.scorer.version) == len(ids)
    assert rescore(sessions=rt.sessions, scorer=rt.scorer, chunk_size=64) == len(ids)
    with rt.sessions() as s:
        assert repo.count_stale(s, model_version=rt.scorer.version) == 0
        assert len(store.labeled_items(s)) == 120
    # rollback: the generic model scores again
    after = rt.rollback_model(actor="test")
    assert after["model"] == "generic" and rt.scorer is rt.base_scorer


def test_promotion_rollback_order_and_refusals(team_store):
    rt, ids, _, _ = team_store
    rt.train_team_model(name="a", actor="test")
    rt.train_team_model(name="b", actor="test")
    with pytest.raises(Exception, match="exists"):
        rt.train_team_model(name="a", actor="test")
    rt.promote_model("a", actor="test")
    rt.promote_model("b", actor="test")
    assert rt.serving()["model"] == "b"
    assert rt.rollback_model(actor="test")["model"] == "a"  # the one promoted before
    assert rt.rollback_model(actor="test")["model"] == "generic"
    assert rt.rollback_model(actor="test")["model"] == "generic"
    # a stored model whose bytes changed is refused, and so is one over another sentiment head
    with rt.sessions() as s:
        row = store.team_model(s, name="a")
        blob = bytes(row.weights)
        row.weights = blob[:-1] + bytes([blob[-1] ^ 1])
        s.commit()
    with pytest.raises(ModelError, match="checksum"):
        rt.promote_model("a", actor="test")
    from service.nlp.team import TeamModel

    model = TeamModel.from_bytes(blob, rt.base_scorer.sentiment)
    model.meta["base_sentiment_sha256"] = "0" * 64
    other = model.to_bytes()
    import hashlib

    with pytest.raises(ModelError, match="base_sentiment_sha256"):
        rt.registry.team_pipeline(
            rt.base_scorer, team_name="x", blob=other, sha256=hashlib.sha256(other).hexdigest()
        )
    with rt.sessions() as s:  # audited
        from sqlalchemy import select

        from service.store.tables import AuditRow

        actions = [a for (a,) in s.execute(select(AuditRow.action))]
    assert actions.count("model.promote") == 2 and actions.count("model.rollback") == 3
    assert actions.count("model.train") == 2


def test_aspect_heads_learn_a_teams_aspect_and_an_edited_definition_falls_back(team_store):
    rt, ids, held, _ = team_store
    with rt.sessions() as s:
        for ext, fid in ids.items():
            if not ext.startswith("t"):
                continue
            text = s.get(repo.FeedbackRow, fid).text
            late = any(
                w in text
                for w in (
                    "arrive",
                    "parcel",
                    "not here",
                    "waiting",
                    "supposed",
                    "moved",
                    "delivered",
                )
            )
            store.put_labels(
                s,
                feedback_id=fid,
                labels=[
                    Label(target="aspect", aspect="delivery", value="present" if late else "absent")
                ],
                source="import",
                actor="test",
                now=NOW,
            )
        s.commit()
    m = rt.train_team_model(name="with-aspects", actor="test")
    assert "delivery" in m["params"]["fit"]["aspects"]["trained"]
    per = m["report"]["aspects"]["per_aspect"]["delivery"]
    assert per["team"]["f1"] >= per["generic"]["f1"]
    team = rt.load_team_model("with-aspects")
    assert team.aspects.team_served == ["delivery"]
    # an edited definition: the head no longer serves that aspect
    from service.domain import Taxonomy

    tax = rt.settings.taxonomy.model_dump()
    for a in tax["aspects"]:
        if a["id"] == "delivery":
            a["description"] = a["description"] + " Also the courier's manners."
    edited = Taxonomy.model_validate(tax)
    from service.nlp.team import TeamModel

    tagger = rt.registry.tagger("default", edited, team=TeamModel(None, team.aspects.team))
    assert tagger.team_served == []


def test_the_queue_asks_uncertain_items_first_and_aspects_without_labels():
    d = 8
    rng = np.random.default_rng(0)
    emb = rng.standard_normal((4, d)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    sentiment = np.array(
        [[0.95, 0.03, 0.02], [0.34, 0.33, 0.33], [0.9, 0.05, 0.05], [0.9, 0.05, 0.05]]
    )
    aspects = np.zeros((4, 2))
    aspects[3, 1] = 0.8  # item 3 probably has aspect 1, which nobody has labeled yet
    aspects[2, 0] = 0.8  # item 2 has aspect 0, labeled 50 times
    c = Candidates(emb, sentiment, aspects, np.array([0.4, 0.4]))
    order = [i for i, _, _ in choose(c, k=4, label_counts=np.array([50, 0]))]
    assert order.index(1) < order.index(0)  # an uncertain item before a confident one
    assert order.index(3) < order.index(2)  # an aspect without labels gets asked
    # diversity: a near copy of a chosen item waits
    emb2 = np.vstack([emb[1], emb[1] * 0.999 + 0.001, emb[0]])
    emb2 /= np.linalg.norm(emb2, axis=1, keepdims=True)
    c2 = Candidates(
        emb2, np.array([sentiment[1], sentiment[1], [0.5, 0.3, 0.2]]), np.zeros((3, 0)), np.zeros(0)
    )
    from service.teach.queue import WEIGHTS

    no_typicality = {
        **WEIGHTS,
        "typicality": 0.0,
    }  # (a pair of copies is what is most typical here)
    assert [i for i, _, _ in choose(c2, k=3, label_counts=np.zeros(0), weights=no_typicality)][
        :2
    ] == [0, 2]
    assert [
        i
        for i, _, _ in choose(c2, k=3, label_counts=np.zeros(0), weights=no_typicality, diversity=0)
    ][:2] == [0, 1]


def test_the_queue_covers_unlabeled_regions_before_uncertain_copies():
    rng = np.random.default_rng(3)
    d = 16
    centres = np.eye(d)[:3]
    sizes = (30, 20, 10)
    emb = np.vstack(
        [c + 0.05 * rng.standard_normal((m, d)) for c, m in zip(centres, sizes, strict=True)]
    ).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    group = np.repeat([0, 1, 2], sizes)
    sentiment = np.tile([0.9, 0.05, 0.05], (len(emb), 1))
    # the small group is the uncertain one, about an aspect nobody has labeled
    sentiment[group == 2] = [0.34, 0.33, 0.33]
    aspects = np.where(group == 2, 0.4, 0.0)[:, None]
    c = Candidates(emb, sentiment, aspects, np.array([0.4]))
    picked = [i for i, _, _ in choose(c, k=3, label_counts=np.zeros(1))]
    # one item of each region, the largest region first; by score alone the small region's
    # uncertain items come first
    assert [int(group[i]) for i in picked] == [0, 1, 2]
    by_score = [i for i, _, _ in choose(c, k=3, label_counts=np.zeros(1), cover=False)]
    assert int(group[by_score[0]]) == 2
    # a region the team has labeled already waits for the others
    labeled = centres[:1] + 0.01
    labeled /= np.linalg.norm(labeled, axis=1, keepdims=True)
    picked = [i for i, _, _ in choose(c, k=2, label_counts=np.zeros(1), labeled_emb=labeled)]
    assert [int(group[i]) for i in picked] == [1, 2]


def test_queue_and_training_job_through_the_api(team_store):
    rt, ids, _, _ = team_store
    client = TestClient(create_app(rt.settings, runtime=rt))
    q = client.get("/v1/labeling/queue", params={"limit": 5}).json()
    # the candidates: the 75 unlabeled items less the near-duplicates of others
    assert len(q["items"]) == 5 and 5 <= q["pool"] <= 75
    held_ids = {fid for ext, fid in ids.items() if ext[0] in "hr"}
    assert {it["id"] for it in q["items"]} <= held_ids
    assert q["labels"]["sentiment"] == 120 and q["quality"] is None
    r = client.post("/v1/models/train", json={"name": "api-1"})
    assert r.status_code == 202
    job = r.json()
    for _ in range(240):
        job = client.get(f"/v1/models/jobs/{job['id']}").json()
        if job["status"] != "running":
            break
        time.sleep(0.5)
    assert job["status"] == "succeeded", job
    listed = client.get("/v1/models").json()
    assert listed["serving"]["model"] == "generic" and listed["models"][0]["name"] == "api-1"
    assert client.post("/v1/models/api-1/promote", json={}).json()["model"] == "api-1"
    assert client.get("/v1/models").json()["serving"]["model"] == "api-1"
    q = client.get("/v1/labeling/queue", params={"limit": 3}).json()
    assert q["quality"]["model"] == "api-1" and "disagreement" in q["items"][0]["signals"]
    assert client.post("/v1/models/rollback").json()["model"] == "generic"
    assert client.post("/v1/models/nope/promote", json={}).status_code == 404
