"""Confidence intervals and paired comparisons (benchmark/stats.py) against known truths.

Synthetic data with a known mean and spread: image effects a_i ~ N(0, sa) and run noise
e_ir ~ N(0, s_i), so the true mean is mu and the true G-STD at N runs is
E[s_i] * sqrt(2/N) * Gamma(N/2) / Gamma((N-1)/2) (the mean of the population std, ddof=0,
of N normal draws). The coverage tests also run deliberately wrong methods through the same
acceptance band, to show the band is tight enough to catch them.
"""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from scipy.special import gammaln

from benchmark import stability, stats
from benchmark.stats import Interval, StatsConfig

LEVEL = 0.95
TRIALS = 200
# Binomial sd of an observed coverage over 200 trials at 0.95 is 0.015; BCa on 30 images sits
# near 0.94. The band is about 3.5 sd wide on each side of that.
BAND = (0.885, 0.985)


def synthetic(rng: np.random.Generator, m: int, n: int, mu: float = 27.0, sa: float = 1.0,
              s_lo: float = 0.5, s_hi: float = 1.5) -> np.ndarray:
    """M x N per-(image, run) values: mu + image effect + run noise with per-image std U(s_lo, s_hi)."""
    a = rng.normal(0.0, sa, size=(m, 1))
    s = rng.uniform(s_lo, s_hi, size=(m, 1))
    return mu + a + rng.normal(0.0, 1.0, size=(m, n)) * s


def tidy(values: np.ndarray, metric: str = "psnr") -> pd.DataFrame:
    m, n = values.shape
    rows = [(f"img{i:03d}", r, r, metric, float(values[i, r])) for i in range(m) for r in range(n)]
    return pd.DataFrame(rows, columns=["image", "run", "seed", "metric", "value"])


def expected_pop_std_factor(n: int) -> float:
    """E[population std of n N(0,1) draws] = sqrt(2/n) Gamma(n/2) / Gamma((n-1)/2) (hand formula)."""
    return math.sqrt(2.0 / n) * math.exp(gammaln(n / 2) - gammaln((n - 1) / 2))


def coverage(make_interval, truth: float, m: int = 30, n: int = 5, seed: int = 0, **kw) -> float:
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(TRIALS):
        lo, hi = make_interval(synthetic(rng, m, n, **kw))
        hits += lo <= truth <= hi
    return hits / TRIALS


def test_expected_pop_std_factor_by_simulation():
    # the hand formula itself, against a direct simulation (guards the G-STD truth below)
    rng = np.random.default_rng(1)
    sim = rng.normal(size=(200_000, 5)).std(axis=1, ddof=0).mean()
    assert expected_pop_std_factor(5) == pytest.approx(sim, rel=3e-3)
    assert expected_pop_std_factor(5) == pytest.approx(0.8407, abs=1e-4)


def test_intervals_cover_true_mean_and_gstd_and_wrong_methods_fail():
    cfg = StatsConfig(resamples=400, seed=3, level=LEVEL)
    z = sps.norm.ppf(0.5 + LEVEL / 2)
    n = 5
    truth_m, truth_g = 27.0, 1.0 * expected_pop_std_factor(n)  # E[s_i] = 1 for s_i ~ U(0.5, 1.5)
    rng = np.random.default_rng(0)
    hit_m = hit_g = 0
    for _ in range(TRIALS):  # one intervals() call gives both, through the whole tidy-frame path
        ci = stats.intervals(tidy(synthetic(rng, 30, n)), None, {"psnr": "FR"}, True, cfg)["metrics"]["psnr"]
        hit_m += ci["mean_ci"]["low"] <= truth_m <= ci["mean_ci"]["high"]
        hit_g += ci["gstd_ci"]["low"] <= truth_g <= ci["gstd_ci"]["high"]
    assert BAND[0] <= hit_m / TRIALS <= BAND[1], hit_m / TRIALS
    assert BAND[0] <= hit_g / TRIALS <= BAND[1], hit_g / TRIALS

    def std_not_se(v):  # the classic mistake: +- z * std of the observations, not the standard error
        return v.mean() - z * v.std(ddof=1), v.mean() + z * v.std(ddof=1)

    def se(v):
        h = z * v.std(ddof=1) / math.sqrt(v.size)
        return v.mean() - h, v.mean() + h

    # the same band rejects wrong methods on the same kind of data
    assert not BAND[0] <= coverage(lambda x: std_not_se(x.mean(axis=1)), truth_m) <= BAND[1]
    assert not BAND[0] <= coverage(lambda x: std_not_se(x.std(axis=1, ddof=0)), truth_g) <= BAND[1]
    # every (image, run) value as an independent observation: ignores that an image's runs share its effect
    assert not BAND[0] <= coverage(lambda x: se(x.ravel()), truth_m) <= BAND[1]
    # sample std (ddof=1) instead of the population std G-STD is defined with: biased high
    assert not BAND[0] <= coverage(lambda x: se(x.std(axis=1, ddof=1)), truth_g, m=100) <= BAND[1]


