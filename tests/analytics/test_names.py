"""Brands, aspects and regions by id, display name or alias, case-insensitively, in the API and
the CLI (both databases); an unknown one is a 422 or exit 2 that lists the valid ones."""

import json

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from service.analytics.names import Names, UnknownName
from service.api.app import create_app
from service.api.deps import Caller, get_caller
from service.cli.main import app as cli
from tests.analytics.conftest import START, AspectKeywordScorer, segment_items
from tests.conftest import ingest_new


@pytest.fixture
def named_store(db_url, make_runtime):
    rt = make_runtime(db_url, scorer=AspectKeywordScorer())
    items = segment_items()
    for i, it in enumerate(items):  # a rival, and a feed's own brand that is in no brand list
        it["brand"] = ("spicewell", "noodleking", "Ours")[i % 3]
    return ingest_new(rt, items), items


def _volume(c, **params):
    r = c.get("/v1/segments", params={"dimension": "region", **params})
    assert r.status_code == 200, r.text
    return r.json()["total"]["volume"]


def test_the_api_reads_names_and_aliases_and_refuses_unknown_ones(named_store):
    rt, items = named_store
    with TestClient(create_app(runtime=rt)) as c:
        by_id = _volume(c, brand="noodleking")
        assert by_id == sum(i["brand"] == "noodleking" for i in items) > 0
        assert (
            _volume(c, brand="NoodleKing")
            == _volume(c, brand="noodle KING")
            == _volume(c, brand="面大王")
            == by_id
        )
        ours = sum(i["brand"] == "Ours" for i in items)
        assert (
            _volume(c, brand="Ours") == _volume(c, brand="OURS") == ours
        )  # the feed's brand, not our_brand
        assert (
            _volume(c, region="west")
            == _volume(c, region="West")
            == sum(i["region"] == "West" for i in items)
        )
        taste = _volume(c, aspect="taste")
        assert (
            taste > 0
            and _volume(c, aspect="Taste and flavour") == _volume(c, aspect="口味") == taste
        )
        for field, value in (
            ("brand", "Noodle Queen"),
            ("region", "Atlantis"),
            ("aspect", "warp drive"),
        ):
            r = c.get("/v1/segments", params={"dimension": "region", field: value})
            assert r.status_code == 422, (field, r.text)
            err = r.json()["error"]
            assert value in err["message"] and err["details"][0]["field"] == f"query.{field}"
        bad = c.get("/v1/segments", params={"dimension": "region", "brand": "Noodle Queen"}).json()[
            "error"
        ]
        assert {"noodleking", "spicewell", "ours"} <= set(bad["details"][0]["valid"])
        bad = c.get("/v1/segments", params={"dimension": "region", "region": "Atlantis"}).json()[
            "error"
        ]
        assert set(bad["details"][0]["valid"]) == {"East", "West", "North"}
        d = c.get(
            "/v1/segments/differences",
            params={"dimension": "region", "compare_aspect": "TASTE AND FLAVOUR"},
        )
        by_id = c.get(
            "/v1/segments/differences", params={"dimension": "region", "compare_aspect": "taste"}
        )
        assert (
            d.status_code == 200
            and d.json() == by_id.json()
            and "taste" in {f["aspect"] for f in d.json()["findings"]}
        )
        t = c.get("/v1/trends", params={"aspect": "口味", "since": START.isoformat()})
        t_id = c.get("/v1/trends", params={"aspect": "taste", "since": START.isoformat()})
        assert (
            t.status_code == 200
            and t.json() == t_id.json()
            and sum(p["mentions"] for p in t.json()["points"]) > 0
        )
        assert c.get("/v1/trends", params={"aspect": "nope"}).status_code == 422
        assert c.get("/v1/alerts", params={"brand": "NoodleKing"}).status_code == 200
        assert c.get("/v1/alerts", params={"brand": "Noodle Queen"}).status_code == 422
        # a regional key is told only of its own regions
        c.app.dependency_overrides[get_caller] = lambda: Caller(
            id="w", role="viewer", regions=("West",)
        )
        bad = c.get("/v1/segments", params={"dimension": "region", "region": "Atlantis"}).json()[
            "error"
        ]
        assert bad["details"][0]["valid"] == ["West"] and "East" not in bad["message"]


def test_the_cli_reads_names_and_exits_2_on_unknown_ones(named_store):
    rt, _ = named_store
    runner = CliRunner()
    args = ["--database-url", rt.settings.database_url]

    def seg(*opts):
        res = runner.invoke(
            cli, [*args, "analyze", "segments", "--dimension", "region", "--json", *opts]
        )
        return res.exit_code, (
            json.loads(res.stdout)["total"]["volume"] if res.exit_code == 0 else res.output
        )

    assert seg("--brand", "Noodle King") == seg("--brand", "noodleking")
    assert seg("--brand", "Noodle King")[1] > 0
    assert seg("--region", "EAST") == seg("--region", "East")
    code, output = seg("--brand", "Noodle Queen")
    assert code == 2 and "Noodle Queen" in output and "noodleking" in output
    bench = runner.invoke(
        cli,
        [
            *args,
            "benchmark",
            "--brand",
            "NoodleKing",
            "--aspect",
            "Taste and flavour",
            "--json",
            "--days",
            "60",
        ],
    )
    assert bench.exit_code == 0, bench.output
    body = json.loads(bench.stdout)
    assert body["gaps"] and {(g["competitor"], g["aspect"]) for g in body["gaps"]} == {
        ("noodleking", "taste")
    }
    bad = runner.invoke(cli, [*args, "benchmark", "--aspect", "price", "--json"])
    assert bad.exit_code == 2 and "price_value" in bad.output


