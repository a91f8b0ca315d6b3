"""Segment differences and themes on the demo data, scored by the real model."""

from collections import Counter
from datetime import timedelta

import numpy as np
from sklearn.metrics import adjusted_rand_score

from service.analytics.segments import differences
from service.analytics.theme_model import ThemeModel
from service.analytics.themes import discover, load_items, theme_detail
from service.demo.generator import DemoConfig
from service.store.repo import FeedbackFilter

CFG = DemoConfig()  # what the session fixture `demo_store` (tests/conftest.py) ingests


def _shift_window():
    """The weeks of the shift, up to the recipe's rollback (the demo's recorded action)."""
    since = CFG.start + timedelta(weeks=CFG.shift_week)
    return since, CFG.start + timedelta(weeks=CFG.rollback_week or CFG.weeks)


def test_differences_rank_the_injected_cell_first_for_taste(demo_store):
    rt, _, _ = demo_store
    since, until = _shift_window()
    with rt.sessions() as s:
        out = differences(
            s,
            dimensions=["region", "age_group"],
            aspects=["taste"],
            flt=FeedbackFilter(since=since, until=until, brands=(CFG.shift_brand,)),
        )
    taste = [f for f in out["findings"] if f["aspect"] == "taste"]
    assert taste, out
    assert taste[0]["segment"] == {"region": CFG.shift_region, "age_group": CFG.shift_age_group}
    assert taste[0]["segment_value"] > taste[0]["rest_value"]


def test_themes_of_the_shift_window(demo_store):
    rt, _, _ = demo_store
    since, until = _shift_window()
    with rt.sessions() as s:
        first = discover(s, flt=FeedbackFilter(), since=since, until=until, scope="all", now=until)
        again = discover(s, flt=FeedbackFilter(), since=since, until=until, scope="all", now=until)
        assert first["themes"], first
        # stable ids: the same window analysed twice gives the same themes under the same ids
        assert sorted(t["id"] for t in first["themes"]) == sorted(t["id"] for t in again["themes"])
        detail = theme_detail(s, first["themes"][0]["id"])
        assert detail["history"] and detail["quotes"]
        zh = discover(
            s,
            flt=FeedbackFilter(languages=("zh",)),
            since=since,
            until=until,
            scope="zh",
            now=until,
            store=False,
        )
        assert zh["items"] > 0 and all(
            any("\u4e00" <= ch <= "\u9fff" for ch in "".join(t["keywords"])) for t in zh["themes"]
        )


GAP = (
    "measured 2026-11-22: themes of the demo data do not separate its topics (ARI 0.015 on "
    "single-topic items; the item embeddings group by filler phrases and language); issue 4 stays open"
)


def test_a_spicy_theme_emerges_in_the_shift_window(demo_store):
    """Themes fitted on everything in the window, counted within the injected cell (our brand in
    the shifted region × age group):
    the spicy-taste sub-theme of 'taste · negative' is flagged as emerging; nothing about
    packaging (the other injected effect is another brand's, everywhere) emerges there."""
    rt, _, _ = demo_store
    since, until = _shift_window()
    segment = FeedbackFilter(
        brands=(CFG.shift_brand,),
        regions=(CFG.shift_region,),
        attributes={"age_group": (CFG.shift_age_group,)},
    )
    with rt.sessions() as s:
        out = discover(
            s,
            flt=segment,
            population=FeedbackFilter(),
            since=since,
            until=until,
            scope="east-18-24",
            now=until,
            store=False,
        )
    every = [t for top in out["themes"] for t in [top, *top["children"]]]
    spicy = [
        t
        for t in every
        if any(k in ("spicy", "太辣", "辣得", "chilli", "chili") for k in t["keywords"][:4])
    ]
    emerging = [t for t in every if t["emerging"]]
    assert any(
        t["emerging"] and t["facet"] == {"aspect": "taste", "polarity": "negative"} for t in spicy
    ), [(t["label"], t["size"], t["previous"], t["q_value"]) for t in every]
    assert all(t["facet"]["aspect"] == "taste" for t in emerging), [t["label"] for t in emerging]


def test_theme_quality_against_the_generator_topics(demo_store):
    """Adjusted Rand index between themes and the generator's topics, on single-topic items."""
    rt, truth, _ = demo_store
    since, until = _shift_window()
    with rt.sessions() as s:
        items = load_items(
            s, FeedbackFilter(since=since - (until - since), until=until), with_aspects=False
        )
        from sqlalchemy import select

        from service.store.tables import FeedbackRow

        ext = dict(s.execute(select(FeedbackRow.id, FeedbackRow.external_id)).all())
    model = ThemeModel().fit(items.emb, items.languages, items.facets)
    labels, _ = model.assign(items.emb, items.languages, items.facets)
    sub, _ = model.assign_sub(items.emb, items.languages, items.facets)
    topics = [truth[ext[int(i)]].topics for i in items.ids]
    single = np.array([len(t) == 1 for t in topics])
    primary = [t[0] for t, keep in zip(topics, single) if keep]
    ari = adjusted_rand_score(primary, labels[single])
    ari_sub = adjusted_rand_score(primary, np.where(sub >= 0, sub, labels)[single])
    print(
        f"ARI themes vs topics (single-topic items): {ari:.3f} (sub-themes {ari_sub:.3f}); "
        f"unassigned {np.mean(labels < 0):.2f}; themes {len(model.centroids_)}; "
        f"topics {len(Counter(t[0] for t in topics))}"
    )
    assert ari >= ARI_FLOOR


ARI_FLOOR = 0.5