@pytest.mark.slow
def test_coverage_with_paper_defaults():
    # 2000 resamples, 100 images x 10 runs as in the paper; 200 trials
    cfg = StatsConfig()
    rng = np.random.default_rng(11)
    truth_g = expected_pop_std_factor(10)
    hit_m = hit_g = 0
    for _ in range(TRIALS):
        x = synthetic(rng, 100, 10)
        ci = stats.intervals(tidy(x), None, {"psnr": "FR"}, True, cfg)["metrics"]["psnr"]
        hit_m += ci["mean_ci"]["low"] <= 27.0 <= ci["mean_ci"]["high"]
        hit_g += ci["gstd_ci"]["low"] <= truth_g <= ci["gstd_ci"]["high"]
    assert BAND[0] <= hit_m / TRIALS <= BAND[1]
    assert BAND[0] <= hit_g / TRIALS <= BAND[1]


def test_interval_point_estimates_are_the_reported_values():
    rng = np.random.default_rng(0)
    x = synthetic(rng, 12, 4)
    sc = tidy(x)
    out = stats.intervals(sc, None, {"psnr": "FR"}, True, StatsConfig(resamples=200))
    ci = out["metrics"]["psnr"]
    # the bootstrap statistic is the mean of the same observations the runner reports
    assert ci["mean_ci"]["low"] < x.mean(axis=1).mean() < ci["mean_ci"]["high"]
    g = stability.gstd(sc)["psnr"]
    assert ci["gstd_ci"]["low"] < g < ci["gstd_ci"]["high"]
    assert ci["mean_ci"]["n"] == 12 and ci["mean_ci"]["method"] == "BCa"


def test_lstd_and_set_metric_intervals():
    rng = np.random.default_rng(2)
    lstd_df = pd.DataFrame({"image": [f"i{k}" for k in range(20)], "lstd": rng.uniform(0.01, 0.05, 20)})
    fid = pd.DataFrame({"image": "*", "run": range(8), "seed": range(8), "metric": "fid",
                        "value": 50 + rng.normal(size=8)})
    out = stats.intervals(fid, lstd_df, {"fid": "set"}, True, StatsConfig(resamples=300))
    assert out["lstd_ci"]["n"] == 20
    assert out["lstd_ci"]["low"] < lstd_df["lstd"].mean() < out["lstd_ci"]["high"]
    f = out["metrics"]["fid"]
    assert f["gstd_ci"] is None and f["mean_ci"]["n"] == 8  # resampled over runs
    assert f["mean_ci"]["low"] < fid["value"].mean() < f["mean_ci"]["high"]
    # the same values as plain observations give the same interval (same key, same seed)
    direct = stats.mean_interval(fid["value"].to_numpy(), StatsConfig(resamples=300), "fid.mean")
    assert direct.to_json() == f["mean_ci"]


