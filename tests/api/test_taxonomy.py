"""The taxonomy against a generated store, with the real model, on both databases: the reason
stored with each tag, the preview (API and CLI), saving (admin), store calibration, and
aspect_mapping.yaml read from the config folder."""

import copy
import json
import shutil

import pytest
import yaml
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.api.deps import Caller, get_caller
from service.config import DEFAULT_CONFIG_DIR, Settings
from service.runtime import Runtime

N_ITEMS = 160


def _rows():
    from service.demo.generator import DemoConfig, DemoGenerator

    rows = [row for row, _ in DemoGenerator(DemoConfig(per_week=8, seed=3)).items()][:N_ITEMS]
    assert len(rows) == N_ITEMS
    return rows


@pytest.fixture
def config_dir(tmp_path):
    d = tmp_path / "configs"
    shutil.copytree(DEFAULT_CONFIG_DIR, d)
    return d


@pytest.fixture
def store(db_url, real_pipeline, config_dir, tmp_path):
    """A runtime over a generated store with its own copy of the configs and of the pipeline
    object (saving a taxonomy rebuilds its tagger; the shared one must stay as it is)."""
    own = copy.copy(real_pipeline)
    rt = Runtime(Settings(database_url=db_url, config_dir=config_dir), scorer=own)
    report = rt.ingest_service().ingest(list(enumerate(_rows())), keep_results=False)
    assert report.counts["rejected"] == 0
    yield rt
    rt.close()
    for f in rt.registry.calibration_path("default").parent.glob("default-tax-*.json"):
        if f.stat().st_mtime >= tmp_path.stat().st_mtime:
            f.unlink()


def _draft(config_dir, extra=None, drop=(), edit=None) -> dict:
    tax = yaml.safe_load((config_dir / "taxonomy.yaml").read_text(encoding="utf-8"))
    tax["aspects"] = [a for a in tax["aspects"] if a["id"] not in drop]
    for a in tax["aspects"]:
        if edit and a["id"] in edit:
            a.update(edit[a["id"]])
    if extra:
        tax["aspects"].append(extra)
    return tax


SPICE = {
    "id": "spiciness",
    "names": {"en": "Spiciness", "zh": "辣度"},
    "description": "How hot and spicy the food is, chili heat.",
    "examples": ["way too spicy", "not spicy enough", "太辣了"],
    "rules": {"include": {"en": ["spicy", "chili", "chilli", "hot sauce"], "zh": ["辣"]}},
}


def test_each_tag_is_stored_with_its_reason_and_rule(store):
    with store.sessions() as s:
        from service.store.repo import FeedbackFilter, list_feedback

        items, _ = list_feedback(s, flt=FeedbackFilter(), limit=N_ITEMS)
    tags = [a for it in items if it.score for a in it.score.aspects]
    assert tags
    assert {a.reason for a in tags} <= {"rule", "model", "rule+model"}
    assert any(a.reason != "model" and a.rule for a in tags)  # rules fired and were kept
    assert all((a.rule is not None) == (a.reason != "model") for a in tags)
    for a in tags:
        if a.aspect == "health_safety":  # kind severity: only its rules tag it
            assert a.reason == "rule" or a.reason == "rule+model"


def test_preview_counts_matches_borderline_overlap_and_change(store, config_dir):
    app = create_app(runtime=store)
    with TestClient(app) as c:
        r = c.post(
            "/v1/taxonomy/preview",
            json={
                "taxonomy": _draft(config_dir, extra=SPICE, drop=("availability",)),
                "sample": N_ITEMS,
                "examples": 3,
            },
        )
        assert r.status_code == 200, r.text
        body = r.json()
    assert body["sample"] == N_ITEMS and body["in_scope"] == N_ITEMS
    by = {a["aspect"]: a for a in body["aspects"]}
    spice = by["spiciness"]
    assert spice["change"]["new_aspect"] and spice["change"]["gained"] == spice["tagged"] > 0
    # a new aspect tags a plausible share, neither nothing nor half the store
    assert 0.01 < spice["share"] < 0.5
    assert sum(spice["by_reason"].values()) == spice["tagged"]
    m = spice["matches"][0]
    assert m["reason"] in {"rule", "rule+model", "model"}
    assert m["evidence"] and m["evidence"][:50] in m["text"]
    assert spice["overlap"].get("taste", 0) > 0  # spicy items are also taste items
    for side in ("just_tagged", "just_missed"):
        for it in spice["borderline"][side]:
            assert abs(it["model_probability"] - spice["threshold"]) <= 0.12 + 1e-9
    assert body["removed_aspects"] and body["removed_aspects"][0]["aspect"] == "availability"
    unchanged = by["packaging"]["change"]
    assert not unchanged["new_aspect"] and unchanged["gained"] == unchanged["lost"] == 0


