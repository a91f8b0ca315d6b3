"""The analytics endpoints and `radar analyze` over the keyword-scored store (both databases)."""

import json

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from service.api.app import create_app
from service.api.deps import Caller, get_caller
from service.cli.main import app as cli


def test_segments_endpoints_answer_and_respect_the_scope(segment_store):
    rt, items = segment_store
    api = create_app(runtime=rt)
    with TestClient(api) as c:
        r = c.get("/v1/segments", params={"dimension": ["region", "age_group"]})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["total"]["volume"] == len(items) and len(body["segments"]) == 6
        d = c.get(
            "/v1/segments/differences",
            params={"dimension": ["region", "age_group"], "compare_aspect": "taste"},
        ).json()
        assert d["findings"][0]["segment"] == {"region": "East", "age_group": "18-24"}
        bad = c.get("/v1/segments", params={"dimension": "shoe_size"})
        assert bad.status_code == 422 and "shoe_size" in bad.json()["error"]["message"]
        assert c.get("/v1/segments").status_code == 422  # a dimension is required
        api.dependency_overrides[get_caller] = lambda: Caller(
            id="west", role="viewer", regions=("West",)
        )
        scoped = c.get("/v1/segments", params={"dimension": "region"}).json()
        assert [s["segment"]["region"] for s in scoped["segments"]] == ["West"]
        assert scoped["total"]["volume"] == sum(i["region"] == "West" for i in items)
        diffs = c.get("/v1/segments/differences", params={"dimension": "region"}).json()
        assert all(f["segment"]["region"] == "West" for f in diffs["findings"])


def test_themes_endpoint_with_nothing_in_scope(segment_store):
    rt, _ = segment_store
    api = create_app(runtime=rt)
    api.dependency_overrides[get_caller] = lambda: Caller(id="x", role="viewer", regions=("Mars",))
    with TestClient(api) as c:
        r = c.get("/v1/themes")
        assert r.status_code == 200 and r.json()["themes"] == [] and r.json()["items"] == 0
        assert c.get("/v1/themes/999").status_code == 404


def test_cli_tables_and_json(segment_store, monkeypatch):
    rt, items = segment_store
    monkeypatch.setenv("RADAR_DATABASE_URL", rt.settings.database_url)
    runner = CliRunner()
    res = runner.invoke(
        cli, ["analyze", "differences", "-d", "region", "-d", "age_group", "--aspect", "taste"]
    )
    assert res.exit_code == 0, res.output
    assert "East / 18-24" in res.output
    res = runner.invoke(cli, ["analyze", "segments", "-d", "region", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["total"]["volume"] == len(items)
    res = runner.invoke(cli, ["analyze", "segments", "-d", "nope"])
    assert res.exit_code == 2 and "nope" in res.output