def test_undefined_and_exact_intervals():
    cfg = StatsConfig(resamples=200)
    # deterministic method: one run, no G-STD / L-STD interval, but the mean has one (over images)
    x = np.random.default_rng(0).normal(size=(6, 1))
    out = stats.intervals(tidy(x), pd.DataFrame({"image": ["a"], "lstd": [None]}), {"psnr": "FR"}, False, cfg)
    assert out["metrics"]["psnr"]["gstd_ci"] is None and out["lstd_ci"] is None
    assert out["metrics"]["psnr"]["mean_ci"]["n"] == 6
    assert stats.mean_interval([3.0], cfg, "k") is None  # one observation: no interval
    assert stats.mean_interval([2.0, 2.0, 2.0], cfg, "k") == Interval(2.0, 2.0, "exact", 3)
    with pytest.raises(ValueError, match="NaN"):
        stats.mean_interval([1.0, float("nan")], cfg, "psnr.mean")


def test_excluded_values_count_as_the_reported_numbers_count_them():
    # an image with an excluded run (NaN, or a missing row) is the mean of its other runs, and an image
    # left with one run has no spread: the intervals resample what Result.from_scores / stability.gstd average
    from types import SimpleNamespace

    from benchmark.results import Result

    rng = np.random.default_rng(8)
    sc = tidy(synthetic(rng, 6, 3))
    sc.loc[(sc["image"] == "img001") & (sc["run"] == 2), "value"] = float("nan")
    sc = sc[~((sc["image"] == "img004") & (sc["run"] > 0))]  # one run left
    res = Result.from_scores(sc, pd.DataFrame({"image": [], "lstd": []}), {"psnr": SimpleNamespace(kind="FR",
                             higher_is_better=True)}, method="m", dataset="d", runs=3, seed=0, crop_border=0,
                             stochastic=True, num_images=6, stats=StatsConfig(resamples=200))
    m = res.metrics["psnr"]
    assert stats.per_image_means(sc, "psnr").mean() == pytest.approx(m.mean, abs=1e-12)
    assert stats.per_image_stds(sc, "psnr").mean() == pytest.approx(m.gstd, abs=1e-12)
    assert m.mean_ci.n == 6 and m.gstd_ci.n == 5  # img004 has no spread to resample
    assert m.mean_ci.low < m.mean < m.mean_ci.high and m.gstd_ci.low < m.gstd < m.gstd_ci.high
    ids, values, left = stats.complete_run_matrix(sc, "psnr")  # the runs plot needs every run of an image
    assert left == ["img001", "img004"] and values.shape == (4, 3)


def test_percentile_fallback_when_bca_undefined(monkeypatch):
    real = sps.bootstrap
    calls = []

    def nan_bca(*args, **kw):  # scipy returns NaN ends when BCa is undefined; simulate that case
        res = real(*args, **kw)
        calls.append(kw["method"])
        if kw["method"] == "BCa":
            res.confidence_interval = type(res.confidence_interval)(math.nan, math.nan)
        return res

    monkeypatch.setattr(stats._st, "bootstrap", nan_bca)
    x = np.random.default_rng(0).normal(size=40)
    ci = stats.mean_interval(x, StatsConfig(resamples=500, seed=1), "k")
    assert ci.method == "percentile" and calls == ["BCa", "percentile"]
    # the percentile interval of the same 500 resamples (not new ones), recomputed by hand
    dist = real((x,), np.mean, n_resamples=500, vectorized=True, method="percentile",
                rng=stats.rng_for(1, "k")).bootstrap_distribution
    assert ci.low == pytest.approx(np.percentile(dist, 2.5), rel=1e-12)
    assert ci.high == pytest.approx(np.percentile(dist, 97.5), rel=1e-12)


def test_determinism_with_recorded_seed_and_independent_keys():
    rng = np.random.default_rng(7)
    a, b = synthetic(rng, 25, 5), synthetic(rng, 25, 5)
    both = pd.concat([tidy(a, "psnr"), tidy(b, "ssim")])
    cfg = StatsConfig(resamples=300, seed=9)
    one = stats.intervals(tidy(a, "psnr"), None, {"psnr": "FR"}, True, cfg)
    two = stats.intervals(both, None, {"ssim": "FR", "psnr": "FR"}, True, cfg)
    assert one["metrics"]["psnr"] == two["metrics"]["psnr"]  # other metrics and order do not matter
    assert stats.intervals(tidy(a), None, {"psnr": "FR"}, True, cfg) == one  # same seed: same numbers
    other = stats.intervals(tidy(a), None, {"psnr": "FR"}, True, StatsConfig(resamples=300, seed=10))
    assert other["metrics"]["psnr"]["mean_ci"] != one["metrics"]["psnr"]["mean_ci"]


