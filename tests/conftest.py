"""Shared fixtures: real databases (SQLite file and a throw-away PostgreSQL database),
the real packaged model (loaded once per run), and a fake scorer for unit tests of code
that does not depend on model quality."""

from __future__ import annotations

import hashlib
import json
import os
import uuid

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RADAR_NO_PROGRESS", "1")
# API keys are required by default; tests of other features run as an anonymous admin, and the
# access-control tests (tests/api/test_access.py) turn it on.
os.environ.setdefault("RADAR_API__AUTH", "false")

import numpy as np
import pytest
from sqlalchemy import create_engine, text

from service.config import Settings
from service.domain import Score
from service.nlp.pipeline import ScoredText, Scorer
from service.runtime import Runtime

PG_ADMIN_URL = os.environ.get(
    "RADAR_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


# --- pytest-xdist (`make test` runs `-n 2 --dist loadgroup`) ------------------------------------
# Work is handed out a module at a time, so a module fixture is set up once as in a serial run,
# and every test over the demo store (whatever its module) goes to one worker, which builds the
# store once. Workers say which tests those are in a file per worker (the controller does not
# collect); the scheduler reads them once all workers have collected. Each worker has its own
# PostgreSQL database (`pg_database`) and temporary directories.
_GROUPS_DIR = "RADAR_TEST_XDIST_GROUPS"


def pytest_configure(config):
    if getattr(config.option, "dist", "no") == "loadgroup" and not hasattr(config, "workerinput"):
        import tempfile

        os.environ[_GROUPS_DIR] = tempfile.mkdtemp(prefix="radar-xdist-groups-")


def pytest_unconfigure(config):
    if not hasattr(config, "workerinput") and os.environ.get(_GROUPS_DIR):
        import shutil

        shutil.rmtree(os.environ.pop(_GROUPS_DIR), ignore_errors=True)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    if not hasattr(config, "workerinput") or not os.environ.get(_GROUPS_DIR):
        return
    groups = {item.nodeid: "demo_store" for item in items if "demo_store" in item.fixturenames}
    path = os.path.join(os.environ[_GROUPS_DIR], f"{config.workerinput['workerid']}.json")
    with open(path + ".tmp", "w") as fh:
        json.dump(groups, fh)
    os.replace(path + ".tmp", path)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    if config.getoption("dist") != "loadgroup" or not os.environ.get(_GROUPS_DIR):
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ModuleAndDemoScheduling(LoadScopeScheduling):
        groups: dict[str, str] | None = None

        def _split_scope(self, nodeid: str) -> str:
            if self.groups is None:
                d = os.environ[_GROUPS_DIR]
                self.groups = {}
                for name in os.listdir(d):
                    if name.endswith(".json"):
                        with open(os.path.join(d, name)) as fh:
                            self.groups.update(json.load(fh))
            return self.groups.get(nodeid) or nodeid.split("::")[0]

        def _assign_work_unit(self, node) -> None:
            # xdist keys a unit by node id, and schemathesis gives all its cases one id: send
            # every collected index of the unit's ids, or only the first case would run
            scope, work_unit = self.workqueue.popitem(last=False)
            self.assigned_work.setdefault(node, {})[scope] = work_unit
            wanted = {nodeid for nodeid, done in work_unit.items() if not done}
            node.send_runtest_some(
                [
                    i
                    for i, nodeid in enumerate(self.registered_collections[node])
                    if nodeid in wanted
                ]
            )

    return ModuleAndDemoScheduling(config, log)


_WORKER_CAMPAIGNS: list[dict] = []


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """An xdist worker finished: keep the schemathesis campaign's report if it ran one."""
    report = getattr(node, "workeroutput", {}).get("schemathesis_report")
    if report:
        _WORKER_CAMPAIGNS.append(json.loads(report))


def pytest_terminal_summary(terminalreporter):
    if _WORKER_CAMPAIGNS:
        from tests.robustness.conftest import write_summary

        for report in _WORKER_CAMPAIGNS:
            write_summary(terminalreporter, report)


@pytest.fixture(scope="session")
def pg_database():
    """A PostgreSQL database created for this test run and dropped afterwards."""
    name = f"radar_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # the suite must not pretend PostgreSQL was tested
        pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN_URL}: {exc}. Run `make services`.")
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    yield url
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _reset_pg(url: str) -> None:
    eng = create_engine(url, isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.execute(text("DROP SCHEMA public CASCADE"))
        c.execute(text("CREATE SCHEMA public"))
    eng.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """Each test using this runs once on a SQLite file and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'radar.db'}"
    url = request.getfixturevalue("pg_database")
    _reset_pg(url)
    return url


# on a test over `db_url` whose subject does not depend on the database: SQLite alone
sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'radar.db'}"


def keyword_probabilities(label: str) -> dict[str, float]:
    """0.8 on the label, 0.1 on each of the other two."""
    p = {"negative": 0.1, "neutral": 0.1, "positive": 0.1}
    p[label] = 0.8
    return p


def fake_scored(
    text: str, label: str, p: dict[str, float], version: str, aspects=(), sentiment_score=None
) -> ScoredText:
    """A fake scorer's answer for one text: the score as given (the sentiment score, unless given,
    is positive minus negative) and a unit embedding fixed by the text (the same text, the same
    vector)."""
    seed = int(hashlib.sha1(text.encode()).hexdigest()[:8], 16)
    emb = np.random.default_rng(seed).standard_normal(8).astype(np.float32)
    if sentiment_score is None:
        sentiment_score = p["positive"] - p["negative"]
    score = Score(
        sentiment=label,
        sentiment_score=sentiment_score,
        probabilities=p,
        aspects=list(aspects),
        model_version=version,
    )
    return ScoredText(score, emb / np.linalg.norm(emb))


class FakeScorer(Scorer):
    """Keyword sentiment and hashed embeddings: for tests of ingest, store and API plumbing."""

    version = "fake-1"

    def score(self, texts, languages=None):
        out = []
        for t in texts:
            low = t.lower()
            pos = sum(w in low for w in ("good", "great", "love", "好"))
            neg = sum(w in low for w in ("bad", "crushed", "late", "差", "辣"))
            label = "positive" if pos > neg else "negative" if neg > pos else "neutral"
            out.append(fake_scored(t, label, keyword_probabilities(label), self.version))
        return out


@pytest.fixture
def fake_scorer():
    return FakeScorer()


@pytest.fixture
def make_runtime():
    made = []

    def _make(url: str, scorer: Scorer | None = None, **overrides) -> Runtime:
        rt = Runtime(Settings(database_url=url, **overrides), scorer=scorer)
        made.append(rt)
        return rt

    yield _make
    for rt in made:
        rt.close()


def ingest_new(rt: Runtime, items: list[dict]) -> Runtime:
    """``items`` ingested into ``rt``'s store, every one of them created: the runtime."""
    report = rt.ingest_service().ingest(list(enumerate(items)))
    assert report.counts["created"] == len(items)
    return rt


