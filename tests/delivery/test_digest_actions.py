"""The digest's "Did it work?" section: an action in the subscriber's scope with its effect
against the controls, in English and Chinese; an action outside the scope is not there."""

from __future__ import annotations

from datetime import timedelta

from service.delivery.scheduler import preview
from service.store import actions as actions_repo
from service.store.tables import SubscriptionRow
from tests.analytics.conftest import AspectKeywordScorer
from tests.analytics.test_effects import ACTION_WEEK, START, WEEKS, effect_items


def _sub(lang: str, regions: str) -> SubscriptionRow:
    return SubscriptionRow(
        channel="email",
        format="email",
        target="lead@example.com",
        brands="[]",
        regions=regions,
        aspects="[]",
        min_severity="L3",
        frequency="daily",
        language=lang,
        timezone="UTC",
        send_hour=8,
        send_weekday=0,
        quiet="all_quiet",
        active=True,
        created_at=START,
    )


def test_digest_reports_the_actions_effect_in_scope(sqlite_url, make_runtime):
    rt = make_runtime(sqlite_url, scorer=AspectKeywordScorer())
    rt.ingest_service().ingest(list(enumerate(effect_items(per_cell=20))))
    with rt.sessions() as s:
        actions_repo.create_action(
            s,
            title="Spicy recipe rolled back",
            kind="product",
            brand="spicewell",
            segment={"region": "East", "age_group": "18-24"},
            aspect="taste",
            started_at=START + timedelta(weeks=ACTION_WEEK),
            actor="t",
            now=START,
        )
        s.commit()
        at = START + timedelta(weeks=WEEKS, hours=9)
        en = preview(rt.settings, s, _sub("en", '["East"]'), at)["text"]
        zh = preview(rt.settings, s, _sub("zh", '["East"]'), at)["text"]
        west = preview(rt.settings, s, _sub("en", '["West"]'), at)["text"]
    assert "Did it work?" in en
    line = next(x for x in en.splitlines() if "Spicy recipe rolled back" in x)
    assert (
        "East × 18-24" in line
        and "fell from" in line
        and "points [" in line
        and line.endswith("worked")
    )
    assert "措施是否见效" in zh and "见效" in zh.split("措施是否见效")[1]
    assert "Spicy recipe rolled back" not in west and "Did it work?" not in west