def test_interval_json_round_trip():
    rng = np.random.default_rng(3)
    out = stats.intervals(tidy(synthetic(rng, 10, 3)), None, {"psnr": "FR"}, True, StatsConfig(resamples=200))
    text = json.dumps(out, allow_nan=False)  # results.json is written with allow_nan=False
    back = json.loads(text)
    assert back == out
    ci = Interval.from_json(back["metrics"]["psnr"]["mean_ci"])
    assert ci.to_json() == out["metrics"]["psnr"]["mean_ci"] and Interval.from_json(None) is None


def test_paired_identical_methods_never_separated():
    cfg = StatsConfig(resamples=200)
    rng = np.random.default_rng(0)
    for k in range(50):
        a = pd.Series(rng.normal(size=15), index=[f"i{j}" for j in range(15)])
        for hib in (True, False):
            c = stats.compare_paired(a, a.copy(), hib, cfg, f"k{k}")
            assert not c.separated and c.difference == 0.0
            assert (c.interval.low, c.interval.high) == (0.0, 0.0)


def test_paired_same_distribution_rarely_separated():
    # two different methods with the same distribution: "a beats b" at most about (1-level)/2 of the time
    cfg = StatsConfig(resamples=300)
    rng = np.random.default_rng(1)
    idx = [f"i{j}" for j in range(30)]
    hits = 0
    for k in range(200):
        base = rng.normal(size=30) * 3  # shared image difficulty
        a = pd.Series(base + rng.normal(size=30), index=idx)
        b = pd.Series(base + rng.normal(size=30), index=idx)
        hits += stats.compare_paired(a, b, True, cfg, "psnr.mean").separated
    assert hits / 200 <= 0.06


def test_paired_large_shift_always_separated_and_in_the_right_direction():
    cfg = StatsConfig(resamples=300)
    rng = np.random.default_rng(2)
    idx = [f"i{j}" for j in range(20)]
    for k in range(50):
        base = rng.normal(size=20) * 5
        a = pd.Series(base + 1.0 + rng.normal(size=20) * 0.2, index=idx)  # shift of 5 standard errors
        b = pd.Series(base + rng.normal(size=20) * 0.2, index=idx)
        assert stats.compare_paired(a, b, True, cfg, "psnr.mean").separated
        assert not stats.compare_paired(a, b, False, cfg, "lpips.mean").separated  # higher is worse there
        assert not stats.compare_paired(b, a, True, cfg, "psnr.mean").separated
        assert stats.compare_paired(b, a, False, cfg, "gstd").separated


def test_paired_difference_equals_difference_of_reported_means_and_needs_same_images():
    a = pd.Series([1.0, 2.0, 4.0], index=["x", "y", "z"])
    b = pd.Series([0.5, 1.0, 1.5], index=["z", "x", "y"])  # another order: aligned by image id
    c = stats.compare_paired(a, b, True, StatsConfig(resamples=200), "k")
    assert c.difference == pytest.approx(a.mean() - b.mean())
    with pytest.raises(ValueError, match="same images; only in the first: x, z; only in the second: w"):
        stats.compare_paired(a, b.drop("z").rename({"x": "w"}), True, StatsConfig(resamples=200), "k")


def test_independent_comparison_of_runs():
    cfg = StatsConfig(resamples=300)
    rng = np.random.default_rng(4)
    a, b = 40 + rng.normal(size=10), 50 + rng.normal(size=10)
    assert stats.compare_independent(a, b, False, cfg, "fid").separated  # FID: lower is better
    assert not stats.compare_independent(b, a, False, cfg, "fid").separated
    assert not stats.compare_independent(a, a.copy(), False, cfg, "fid").separated
    one = stats.compare_independent(a, np.array([50.0]), False, cfg, "fid")  # deterministic side: exact
    assert one.separated and one.interval.n == 10
    none = stats.compare_independent(np.array([40.0]), np.array([50.0]), False, cfg, "fid")
    assert none.interval is None and not none.separated


