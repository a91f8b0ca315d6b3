"""The engine's statistics on known numbers: the empirical-Bayes cell prior, the sustained-rise
test, and folding findings of one incident into one."""

import numpy as np
import pytest
from scipy import stats

from service.alerts.families.series import cell_prior, sustained_rise
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
    jeffreys = sustained_rise(y, n, window=2)
    borrowed = sustained_rise(
        y, n, window=2, prior=(0.02 * 2000, 0.98 * 2000)
    )  # the other cells: 2%
    # two mentions where the other cells' 2% expects 0.4 are weaker evidence once the prior is
    # borrowed, and neither comes near what a rule over ~100 series needs (BH at 0.01)
    assert 0.01 < jeffreys.p_value < borrowed.p_value / 2
    # but a real jump in the same cell is still seen with the borrowed prior
    assert (
        sustained_rise(np.array([0] * 6 + [5, 6]), n, window=2, prior=(40.0, 1960.0)).p_value < 1e-6
    )
    assert sustained_rise(y, n, window=8) is None  # no history before the onsets tried
    assert sustained_rise(np.zeros(8), n, window=2) is None


def test_a_sustained_rise_stays_visible_and_is_dated_from_its_onset():
    rng = np.random.default_rng(3)
    n = np.full(20, 50)
    y = rng.binomial(n, 0.06)
    y[14:] = rng.binomial(n[14:], 0.15)  # x2.5 from period 14
    # y[14] happened to be low (1 of 50); the rise shows from period 15
    ps = [sustained_rise(y[:end], n[:end], window=6).p_value for end in (16, 17, 18, 19, 20)]
    assert max(ps) < 1e-4 and ps[-1] < 1e-8  # visible from its second period, and ever clearer
    det = sustained_rise(y, n, window=6)
    assert (det.onset, det.detected_at) == (15, 19) and det.observed > 2 * det.baseline
    # a window that no longer reaches the onset compares the rise with a history that holds it
    assert sustained_rise(y, n, window=3).p_value > 100 * det.p_value


def test_no_rise_no_finding_and_noise_stays_quiet():
    rng = np.random.default_rng(11)
    ps = []
    for _ in range(400):
        n = rng.integers(5, 60, 20)
        det = sustained_rise(rng.binomial(n, 0.08), n, window=3)
        ps.append(1.0 if det is None else det.p_value)
    ps = np.array(ps)
    # a valid (conservative) p-value: no more small ones than chance allows
    assert (ps < 0.01).mean() <= 0.02 and (ps < 0.1).mean() <= 0.12
    down = np.array([6] * 10 + [1] * 5)
    assert sustained_rise(down, np.full(15, 50), window=3) is None  # an improvement is not a rise


def test_overdispersion_is_priced_in():
    n = np.full(16, 100)
    calm = np.array([8, 9, 7, 8, 9, 8, 7, 8, 9, 8, 7, 8, 9, 14, 15, 16])
    wild = np.array(
        [2, 18, 3, 15, 1, 16, 4, 14, 2, 17, 3, 11, 7, 14, 15, 16]
    )  # same mean, far noisier
    assert (
        sustained_rise(calm, n, window=3).p_value < sustained_rise(wild, n, window=3).p_value / 10
    )


def _finding(aspect, items, exposure=200, baseline=0.05, q=0.001, segment=None):
    return Finding(
        key=f"r|b|{aspect}|{{}}",
        rule="r",
        type="negative_surge",
        severity="L2",
        title=f"{aspect} rising",
        brand="b",
        region=None,
        aspect=aspect,
        segment=segment or {},
        metric="negative_mention_rate",
        baseline=baseline,
        observed=0.2,
        magnitude=0.15,
        confidence=0.99,
        onset=None,
        details={"q_value": q, "aspects": [aspect], "signal": {"aspect": aspect}},
        items=set(items),
        exposure=exposure,
    )


def test_one_incident_is_one_finding_but_two_incidents_stay_two():
    packaging = _finding("packaging", range(40))
    quality = _finding(
        "product_quality", [*range(30), 500, 501, 502, 503, 504, 505, 506, 507], q=0.004
    )
    # quality's 38 items: without packaging's 40, 8 remain against 10 expected (5% of 200)
    out = merge_findings([packaging, quality])
    assert [f.aspect for f in out] == ["packaging"]
    assert out[0].details["aspects"] == ["packaging", "product_quality"]
    assert out[0].details["also"][0]["aspect"] == "product_quality"
    price = _finding("price", range(300, 340), q=0.004)  # its own 40 items, 10 expected
    assert [f.aspect for f in merge_findings([packaging, price])] == ["packaging", "price"]
    elsewhere = _finding("product_quality", range(38), segment={"region": "West"})
    assert len(merge_findings([packaging, elsewhere])) == 2  # another segment is another alert


def _daily_cycle(days: int, rng, night: float = 0.5, day: float = 6.0) -> np.ndarray:
    """Posts per hour over ``days`` days: quiet nights, busy afternoons (Poisson)."""
    clock = np.array([night] * 8 + [day / 2] * 4 + [day] * 8 + [day / 2] * 4)
    return rng.poisson(np.tile(clock, days)).astype(float)


def test_a_busy_afternoon_is_not_a_crisis_but_a_burst_at_night_is():
    from service.alerts.families.crisis import burst_test

    rng = np.random.default_rng(4)
    hours = _daily_cycle(8, rng)
    baseline = hours[:168]
    afternoon = int(hours[168 + 12 : 168 + 18].sum())  # the next afternoon's 6 hours: ordinary
    # the baseline's flat weekly rate (~3.5 an hour) makes every afternoon look like a burst
    flat = stats.poisson.sf(afternoon - 1, baseline.mean() * 6)
    test = burst_test(afternoon, np.concatenate([baseline[12:], hours[168:180]]), 6)
    assert flat < 1e-5 and test.p_value > 0.01
    # 25 posts between midnight and six, when 3 are usual, is a burst
    night = burst_test(25, baseline, 6)
    assert night.expected < 6 and night.p_value < 1e-8


def test_a_clumpy_baseline_needs_a_bigger_burst():
    from service.alerts.families.crisis import burst_test

    rng = np.random.default_rng(5)
    calm = rng.poisson(2.0, 168).astype(float)
    clumpy = np.where(rng.random(168) < 0.1, rng.poisson(20.0, 168), 0).astype(
        float
    )  # same mean, in clumps
    a, b = burst_test(30, calm, 6), burst_test(30, clumpy, 6)
    assert a.dispersion == 1.0 or a.dispersion < 1.5
    assert b.dispersion > 5 and b.p_value > 1000 * a.p_value
    assert burst_test(0, calm, 6).p_value == 1.0
    assert burst_test(3, np.zeros(168), 6).expected == pytest.approx(0.6)  # the floor: 0.1 an hour


def test_a_rise_that_began_before_the_window_does_not_hide_itself_as_noise():
    rng = np.random.default_rng(8)
    n = np.full(12, 30)
    y = rng.binomial(n, 0.05)
    y[9:] = rng.binomial(n[9:], 0.5)  # the rise's first period falls before the two onsets tried
    det = sustained_rise(y, n, window=2)
    assert det is not None and det.p_value < 1e-6 and det.onset == 10
