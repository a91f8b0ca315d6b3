"""The engine's statistics on known numbers: the empirical-Bayes cell prior, the predictive
screen, and folding findings of one incident into one."""

import numpy as np

from service.alerts.families.series import SCREEN_ALPHA, _recent_excess, cell_prior
from service.alerts.findings import Finding, merge_findings


def test_cell_prior_is_strong_when_cells_agree_and_weak_when_they_do_not():
    rng = np.random.default_rng(0)
    n = rng.integers(40, 200, 25)
    a, b = cell_prior(rng.binomial(n, 0.02), n)
    assert abs(a / (a + b) - 0.02) < 0.01 and a + b >= 500
    rates = rng.uniform(0.02, 0.6, 25)
    a, b = cell_prior(rng.binomial(n, rates), n)
    assert a + b <= 30
    assert cell_prior(np.array([3]), np.array([50])) == (0.5, 0.5)  # one cell: nothing to borrow


def test_a_small_cell_that_never_said_it_is_not_alarmed_by_two_mentions():
    y = np.array([0] * 6 + [0, 2])  # 0 of 60 earlier, 2 of 20 in the last two periods
    n = np.full(8, 10)
    jeffreys = _recent_excess(y, n, recent=2)
    borrowed = _recent_excess(y, n, recent=2, prior=(0.02 * 2000, 0.98 * 2000))  # the other cells: 2%
    # two mentions where the other cells' 2% expects 0.4 pass the screen no more (SCREEN_ALPHA)
    assert jeffreys < SCREEN_ALPHA < borrowed
    # but a real jump in the same cell is still seen with the borrowed prior
    assert _recent_excess(np.array([0] * 6 + [5, 6]), n, recent=2, prior=(40.0, 1960.0)) < 1e-6
    assert _recent_excess(y, n, recent=8) == 1.0 and _recent_excess(np.zeros(8), n, recent=2) == 1.0


def _finding(aspect, items, exposure=200, baseline=0.05, q=0.001, segment=None):
    return Finding(key=f"r|b|{aspect}|{{}}", rule="r", type="negative_surge", severity="L2", title=f"{aspect} rising",
                   brand="b", region=None, aspect=aspect, segment=segment or {}, metric="negative_mention_rate",
                   baseline=baseline, observed=0.2, magnitude=0.15, confidence=0.99, onset=None,
                   details={"q_value": q, "aspects": [aspect], "signal": {"aspect": aspect}}, items=set(items),
                   exposure=exposure)


def test_one_incident_is_one_finding_but_two_incidents_stay_two():
    packaging = _finding("packaging", range(40))
    quality = _finding("product_quality", [*range(30), 500, 501, 502, 503, 504, 505, 506, 507], q=0.004)
    # quality's 38 items: without packaging's 40, 8 remain against 10 expected (5% of 200)
    out = merge_findings([packaging, quality])
    assert [f.aspect for f in out] == ["packaging"]
    assert out[0].details["aspects"] == ["packaging", "product_quality"]
    assert out[0].details["also"][0]["aspect"] == "product_quality"
    price = _finding("price", range(300, 340), q=0.004)  # its own 40 items, 10 expected
    assert [f.aspect for f in merge_findings([packaging, price])] == ["packaging", "price"]
    elsewhere = _finding("product_quality", range(38), segment={"region": "West"})
    assert len(merge_findings([packaging, elsewhere])) == 2  # another segment is another alert
