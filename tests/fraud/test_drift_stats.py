"""Drift statistics on binned counts agree with their textbook definitions (scipy) and keep point masses apart."""

import numpy as np
import pytest
from scipy.stats import chi2_contingency, ks_2samp

from fraud.serve.drift_stats import bin_counts, bin_edges, chi_square, ks, psi, quantile_of


def _counts(v: np.ndarray, edges: np.ndarray) -> np.ndarray:
    return bin_counts(v[:, None], [edges])[0]


def test_a_point_mass_gets_a_bin_of_its_own():
    rng = np.random.default_rng(0)
    ref = np.where(rng.random(10_000) < 0.7, 0.0, rng.exponential(size=10_000))  # 70 % exactly 0
    edges = bin_edges(ref, 10)
    c = _counts(ref, edges)
    zero_bin = int(np.searchsorted(edges, 0.0))
    assert c[zero_bin] == (ref == 0).sum()  # the bin holds the zeros and nothing else
    assert len(edges) >= 10  # the continuous 30 % still has its quantile bins
    # Moving 10 % of the rows from 0 to small positive values shows up (plain deciles would merge them).
    new = ref.copy()
    new[np.flatnonzero(new == 0)[:1000]] = 1e-3
    assert psi(c, _counts(new, edges)) > 0.01 and ks(c, _counts(new, edges))[0] == pytest.approx(0.1, abs=1e-9)


def test_few_distinct_values_get_one_bin_each():
    assert list(bin_edges(np.array([0.0, 1.0, 1.0, 2.0]), 10)) == [0.0, 1.0]
    assert len(bin_edges(np.array([np.nan, np.inf]), 10)) == 0


def test_binned_ks_matches_scipy_within_a_bin_and_its_p_value_tracks_sample_size():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=20_000), rng.normal(0.3, 1, size=5_000)
    edges = bin_edges(a, 50)
    d, p = ks(_counts(a, edges), _counts(b, edges))
    exact = ks_2samp(a, b).statistic
    assert exact - 0.02 <= d <= exact + 1e-12  # a lower bound, within one bin's share
    assert p < 1e-10
    small_d, small_p = ks(_counts(a, edges), _counts(b[:50], edges))
    assert small_p > 1e-3 or small_d > d  # 50 rows: the same shift is not significant at 1e-3
    assert ks(np.array([3, 0]), np.array([0, 0])) == (0.0, 1.0)


def test_cramers_v_matches_scipy_and_is_zero_for_equal_shares():
    ref, new = np.array([600, 300, 100, 0]), np.array([200, 200, 100, 0])
    v, p = chi_square(ref, new)
    chi2, p_scipy, _, _ = chi2_contingency(np.stack([ref, new])[:, :3], correction=False)
    assert v == pytest.approx(np.sqrt(chi2 / (ref.sum() + new.sum()))) and p == pytest.approx(p_scipy)
    assert chi_square(np.array([50, 50, 0]), np.array([500, 500, 0]))[0] == pytest.approx(0.0)


def test_psi_and_quantiles_of_counts():
    assert psi(np.array([5, 5]), np.array([5, 5])) == 0.0
    assert psi(np.array([90, 10]), np.array([10, 90])) > 1.0
    edges = np.array([1.0, 2.0, 3.0])
    assert quantile_of(np.array([0, 10, 0, 0, 0]), edges, 0.5) == 2.0