@pytest.fixture(scope="session")
def real_runtime_factory():
    """Runtimes sharing one loaded real pipeline (the packaged encoder + trained head)."""
    base = Runtime(Settings())
    pipeline = base.registry.pipeline("default")

    def _make(url: str) -> Runtime:
        return Runtime(Settings(database_url=url), scorer=pipeline)

    return _make


@pytest.fixture(scope="session")
def real_pipeline(real_runtime_factory):
    return real_runtime_factory("sqlite://").scorer


def load_benchmark(name: str):
    """A script of ``benchmarks/`` imported as a module (they are scripts, not a package)."""
    import importlib.util
    import sys

    from service.config import REPO_ROOT

    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


DEMO_FIRST_WEEK = 6  # 12 weeks of history before the injected shifts (surge week 15, shift week 18)


@pytest.fixture(scope="session")
def demo_store(tmp_path_factory, real_runtime_factory):
    """The demo data set as `radar demo` makes it (default config), from week 6 on, scored by
    the real model into a SQLite file: shared by the analytics and alert acceptance tests.
    Yields the runtime, the generator's ground truth per external id, and the config."""
    from service.demo.generator import DemoConfig, DemoGenerator
    from service.demo.run import track_demo_phrases

    cfg = DemoConfig()
    url = f"sqlite:///{tmp_path_factory.mktemp('demo') / 'demo.db'}"
    rt = real_runtime_factory(url)
    rows, truth = [], {}
    for row, t in DemoGenerator(cfg).items():
        if t.week >= DEMO_FIRST_WEEK:
            rows.append(row)
            truth[row["external_id"]] = t
    report = rt.ingest_service().ingest(list(enumerate(rows)), keep_results=False)
    assert report.counts["rejected"] == 0
    track_demo_phrases(rt)  # as the demo's team does: "too spicy" / "太辣"
    yield rt, truth, cfg
    rt.close()


DEMO_REPLAY_FROM = 12  # weekly alert runs from here to the end, after 6 weeks of stored history


@pytest.fixture(scope="session")
def demo_alerts(demo_store):
    """The alert rules run on the demo store as of the start of each week, as cron would
    (``run``: alerts stored, ongoing ones updated): the series alerts as they stood when
    raised, by key, with the week of that run. Shared by the alert and delivery tests."""
    from datetime import timedelta
    from types import SimpleNamespace

    from sqlalchemy import select

    from service.store.alerts import alert_dict
    from service.store.tables import AlertRow

    rt, _, cfg = demo_store
    engine = rt.alert_engine()
    raised = {}
    with rt.sessions() as s:
        for week in range(DEMO_REPLAY_FROM, cfg.weeks + 1):
            report = engine.run(s, cfg.start + timedelta(weeks=week))
            for row in s.scalars(select(AlertRow).where(AlertRow.id.in_(report.raised))):
                if row.type in ("preference_shift", "negative_surge"):
                    raised[row.key] = (week, SimpleNamespace(**alert_dict(row)))
    return raised, cfg