def test_preview_lists_the_safety_matches_the_harm_verifier_dropped(store, config_dir):
    """A team writing rules sees what its safety rules match that is not tagged: the harm
    verifier's drops, with the clause and the verifier's probability."""
    base = _rows()[0]
    extra = [
        {**base, "external_id": "injury-1", "text": "Our striker is out with a knee injury again"},
        {**base, "external_id": "injury-2", "text": "He injured his hamstring in training"},
        {**base, "external_id": "harm-1", "text": "Found a piece of glass in my salad"},
    ]
    report = store.ingest_service().ingest(list(enumerate(extra)), keep_results=False)
    assert report.counts["rejected"] == 0
    app = create_app(runtime=store)
    with TestClient(app) as c:
        r = c.post(
            "/v1/taxonomy/preview",
            json={"taxonomy": _draft(config_dir), "aspect": "health_safety", "examples": 10},
        )
        assert r.status_code == 200, r.text
    hs = r.json()["aspects"][0]
    dropped = hs["dropped_by_verifier"]
    texts = {d["text"] for d in dropped["items"]}
    assert {extra[0]["text"], extra[1]["text"]} <= texts
    assert dropped["count"] >= 2
    for d in dropped["items"]:
        assert d["rule"] and d["evidence"] and 0 <= d["verifier_probability"] < 0.5
    assert extra[2]["text"] not in texts  # a harm report is tagged, not dropped
    # topic aspects are never checked
    with TestClient(app) as c:
        body = c.post("/v1/taxonomy/preview", json={"taxonomy": _draft(config_dir)}).json()
    assert all(
        a["dropped_by_verifier"]["count"] == 0 for a in body["aspects"] if a["kind"] == "topic"
    )


def test_preview_one_aspect_scope_roles_and_errors(store, config_dir):
    app = create_app(runtime=store)
    with TestClient(app) as c:
        draft = _draft(config_dir, extra=SPICE)
        one = c.post(
            "/v1/taxonomy/preview", json={"taxonomy": draft, "aspect": "spiciness", "sample": 50}
        ).json()
        assert [a["aspect"] for a in one["aspects"]] == ["spiciness"] and one["sample"] == 50
        bad = c.post("/v1/taxonomy/preview", json={"taxonomy": draft, "aspect": "nope"})
        assert (
            bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "body.aspect"
        )
        broken = _draft(config_dir, edit={"taste": {"rules": {"include": {"en": ["tasty ~2"]}}}})
        r = c.post("/v1/taxonomy/preview", json={"taxonomy": broken})
        assert r.status_code == 422 and "aspect 'taste'" in r.json()["error"]["message"]
        r = c.post("/v1/taxonomy/preview", json={"taxonomy": "aspects: [{id: Bad Id}]"})
        assert r.status_code == 422 and r.json()["error"]["details"][0]["field"].startswith(
            "body.taxonomy.aspects"
        )
        east = sum(1 for row in _rows() if row.get("region") == "East")
        app.dependency_overrides[get_caller] = lambda: Caller(
            id="east", role="analyst", regions=("East",)
        )
        scoped = c.post("/v1/taxonomy/preview", json={"taxonomy": draft, "sample": N_ITEMS}).json()
        assert scoped["in_scope"] == east and scoped["sample"] == east
        app.dependency_overrides[get_caller] = lambda: Caller(id="v", role="viewer")
        assert c.post("/v1/taxonomy/preview", json={"taxonomy": draft}).status_code == 403
        assert c.get("/v1/taxonomy").status_code == 200
        assert c.put("/v1/taxonomy", json={"taxonomy": draft}).status_code == 403
        app.dependency_overrides[get_caller] = lambda: Caller(id="a", role="analyst")
        assert c.put("/v1/taxonomy", json={"taxonomy": draft}).status_code == 403


def test_saving_a_taxonomy_writes_it_keeps_a_backup_and_makes_scores_stale(store, config_dir):
    app = create_app(runtime=store)
    before = (config_dir / "taxonomy.yaml").read_text(encoding="utf-8")
    with TestClient(app) as c:
        old_version = c.get("/v1/health").json()["model_version"]
        r = c.put("/v1/taxonomy", json={"taxonomy": _draft(config_dir, extra=SPICE)})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["stale_items"] == N_ITEMS and body["model_version"] != old_version
        assert "spiciness" in [a["id"] for a in c.get("/v1/taxonomy").json()["taxonomy"]["aspects"]]
        # new items are tagged with the saved taxonomy at once
        res = c.post(
            "/v1/score", json={"items": [{"text": "Way too spicy, my mouth is on fire"}]}
        ).json()
        assert "spiciness" in {a["aspect"] for a in res["results"][0]["aspects"]}
        assert res["model_version"] == body["model_version"]
    backups = list(config_dir.glob("taxonomy.yaml.*.bak"))
    assert len(backups) == 1 and backups[0].read_text(encoding="utf-8") == before


