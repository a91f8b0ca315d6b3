"""Schemathesis against the app's own OpenAPI schema, with keys on and an admin key, on a
SQLite store of 100 items (fast keyword scorer): every operation with a bounded, seeded set of
generated requests, valid and invalid (generation mode "all"), checking that

- no request gets a 5xx (`not_a_server_error`);
- every status code and content type answered is documented (`status_code_conformance`,
  `content_type_conformance`, `response_headers_conformance`) and every body matches its
  documented schema (`response_schema_conformance`): every `/v1` operation declares a named
  response model (``tests/api/test_openapi_schemas.py``), and every 4xx body the documented
  `Error` shape.

`negative_data_rejection` (a request that breaks the schema must get a 4xx) is left out by
default: pydantic's lax parsing accepts what the schema's formats do not promise (epoch
numbers as date-times) and schemathesis drops some broken values when it serialises them,
so its failures were all false positives; ``RADAR_FUZZ_STRICT=1`` adds it.

Repeatable: the same seed and examples every run (``derandomize``, no example database).
A bigger campaign from the command line::

    RADAR_FUZZ_EXAMPLES=300 .venv/bin/python -m pytest -q tests/robustness/test_schemathesis.py

``RADAR_FUZZ_SEED`` changes the seed, ``RADAR_FUZZ_COVERAGE=1`` adds schemathesis' coverage
phase (boundary values and unexpected methods for every parameter), ``RADAR_FUZZ_REPORT=x.json``
says where the summary goes. The summary (operations, requests per generation mode, status
codes, failures per operation) is printed at the end of the run and written as JSON, by
default to ``.pytest_cache/robustness/schemathesis-summary.json``.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from service.api.app import create_app
from service.config import Settings
from service.store import access
from tests.delivery.test_outbox import make_alert
from tests.robustness._hypothesis import REPEATABLE
from tests.robustness._store import SECURED, START, make_store

EXAMPLES = int(os.environ.get("RADAR_FUZZ_EXAMPLES", "30"))
SEED = int(os.environ.get("RADAR_FUZZ_SEED", "20260302"))
COVERAGE = os.environ.get("RADAR_FUZZ_COVERAGE") == "1"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
if os.environ.get("RADAR_FUZZ_STRICT") == "1":  # see the module's docstring
    CHECKS.append(negative_data_rejection)

# The schema is the app's own; it does not depend on the data, so it is read from an app that
# never touches a database, and the requests go to the seeded app of the fixture below.
_SPEC = create_app(Settings(database_url="sqlite://", api=SECURED)).openapi()
schema = schemathesis.openapi.from_dict(
    _SPEC,
    config=schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "generation": {"max-examples": EXAMPLES, "mode": "all"},
            # the coverage phase adds a hundred boundary cases per operation: a campaign may turn it on
            "phases": {"coverage": {"enabled": COVERAGE}, "stateful": {"enabled": False}},
        }
    ),
)

SUMMARY: dict[str, dict] = {}


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory):
    """The seeded secured app, its admin key, and the ids the fuzzer must not revoke."""
    rt, _ = make_store(tmp_path_factory.mktemp("fuzz"))
    with rt.sessions() as s:
        make_alert(s, at=START + timedelta(days=20), region="East")
        make_alert(s, at=START + timedelta(days=21), region="West", brand="noodleking")
        admin_row, admin = access.create_key(s, role="admin", actor="fuzz")
        spare_row, _ = access.create_key(s, role="viewer", actor="fuzz", regions=["East"])
        admin_id, spare_id = admin_row.id, spare_row.id
    app = create_app(runtime=rt)
    with TestClient(app) as client:  # subscriptions and a tracked phrase through the API itself
        h = {"Authorization": f"Bearer {admin}"}
        assert (
            client.post(
                "/v1/subscriptions",
                json={"target": "lead@example.test", "regions": ["East"]},
                headers=h,
            ).status_code
            == 201
        )
        assert (
            client.post("/v1/tracked-phrases", json={"phrase": "too spicy"}, headers=h).status_code
            == 201
        )
    started = time.perf_counter()
    yield app, admin, admin_id, spare_id
    _report(time.perf_counter() - started)
    rt.close()


@schema.parametrize()
@settings(max_examples=EXAMPLES, suppress_health_check=list(HealthCheck), **REPEATABLE)
def test_api_conforms_to_its_schema(case, fuzzed):
    app, admin, admin_id, spare_id = fuzzed
    if case.path_parameters and case.path_parameters.get("key_id") == admin_id:
        case.path_parameters["key_id"] = spare_id  # revoking our own key would end the campaign
    stats = SUMMARY.setdefault(
        case.operation.label,
        {"requests": 0, "modes": Counter(), "status": Counter(), "failures": []},
    )
    stats["requests"] += 1  # hypothesis' replays while it shrinks a failure included
    stats["modes"][getattr(getattr(case.meta, "generation", None), "mode", "explicit")] += 1
    try:
        response = case.call(app=app, headers={"Authorization": f"Bearer {admin}"})
        stats["status"][response.status_code] += 1
        case.validate_response(response, checks=CHECKS)
    except BaseException as exc:  # schemathesis raises a FailureGroup (a BaseExceptionGroup)
        for failure in getattr(exc, "exceptions", None) or [exc]:
            message = " ".join(str(getattr(failure, "message", failure)).split())
            stats["failures"].append(
                f"{getattr(failure, 'code', type(failure).__name__)} "
                f"{getattr(failure, 'title', '')}: {message}"[:300]
            )
        raise


def _report(seconds: float) -> None:
    total = lambda key: dict(
        sorted(sum((s[key] for s in SUMMARY.values()), Counter()).items(), key=str)
    )  # noqa: E731
    out = {
        "seed": SEED,
        "max_examples_per_operation": EXAMPLES,
        "coverage_phase": COVERAGE,
        "operations": len(SUMMARY),
        "operations_in_schema": sum(len(v) for v in _SPEC["paths"].values()),
        "requests": sum(s["requests"] for s in SUMMARY.values()),
        "requests_by_mode": {str(k): v for k, v in total("modes").items()},
        "seconds": round(seconds, 1),
        "status_codes": total("status"),
        "operations_failed": sorted(op for op, s in SUMMARY.items() if s["failures"]),
        "per_operation": {
            op: {
                "requests": s["requests"],
                "status": dict(sorted(s["status"].items())),
                "failures": sorted(set(s["failures"])),
            }
            for op, s in sorted(SUMMARY.items())
        },
    }
    path = Path(
        os.environ.get("RADAR_FUZZ_REPORT")
        or Path(__file__).resolve().parents[2]
        / ".pytest_cache/robustness/schemathesis-summary.json"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1, default=str), encoding="utf-8")
    LAST_REPORT.update(out, path=str(path))


LAST_REPORT: dict = {}