def test_names_without_a_store():
    from service.config import Settings

    st = Settings()
    names = Names(st.taxonomy, st.competitors)
    assert (
        names.brand(None, "辣之源") == "spicewell"
        and names.brand(None, "ours") == st.competitors.our_brand
    )
    assert names.aspects(None, ["口味", "taste"]) == ("taste",)
    with pytest.raises(UnknownName) as exc:
        names.aspect(None, "warp drive")
    assert "taste" in exc.value.valid


def test_key_and_subscription_scopes_read_names_and_refuse_unknown_ones(named_store):
    rt, _ = named_store
    with TestClient(create_app(runtime=rt)) as c:
        r = c.post(
            "/v1/subscriptions",
            json={
                "channel": "email",
                "target": "lead.west@example.com",
                "brands": ["Noodle King"],
                "regions": ["west"],
                "aspects": ["口味"],
            },
        )
        assert r.status_code == 201, r.text
        sub = r.json()
        assert (sub["brands"], sub["regions"], sub["aspects"]) == (
            ["noodleking"],
            ["West"],
            ["taste"],
        )
        r = c.patch(f"/v1/subscriptions/{sub['id']}", json={"aspects": ["Taste and flavour"]})
        assert r.status_code == 200 and r.json()["aspects"] == ["taste"], r.text
        for path, method, body in (
            ("/v1/subscriptions", c.post, {"channel": "email", "target": "x@example.com"}),
            (f"/v1/subscriptions/{sub['id']}", c.patch, {}),
            ("/v1/keys", c.post, {"role": "viewer"}),
            ("/v1/keys/1", c.patch, {}),
        ):
            for field, value in (("regions", "Atlantis"), ("brands", "Noodle Queen")):
                r = method(path, json={**body, field: [value]})
                assert r.status_code == 422, (path, field, r.text)
                detail = r.json()["error"]["details"][0]
                assert detail["field"] == f"body.{field}" and value in r.json()["error"]["message"]
        assert (
            "West"
            in c.post("/v1/keys", json={"role": "viewer", "regions": ["Atlantis"]}).json()["error"][
                "details"
            ][0]["valid"]
        )
        r = c.post("/v1/keys", json={"role": "viewer", "regions": ["east"], "brands": ["辣之源"]})
        assert r.status_code == 201, r.text
        key = r.json()
        assert (key["regions"], key["brands"]) == (["East"], ["spicewell"])
        r = c.patch(f"/v1/keys/{key['id']}", json={"regions": ["NORTH"]})
        assert r.status_code == 200 and r.json()["regions"] == ["North"], r.text

    runner = CliRunner()
    args = ["--database-url", rt.settings.database_url]
    res = runner.invoke(
        cli,
        [*args, "subscriptions", "add", "e@example.com", "--region", "east", "--brand", "辣之源"],
    )
    assert res.exit_code == 0, res.output
    assert (json.loads(res.stdout)["regions"], json.loads(res.stdout)["brands"]) == (
        ["East"],
        ["spicewell"],
    )
    sub_id = json.loads(res.stdout)["id"]
    res = runner.invoke(
        cli, [*args, "subscriptions", "update", str(sub_id), "--set", "aspects=口味"]
    )
    assert res.exit_code == 0 and json.loads(res.stdout)["aspects"] == ["taste"], res.output
    res = runner.invoke(
        cli, [*args, "subscriptions", "add", "e@example.com", "--region", "Atlantis"]
    )
    assert res.exit_code == 2 and "Atlantis" in res.output and "West" in res.output
    res = runner.invoke(
        cli, [*args, "subscriptions", "update", str(sub_id), "--set", "brands=Noodle Queen"]
    )
    assert res.exit_code == 2 and "Noodle Queen" in res.output
    res = runner.invoke(
        cli, [*args, "keys", "create", "--role", "viewer", "--region", "west", "--json"]
    )
    assert res.exit_code == 0 and json.loads(res.stdout)["regions"] == ["West"], res.output
    res = runner.invoke(
        cli, [*args, "keys", "create", "--role", "viewer", "--brand", "Noodle Queen"]
    )
    assert res.exit_code == 2 and "Noodle Queen" in res.output and "noodleking" in res.output


def test_a_scope_may_name_a_region_before_its_first_item():
    from service.config import Settings

    st = Settings()
    names = Names(st.taxonomy, st.competitors)
    assert names.scope(None, regions=["Narnia"], brands=["辣之源"], aspects=None) == {
        "regions": ["Narnia"],
        "brands": ["spicewell"],
        "aspects": None,
    }
    with pytest.raises(UnknownName):
        names.scope(None, brands=["Noodle Queen"])