def test_cli_taxonomy_test_prints_the_preview(store, config_dir, tmp_path):
    from typer.testing import CliRunner

    from service.cli.main import app

    draft = tmp_path / "draft.yaml"
    draft.write_text(
        yaml.safe_dump(_draft(config_dir, extra=SPICE), allow_unicode=True), encoding="utf-8"
    )
    env = {
        "RADAR_DATABASE_URL": store.settings.database_url,
        "RADAR_CONFIG_DIR": str(config_dir),
        "RADAR_NO_PROGRESS": "1",
        "COLUMNS": "200",
    }
    res = CliRunner().invoke(
        app,
        ["taxonomy", "test", str(draft), "--aspect", "spiciness", "--json", "--sample", "80"],
        env=env,
    )
    assert res.exit_code == 0, res.output
    body = json.loads(res.stdout)
    assert [a["aspect"] for a in body["aspects"]] == ["spiciness"] and body["sample"] == 80
    table = CliRunner().invoke(app, ["taxonomy", "test", str(draft)], env=env)
    assert table.exit_code == 0 and "spiciness (new)" in table.stdout
    bad = CliRunner().invoke(app, ["taxonomy", "test", str(draft), "--aspect", "nope"], env=env)
    assert bad.exit_code == 2 and "nope" in bad.output


def test_calibration_holds_an_over_tagging_new_aspect_to_the_configured_share(store, config_dir):
    """A new aspect whose definition overlaps a common one (taste's words, no rules of its own)
    is tagged by the model on some of the store (the relevance model keeps it small: taste
    outranks it); with ``max_share`` set to half that share, calibration raises its threshold to
    the one that holds it there, leaves the aspects within the share alone, and the served
    tagger uses it."""
    from service.store.repo import FeedbackFilter

    taste = next(a for a in _draft(config_dir)["aspects"] if a["id"] == "taste")
    broad = {
        "id": "flavour_talk",
        "names": {"en": "Flavour talk"},
        "description": taste["description"],
        "examples": taste["examples"],
    }
    store.save_taxonomy(yaml.safe_dump(_draft(config_dir, extra=broad), allow_unicode=True))
    base = store.tagger_for(store.settings.taxonomy, calibrated=False).relevance.threshold
    with store.sessions() as s:
        first = {
            a["aspect"]: a
            for a in store.calibrate_taxonomy(
                s, flt=FeedbackFilter(), sample=N_ITEMS, max_share=1.0, min_share=0.0
            )["aspects"]
        }
        share = first["flavour_talk"]["model_share"]
        assert share >= 0.02, first["flavour_talk"]  # it does tag some items before calibration
        cap = share / 2
        res = store.calibrate_taxonomy(
            s, flt=FeedbackFilter(), sample=N_ITEMS, max_share=cap, min_share=0.0
        )
    by = {a["aspect"]: a for a in res["aspects"]}
    assert res["items"] == N_ITEMS
    assert by["flavour_talk"]["change"] == "raised" and by["flavour_talk"]["threshold"] > base
    assert by["flavour_talk"]["share_after"] <= cap + 1e-9
    kept = [
        a
        for a in by.values()
        if a["model_share"] is not None and a["model_share"] + a["rule_share"] <= cap
    ]
    assert kept and all(a["change"] == "kept" and a["threshold"] == base for a in kept)
    # the calibrated thresholds are served (and named in the model version)
    assert store.scorer.aspects.calibration is not None
    assert store.scorer.aspects.threshold("flavour_talk") == by["flavour_talk"]["threshold"]
    assert store.registry.calibration_path("default").exists()


def test_aspect_mapping_is_read_from_the_config_folder(config_dir, real_pipeline):
    from service.nlp.registry import ModelRegistry

    (config_dir / "aspect_mapping.yaml").write_text(
        "mams-acsa:\n  categories: {staff: customer_service, food: taste}\n", encoding="utf-8"
    )
    st = Settings(config_dir=config_dir)
    reg = ModelRegistry(
        st.models_dir, taxonomy=st.taxonomy, cache_dir=st.model_cache_dir, config_dir=config_dir
    )
    assert reg.mapping() == {"mams-acsa": {"staff": "customer_service", "food": "taste"}}
    rt = Runtime(st)
    assert rt.registry.mapping_path == config_dir / "aspect_mapping.yaml"
    # mapped by name only: no head is served, whatever the mapping says
    tagger = rt.registry.tagger("default")
    assert tagger.covered == set()