def test_stats_config_validation():
    with pytest.raises(ValueError, match="stats.resamples"):
        StatsConfig(resamples=10)
    with pytest.raises(ValueError, match="stats.level"):
        StatsConfig(level=95)
    with pytest.raises(ValueError, match="unknown stats key"):
        StatsConfig.from_mapping({"resample": 10})
    assert StatsConfig.from_mapping({"level": "0.9"}).level == 0.9


def test_gstd_and_lstd_by_runs_at_all_runs_equal_the_reported_values():
    rng = np.random.default_rng(5)
    values = synthetic(rng, 7, 6)
    orders = stats.run_subsets(6, 4, seed=0)
    ns = list(range(2, 7))
    g = stats.gstd_by_runs(values, ns, orders)
    assert g.shape == (5, 4)
    assert np.allclose(g[-1], stability.gstd(tidy(values))["psnr"], atol=1e-12)  # N = all runs: any order
    # N = 2 of order k by hand: half the absolute difference of the two runs, averaged over images
    k0 = orders[0]
    assert g[0, 0] == pytest.approx(np.mean(np.abs(values[:, k0[0]] - values[:, k0[1]]) / 2), abs=1e-12)
    stacks = [rng.integers(0, 256, size=(6, 12, 10, 3), dtype=np.uint8) for _ in range(3)]
    ls = stats.lstd_by_runs(stacks, 2, ns, orders)
    full = np.mean([stability.lstd_image(list(s), 2) for s in stacks])
    assert np.allclose(ls[-1], full, atol=1e-9)
    first3 = np.mean([stability.lstd_image([s[i] for i in orders[1][:3]], 2) for s in stacks])
    assert ls[1, 1] == pytest.approx(first3, abs=1e-9)


def test_paper_sized_intervals_take_seconds():
    # 100 images x 10 runs x 8 metrics with the default 2000 resamples (vectorised scipy bootstrap)
    rng = np.random.default_rng(0)
    names = ["psnr", "ssim", "lpips", "dists", "niqe", "clipiqa", "musiq"]
    sc = pd.concat([tidy(synthetic(rng, 100, 10), n) for n in names]
                   + [pd.DataFrame({"image": "*", "run": range(10), "seed": range(10), "metric": "fid",
                                    "value": 50 + rng.normal(size=10)})])
    lstd_df = pd.DataFrame({"image": [f"img{i:03d}" for i in range(100)], "lstd": rng.uniform(0.01, 0.05, 100)})
    t0 = time.perf_counter()
    out = stats.intervals(sc, lstd_df, {**{n: "FR" for n in names}, "fid": "set"}, True, StatsConfig())
    assert time.perf_counter() - t0 < 10.0  # about 0.6 s on 2 cores
    assert all(v["mean_ci"] is not None for v in out["metrics"].values())


def test_stats_keys_in_the_typed_config():
    from hydra.errors import ConfigCompositionException

    from benchmark.config import validate
    from conftest import compose

    cfg = compose([])
    assert dict(cfg.stats) == {"enabled": True, "resamples": 2000, "seed": 0, "level": 0.95}
    assert StatsConfig.from_mapping(cfg.stats) == StatsConfig()
    cfg = compose(["stats.enabled=false", "stats.resamples=500", "stats.level=0.9"])
    assert StatsConfig.from_mapping(cfg.stats) == StatsConfig(enabled=False, resamples=500, level=0.9)
    with pytest.raises(ValueError, match=r"stats.resamples=10: need an integer >= 100"):
        validate(compose(["stats.resamples=10"]))
    with pytest.raises(ValueError, match=r"stats.level=95.0"):
        validate(compose(["stats.level=95"]))
    with pytest.raises(ConfigCompositionException, match="stats.resamples"):  # typed: a wrong type fails while Hydra composes
        compose(["stats.resamples=many"])
