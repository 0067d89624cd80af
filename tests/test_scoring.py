"""Scoring without the runner: which pixels each metric sees (border crop), which values exist
(size limits, flat images, failures), and the scores and per-image L-STD of stored samples,
each compared with numpy computed beside it. Small and fast: the mutation run of
benchmark/scoring.py (benchmarks/mutation.py) uses these tests."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from benchmark import scoring
from benchmark.data import Sample
from benchmark.results import Excluded
from benchmark.scoring import MetricPlan, score, score_image, size_exclusions, tidy
from benchmark.store import SET_IMAGE, Store
from conftest import write_png


def _spec(kind: str = "FR", crop: bool = True, min_size: int = 1, flat_undefined: bool = False,
          why: str = "") -> SimpleNamespace:
    """The MetricSpec facts scoring reads (too_small is the real MetricSpec rule, typed out here)."""
    def too_small(h, w, border):
        if crop:
            h, w = h - 2 * border, w - 2 * border
        return None if min(h, w) >= min_size else "too small"

    return SimpleNamespace(kind=kind, crop=crop, min_size=min_size, min_size_why=why, flat_undefined=flat_undefined,
                           too_small=too_small)


def _mse(sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    """A full-reference scorer: mean squared difference per run, float64 [N]."""
    return ((sr.double() - hr.double()) ** 2).mean(dim=(1, 2, 3))


def _mean(sr: torch.Tensor) -> torch.Tensor:
    """A no-reference scorer: mean pixel value per run."""
    return sr.double().mean(dim=(1, 2, 3))


@pytest.mark.parametrize("border", [0, 1, 3])
def test_crop_removes_border_pixels_on_each_side(border):
    x = torch.arange(2 * 3 * 9 * 10, dtype=torch.float32).reshape(2, 3, 9, 10)
    got = scoring._crop_t(x, border)
    want = x.numpy()[..., border:9 - border, border:10 - border]
    assert got.shape == (2, 3, 9 - 2 * border, 10 - 2 * border)
    np.testing.assert_array_equal(got.numpy(), want)


def test_flat_is_per_run_zero_variance():
    x = torch.rand(4, 3, 4, 4)  # 4 runs of 3 channels: runs and channels cannot be confused
    x[1] = 0.5  # one value everywhere
    x[2, 0] = 0.5  # one channel constant, the others not: not flat
    assert scoring._flat(x).tolist() == [False, True, False, False]


def test_tidy_sorts_by_metric_image_run_and_keeps_missing_seeds():
    rows = [("b", 1, 8, "psnr", 2.0), ("a", 1, 8, "ssim", 3.0), ("b", 0, 7, "psnr", 1.0), ("a", 0, None, "psnr", 0.5)]
    got = tidy(rows)
    assert list(zip(got["metric"], got["image"], got["run"])) == [("psnr", "a", 0), ("psnr", "b", 0),
                                                                  ("psnr", "b", 1), ("ssim", "a", 1)]
    assert str(got["seed"].dtype) == "Int64" and got["seed"].isna().tolist() == [True, False, False, False]
    more = pd.DataFrame([("__set__", 0, 7, "fid", 9.0)], columns=scoring.SCORE_COLUMNS)
    both = tidy(rows, more)
    assert len(both) == 5 and both["metric"].tolist()[0] == "fid"
    assert len(tidy(rows, more.iloc[:0])) == 4  # an empty frame adds nothing
    frame = pd.DataFrame(rows, columns=scoring.SCORE_COLUMNS)  # merge passes the shards' frame
    pd.testing.assert_frame_equal(tidy(frame), got)


def test_score_image_calls_fr_with_hr_and_nr_without():
    x, y = torch.rand(3, 3, 8, 8), torch.rand(1, 3, 8, 8)
    excluded: list[Excluded] = []
    fr = score_image("m", _spec("FR"), _mse, "img", x, y, [4, 5, 6], excluded)
    want = ((x.double() - y.double()) ** 2).mean(dim=(1, 2, 3)).tolist()
    assert fr == pytest.approx(dict(zip([4, 5, 6], want)), abs=0)
    nr = score_image("n", _spec("NR", crop=False), _mean, "img", x, None, [0, 1, 2], excluded)
    assert nr == pytest.approx(dict(enumerate(x.double().mean(dim=(1, 2, 3)).tolist())), abs=0)
    assert excluded == []


@pytest.mark.parametrize("h, w, crop, border, reason", [
    (11, 30, False, 0, None),  # min_size 11: 11 px is enough
    (10, 30, False, 0, "m: undefined below 11x11 px, a window (image 'img' is 30x10)"),
    (11, 30, True, 2, None),  # x is what the metric sees (already cropped by 2): 11 px seen
    (10, 30, True, 2, "m: undefined below 11x11 px, a window (image 'img' is 30x10 after crop_border=2)"),
    (30, 10, True, 2, "m: undefined below 11x11 px, a window (image 'img' is 10x30 after crop_border=2)"),
])
def test_score_image_size_limit_is_on_what_the_metric_sees(h, w, crop, border, reason):
    x = torch.rand(2, 3, h, w)
    excluded: list[Excluded] = []
    spec = _spec("NR", crop=crop, min_size=11, why="a window")
    got = score_image("m", spec, _mean, "img", x, None, [0, 1], excluded, border)
    assert (got != {}) is (reason is None)
    assert excluded == ([] if reason is None else [Excluded("m", "img", 0, reason), Excluded("m", "img", 1, reason)])


def test_score_image_excludes_flat_runs_only_where_undefined():
    x = torch.rand(3, 3, 8, 8)
    x[1] = 0.25
    excluded: list[Excluded] = []
    got = score_image("niqe", _spec("NR", crop=False, flat_undefined=True), _mean, "img", x, None, [0, 1, 2], excluded)
    assert sorted(got) == [0, 2] and got[2] == pytest.approx(float(x[2].double().mean()), abs=0)
    assert excluded == [Excluded("niqe", "img", 1, "niqe: undefined on a flat image (zero variance)")]
    excluded.clear()
    got = score_image("m", _spec("NR", crop=False), _mean, "img", x, None, [0, 1, 2], excluded)
    assert sorted(got) == [0, 1, 2] and got[1] == pytest.approx(0.25) and excluded == []


def test_score_image_finds_the_failing_run_and_keeps_the_others():
    x = torch.rand(3, 3, 8, 8)
    x[1, 0, 0, 0] = 2.0  # the scorer refuses values above 1 (as a metric that checks its input range)

    def picky(sr):
        if (sr > 1).any():
            raise ValueError("input out of range")
        return _mean(sr)

    excluded: list[Excluded] = []
    got = score_image("m", _spec("NR", crop=False), picky, "img", x, None, [10, 11, 12], excluded)
    assert got == pytest.approx({10: float(x[0].double().mean()), 12: float(x[2].double().mean())}, abs=0)
    assert excluded == [Excluded("m", "img", 11, "m: failed (ValueError: input out of range)")]


def test_score_image_excludes_non_finite_values():
    x = torch.rand(3, 3, 8, 8)
    excluded: list[Excluded] = []
    got = score_image("m", _spec("NR", crop=False),
                      lambda sr: torch.tensor([1.5, float("nan"), float("inf")], dtype=torch.float64), "img", x,
                      None, [0, 1, 2], excluded)
    assert got == {0: 1.5}
    assert excluded == [Excluded("m", "img", 1, "m: undefined (the metric returned nan)"),
                        Excluded("m", "img", 2, "m: undefined (the metric returned inf)")]


def test_size_exclusions_from_lr_sizes_before_generation(tmp_path):
    # the set metric first and the image without HR first: each is passed over, not the end of the loop
    plan = MetricPlan({"fid": (_spec("set", crop=False, min_size=1000), None),
                       "ssim": (_spec("FR", crop=True, min_size=11, why="a window"), None),
                       "niqe": (_spec("NR", crop=False, min_size=96), None)}, {})
    samples = [Sample("tiny", tmp_path / "t.png", None, (3, 30)),  # SR 12x120, cropped: 8; no HR: no SSIM
               Sample("big", tmp_path / "b.png", tmp_path / "B.png", (24, 30)),  # SR 96x120
               Sample("small", tmp_path / "s.png", tmp_path / "S.png", (4, 30))]  # SR 16x120, cropped 2: 12
    got = size_exclusions(samples, plan, scale=4, crop_border=2, runs=2)
    assert sorted((e.metric, e.image, e.run) for e in got) == [("niqe", "small", 0), ("niqe", "small", 1),
                                                               ("niqe", "tiny", 0), ("niqe", "tiny", 1)]
    assert {e.reason for e in got if e.image == "tiny"} == {"niqe: undefined below 96x96 px (image 'tiny' is 120x12)"}
    # crop_border 3 takes "small" (16 px) below SSIM's 11 px: 16 - 2*3 = 10
    got = size_exclusions(samples, plan, scale=4, crop_border=3, runs=1)
    assert ("ssim", "small", 0) in {(e.metric, e.image, e.run) for e in got}
    assert {e.reason for e in got if e.metric == "ssim"} == {
        "ssim: undefined below 11x11 px, a window (image 'small' is 114x10 after crop_border=3)"}
    assert not any(e.metric == "ssim" and e.image == "big" for e in got)


def _stored(tmp_path, runs: int, size=(10, 12)):
    """Two images with HR and ``runs`` stored SR samples each (random uint8)."""
    rng = np.random.default_rng(3)
    store = Store(tmp_path / "out", "d", "m")
    samples, arrays = [], {}
    for i in ("im1", "im2"):
        hr = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
        write_png(tmp_path / "HR" / f"{i}.png", hr)
        srs = [rng.integers(0, 256, (*size, 3), dtype=np.uint8) for _ in range(runs)]
        for r, a in enumerate(srs):
            write_png(store.sample_path(i, r), a)
        samples.append(Sample(i, tmp_path / "LR" / f"{i}.png", tmp_path / "HR" / f"{i}.png", (size[0] // 2, size[1] // 2)))
        arrays[i] = (hr, srs)
    return store, samples, arrays


class _SetMSE:
    """A set-level scorer (as FID): one value per run over every (SR, HR) file pair: the mean MSE in
    8-bit levels; run 3 is undefined and run 4 fails, as a set metric can on one run."""

    def __init__(self) -> None:
        self.calls: list[tuple[list, list]] = []

    def score_set(self, sr_paths, hr_paths):
        from benchmark.images import read_image

        self.calls.append((list(sr_paths), list(hr_paths)))
        if "sample03" in str(sr_paths[0]):
            return float("nan")
        if "sample04" in str(sr_paths[0]):
            raise RuntimeError("singular covariance")
        return float(np.mean([((read_image(a).astype(float) - read_image(b).astype(float)) ** 2).mean()
                              for a, b in zip(sr_paths, hr_paths)]))


def test_score_of_stored_samples_equals_numpy_with_crop_and_chunks(tmp_path):
    runs, border = 5, 2
    store, samples, arrays = _stored(tmp_path, runs)
    set_scorer = _SetMSE()
    # the set metric first: per-image scoring passes over it, set scoring passes over the others
    plan = MetricPlan({"set_mse": (_spec("set", crop=False), set_scorer),
                       "fr_crop": (_spec("FR", crop=True), _mse), "nr_whole": (_spec("NR", crop=False), _mean),
                       "fr_whole": (_spec("FR", crop=False), _mse),
                       "nr_big": (_spec("NR", crop=True, min_size=11), _mean)}, {})  # images are 10x12
    seeds = [7 + r for r in range(runs)]
    scores, lstd = score(samples, store, runs, seeds, plan, border, torch.device("cpu"), chunk=2)
    assert list(scores.columns) == scoring.SCORE_COLUMNS
    too_small = [(e.metric, e.image, e.run, e.reason) for e in plan.excluded if e.metric == "nr_big"]
    assert too_small == [("nr_big", i, r, f"nr_big: undefined below 11x11 px (image '{i}' is 8x6 after crop_border=2)")
                         for i in ("im1", "im2") for r in range(runs)]
    plan.excluded = [e for e in plan.excluded if e.metric != "nr_big"]
    assert [(e.metric, e.image, e.run, e.reason) for e in plan.excluded] == [
        ("set_mse", SET_IMAGE, 3, "set_mse: undefined (the metric returned nan)"),
        ("set_mse", SET_IMAGE, 4, "set_mse: failed (RuntimeError: singular covariance)")]
    sets = scores[scores["metric"] == "set_mse"]
    assert sets["image"].tolist() == [SET_IMAGE] * 3 and sets["run"].tolist() == [0, 1, 2]
    assert sets["seed"].tolist() == [7, 8, 9]
    for r, v in zip(sets["run"], sets["value"]):
        want = np.mean([((arrays[i][1][r].astype(float) - arrays[i][0].astype(float)) ** 2).mean() for i in arrays])
        assert v == pytest.approx(want, rel=1e-12)
    assert set_scorer.calls[1] == ([store.sample_path("im1", 1), store.sample_path("im2", 1)],
                                   [s.hr_path for s in samples])
    scores = scores[scores["metric"] != "set_mse"]
    assert len(scores) == 2 * 3 * runs
    for i, (hr, srs) in arrays.items():
        h = hr.astype(np.float64)[border:-border, border:-border] / 255.0
        for r, sr in enumerate(srs):
            s = sr.astype(np.float64) / 255.0
            row = scores[(scores["image"] == i) & (scores["run"] == r)].set_index("metric")
            assert row.loc["fr_crop", "value"] == pytest.approx(((s[border:-border, border:-border] - h) ** 2).mean(),
                                                                rel=1e-6)
            assert row.loc["nr_whole", "value"] == pytest.approx(s.mean(), rel=1e-6)
            assert row.loc["fr_whole", "value"] == pytest.approx(((s - hr.astype(np.float64) / 255.0) ** 2).mean(),
                                                                 rel=1e-6)
            assert row.loc["fr_crop", "seed"] == 7 + r
        stack = np.stack(srs).astype(np.float64)[:, border:-border, border:-border] / 255.0
        want = stack.std(axis=0, ddof=0).mean()  # L-STD of the image (DESIGN.md): pixel std over runs, averaged
        assert lstd.set_index("image").loc[i, "lstd"] == pytest.approx(want, rel=1e-9)
    assert lstd["image"].tolist() == ["im1", "im2"]


def test_score_single_run_has_no_lstd_and_skips_fr_without_hr(tmp_path):
    store, samples, arrays = _stored(tmp_path, 1)
    samples = [Sample(s.id, s.lr_path, None if s.id == "im1" else s.hr_path, s.lr_size) for s in samples]
    set_scorer = _SetMSE()
    plan = MetricPlan({"fr": (_spec("FR", crop=False), _mse), "nr": (_spec("NR", crop=False), _mean),
                       "set_mse": (_spec("set", crop=False), set_scorer)}, {})
    scores, lstd = score(samples, store, 1, [0], plan, 0, torch.device("cpu"))
    # im1 has no HR: no full-reference value (its no-reference value stays), and the set metric is
    # computed over im2 alone
    assert scores[scores["metric"] == "fr"]["image"].tolist() == ["im2"]
    assert scores[scores["metric"] == "nr"]["image"].tolist() == ["im1", "im2"]
    assert set_scorer.calls == [([store.sample_path("im2", 0)], [samples[1].hr_path])]
    assert lstd["lstd"].tolist() == [None, None]


def test_named_scorer_names_metric_and_size_and_forwards_the_rest():
    def fails(sr, hr):
        raise RuntimeError("Kernel size can't be greater than actual input size")

    wrapped = scoring.named("ssim", fails, 4)
    with pytest.raises(RuntimeError, match=r"metric 'ssim' failed on an SR input of 7x5 pixels \(after "
                                           r"crop_border=4") as err:
        wrapped(torch.zeros(1, 3, 5, 7), torch.zeros(1, 3, 5, 7))
    assert isinstance(err.value.__cause__, RuntimeError)
    assert scoring.named("m", _mse, 0)(torch.ones(1, 3, 2, 2), torch.zeros(1, 3, 2, 2)).tolist() == [1.0]
    set_scorer = SimpleNamespace(score_set=lambda a, b: 3.0)  # not callable: returned as it is
    assert scoring.named("fid", set_scorer, 0) is set_scorer
    assert scoring.NamedScorer("x", set_scorer, 0).score_set([], []) == 3.0
    # the reason recorded for an excluded value names the cause, not the advice for a whole run
    assert scoring._reason_of("ssim", err.value) == (
        "ssim: failed (RuntimeError: Kernel size can't be greater than actual input size)")


def test_build_scorers_builds_only_the_kinds_asked_for():
    from benchmark.metrics import METRICS

    built = scoring.build_scorers(["psnr", "niqe"], {}, torch.device("cpu"), 0, kinds=("set",))
    assert list(built) == ["psnr", "niqe"] and all(scorer is None for _, scorer in built.values())
    assert built["psnr"][0] is METRICS.get("psnr")
    built = scoring.build_scorers(["psnr"], {}, torch.device("cpu"), 0)
    x, y = torch.rand(2, 3, 8, 8), torch.rand(1, 3, 8, 8)
    mse = ((x.double() - y.double()) ** 2).mean(dim=(1, 2, 3))  # RGB PSNR would differ; Y is pyiqa's default
    import pyiqa

    want = pyiqa.create_metric("psnr", test_y_channel=True, color_space="ycbcr", device="cpu")(x, y.expand(2, -1, -1, -1))
    assert built["psnr"][1](x, y).tolist() == pytest.approx(want.double().tolist(), abs=1e-5)
    assert not torch.allclose(built["psnr"][1](x, y), 10 * torch.log10(1 / mse))


def test_out_of_memory_stops_scoring_instead_of_excluding_a_value():
    """Out-of-memory is the machine's fault, not the input's: it propagates (batch and one-by-one retry)
    and nothing is recorded as excluded; other errors become exclusions."""
    def oom(sr):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    excluded: list[Excluded] = []
    with pytest.raises(torch.OutOfMemoryError):
        score_image("m", _spec("NR", crop=False), oom, "img", torch.rand(2, 3, 8, 8), None, [0, 1], excluded)
    assert excluded == []
    calls = []

    def batch_fails_then_oom(sr):  # a batch error, then out of memory on the retry of one run
        calls.append(sr.shape[0])
        if len(calls) == 1:
            raise ValueError("batch")
        raise torch.OutOfMemoryError("CUDA out of memory")

    with pytest.raises(torch.OutOfMemoryError):
        score_image("m", _spec("NR", crop=False), batch_fails_then_oom, "img", torch.rand(2, 3, 8, 8), None, [0, 1],
                    excluded)
    assert calls == [2, 1] and excluded == []
    assert scoring._is_oom(torch.OutOfMemoryError("CUDA out of memory")) and not scoring._is_oom(ValueError("x"))


def test_out_of_memory_in_a_set_metric_stops_scoring(tmp_path):
    store, samples, _ = _stored(tmp_path, 2)

    class OOM:
        def score_set(self, sr_paths, hr_paths):
            raise torch.OutOfMemoryError("CUDA out of memory")

    plan = MetricPlan({"fid": (_spec("set", crop=False), OOM())}, {})
    with pytest.raises(torch.OutOfMemoryError):
        scoring.score_sets(samples, store, 2, [0, 1], plan)
    assert plan.excluded == []


# ----------------------------------------------------------------------------- survivors of the 2026-11-30 run


def test_a_set_metric_failing_on_one_run_goes_on_with_the_later_runs(tmp_path):
    """A run whose set metric fails is excluded and the runs after it are still scored (a failure
    stops nothing): run 4 fails, run 5 has its value."""
    runs = 6
    store, samples, arrays = _stored(tmp_path, runs)
    plan = MetricPlan({"set_mse": (_spec("set", crop=False), _SetMSE())}, {})
    got = scoring.score_sets(samples, store, runs, [10 + r for r in range(runs)], plan)
    assert got["run"].tolist() == [0, 1, 2, 5] and got["seed"].tolist() == [10, 11, 12, 15]
    want = np.mean([((arrays[i][1][5].astype(float) - arrays[i][0].astype(float)) ** 2).mean() for i in arrays])
    assert got["value"].iloc[-1] == pytest.approx(want, rel=1e-12)
    assert [(e.run, e.reason) for e in plan.excluded] == [
        (3, "set_mse: undefined (the metric returned nan)"), (4, "set_mse: failed (RuntimeError: singular covariance)")]


def test_chunk_bounds_the_runs_scored_at_once(tmp_path):
    """``chunk`` is the most runs of one image decoded and handed to a metric at once (memory per image
    is O(chunk)): 5 runs in chunks of 2 are scored as 2, 2, 1, per image and per metric."""
    store, samples, _ = _stored(tmp_path, 5)
    sizes: list[int] = []

    def nr(sr):
        sizes.append(sr.shape[0])
        return _mean(sr)

    plan = MetricPlan({"nr": (_spec("NR", crop=False), nr)}, {})
    scores, _ = score(samples, store, 5, list(range(5)), plan, 0, torch.device("cpu"), chunk=2)
    assert sizes == [2, 2, 1, 2, 2, 1] and len(scores) == 10
    sizes.clear()
    rows, _ = scoring.score_stored(samples[0], store, 5, list(range(5)), plan, 0, torch.device("cpu"), [], chunk=3)
    assert sizes == [3, 2] and [r[1] for r in rows] == [0, 1, 2, 3, 4]


def test_per_image_metrics_get_sr_and_hr_on_the_scoring_device(tmp_path):
    """SR and HR reach each per-image scorer on the device the scorers were built on (``device``), for
    cropping and non-cropping metrics. The meta device stands for an accelerator on a CPU-only machine:
    a tensor left on the CPU would be seen here."""
    store, samples, _ = _stored(tmp_path, 3)
    seen: list[tuple[str, torch.device, torch.device | None]] = []

    def recorder(name):
        def scorer(sr, hr=None):
            seen.append((name, sr.device, None if hr is None else hr.device))
            return torch.zeros(sr.shape[0], dtype=torch.float64)  # values are not what this test checks
        return scorer

    plan = MetricPlan({"fr_crop": (_spec("FR", crop=True), recorder("fr_crop")),
                       "fr_whole": (_spec("FR", crop=False), recorder("fr_whole")),
                       "nr": (_spec("NR", crop=False), recorder("nr"))}, {})
    meta = torch.device("meta")
    scores, _ = score(samples, store, 3, [0, 1, 2], plan, 2, meta, chunk=2)
    assert len(scores) == 2 * 3 * 3
    assert seen == [(n, meta, None if n == "nr" else meta) for _ in samples for _ in (0, 1)
                    for n in ("fr_crop", "fr_whole", "nr")]


def test_out_of_memory_on_a_batch_stops_at_once_without_a_run_by_run_retry():
    """A batch that does not fit is the machine's fault, not the input's: scoring stops on the first
    out-of-memory error and does not retry the runs one by one (where one run would fit)."""
    calls = []

    def oom_on_batches(sr):
        calls.append(sr.shape[0])
        if sr.shape[0] > 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return _mean(sr)

    excluded: list[Excluded] = []
    with pytest.raises(torch.OutOfMemoryError):
        score_image("m", _spec("NR", crop=False), oom_on_batches, "img", torch.rand(2, 3, 8, 8), None, [0, 1],
                    excluded)
    assert calls == [2] and excluded == []


def test_out_of_memory_is_recognised_on_a_torch_without_torch_out_of_memory_error(monkeypatch):
    """pyproject allows torch releases whose only out-of-memory type is torch.cuda.OutOfMemoryError (no
    top-level torch.OutOfMemoryError): there an out-of-memory error is recognised by its message."""
    monkeypatch.delattr(torch, "OutOfMemoryError")
    assert scoring._is_oom(torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert not scoring._is_oom(ValueError("Kernel size can't be greater than actual input size"))


@pytest.mark.parametrize("err", [
    RuntimeError("CUDA error: out of memory\nCUDA kernel errors might be asynchronously reported"),
    RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: "
                  "you tried to allocate 68719476736 bytes. Error code 12 (Cannot allocate memory)"),
    RuntimeError("MPS backend out of memory (MPS allocated: 17.00 GB)")])
def test_memory_exhaustion_of_any_exception_type_stops_scoring(err):
    """The messages torch's allocators raise as plain RuntimeErrors (texts as torch prints them) are
    memory exhaustion: scoring stops instead of excluding the value of every run."""
    assert scoring._is_oom(err)
    assert scoring._is_oom(torch.OutOfMemoryError(""))  # the type alone decides, whatever the text
    assert not scoring._is_oom(RuntimeError("Given groups=1, weight of size [64, 3, 3, 3], expected input to have "
                                            "3 channels, but got 4 channels instead"))

    def scorer(sr):
        raise err

    with pytest.raises(RuntimeError):
        score_image("m", _spec("NR", crop=False), scorer, "img", torch.rand(2, 3, 8, 8), None, [0, 1], [])


def test_named_scorer_forwards_keyword_arguments():
    got = {}

    def scorer(sr, hr, **kwargs):
        got.update(kwargs)
        return _mse(sr, hr)

    wrapped = scoring.named("m", scorer, 0)
    assert wrapped(torch.ones(1, 3, 2, 2), torch.zeros(1, 3, 2, 2), reduction="none").tolist() == [1.0]
    assert got == {"reduction": "none"}


def test_reason_of_a_long_error_keeps_its_first_300_characters_on_one_line():
    """An exclusion's reason is stored once per (metric, image, run): a long error text is cut at 300
    characters and its whitespace (line breaks of a traceback-like message) collapsed."""
    text = "word " * 100 + "\n" + "x" * 1000
    want = " ".join(text.split())[:300]
    assert len(want) == 300
    assert scoring._reason_of("m", ValueError(text)) == f"m: failed (ValueError: {want})"


def test_score_image_without_crop_border_means_no_crop():
    """score_image's crop_border defaults to 0: the reason of a too-small image mentions no crop."""
    excluded: list[Excluded] = []
    got = score_image("m", _spec("NR", crop=True, min_size=11), _mean, "img", torch.rand(1, 3, 10, 30), None, [0],
                      excluded)
    assert got == {} and excluded == [Excluded("m", "img", 0, "m: undefined below 11x11 px (image 'img' is 30x10)")]


def test_build_scorers_passes_each_metric_its_options_device_and_crop_border():
    """Options reach the metric (RGB PSNR equals pyiqa's RGB PSNR, not its Y PSNR), the scorer is built on
    the device asked for, and a failure names the metric and the crop_border of the run."""
    import pyiqa

    built = scoring.build_scorers(["psnr", "ssim"], {"psnr": {"y_channel": False}}, torch.device("cpu"), 3)
    x, y = torch.rand(2, 3, 16, 16), torch.rand(1, 3, 16, 16)
    rgb = pyiqa.create_metric("psnr", test_y_channel=False, color_space="ycbcr", device="cpu")(x, y.expand(2, -1, -1, -1))
    ych = pyiqa.create_metric("psnr", test_y_channel=True, color_space="ycbcr", device="cpu")(x, y.expand(2, -1, -1, -1))
    assert built["psnr"][1](x, y).tolist() == pytest.approx(rgb.double().tolist(), abs=1e-5)
    assert not np.allclose(rgb.double().numpy(), ych.double().numpy(), atol=1e-3)
    assert built["ssim"][1].device == torch.device("cpu")  # the fast SSIM keeps its window on that device
    with pytest.raises(RuntimeError, match=r"^metric 'ssim' failed on an SR input of 5x5 pixels \(after "
                                           r"crop_border=3, if the metric crops\)"):
        built["ssim"][1](torch.rand(1, 3, 5, 5), torch.rand(1, 3, 5, 5))


# ----------------------------------------------------------------------------- metric_files, plan_metrics

#: the files of the metrics below, typed from pyiqa (archs/lpips_arch.py, archs/dists_arch.py,
#: archs/niqe_arch.py, archs/inception.py) and torchvision (VGG16_Weights.IMAGENET1K_V1): (folder under
#: <TORCH_HOME>/hub, file name, URL)
_HF = "https://huggingface.co/chaofengc/IQA-PyTorch-Weights/resolve/main/"
LPIPS_VGG = ("pyiqa", "LPIPS_v0.1_vgg-a78928a0.pth", _HF + "LPIPS_v0.1_vgg-a78928a0.pth")
VGG16 = ("checkpoints", "vgg16-397923af.pth", "https://download.pytorch.org/models/vgg16-397923af.pth")
DISTS = ("pyiqa", "DISTS_weights-f5e65c96.pth", _HF + "DISTS_weights-f5e65c96.pth")
NIQE = ("pyiqa", "niqe_modelparameters.mat", _HF + "niqe_modelparameters.mat")
INCEPTION = ("pyiqa", "pt_inception-2015-12-05-6726825d.pth", _HF + "pt_inception-2015-12-05-6726825d.pth")
NO_HR = "the data set has no HR images (full-reference metric)"


def _cfg(weights_dir, metrics: dict, strict: bool = True, crop_border: int = 4, **top):
    from omegaconf import OmegaConf

    return OmegaConf.create({"metrics": metrics, "weights_dir": str(weights_dir), "strict": strict,
                             "crop_border": crop_border, **top})


def _put(weights_dir, *files) -> None:
    """Make files present in ``<weights_dir>/hub/<folder>/`` (their content is never read here)."""
    for folder, name, _ in files:
        p = weights_dir / "hub" / folder / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")


def _files(weights_dir, *files) -> list[tuple[str, str, str]]:
    return [(name, str(weights_dir.resolve() / "hub" / folder / name), url) for folder, name, url in files]


def _why(name: str, weights_dir, *files) -> str:
    listed = ", ".join(f"{path} (from {url})" for _, path, url in _files(weights_dir, *files))
    return f"missing {listed}; fetch with `python -m benchmark weights metrics=[{name}] --download`"


def _as_tuples(missing):
    return {m: [(w.name, str(w.path), w.url) for w in ws] for m, ws in missing.items()}


def test_metric_files_without_hr_skips_fr_and_set_metrics_before_looking_for_their_files(tmp_path, monkeypatch):
    """No HR: PSNR (FR) and FID (set) are skipped with the reason, whatever their files; the NR metric
    after them is still checked, and its absent file is returned as missing (strict, required)."""
    w = tmp_path / "w"
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "elsewhere"))  # weights_dir, not this, is where files are
    cfg = _cfg(w, {"psnr": {}, "fid": {}, "niqe": {}})
    skipped, missing = scoring.metric_files(cfg, has_hr=False)
    assert skipped == {"psnr": NO_HR, "fid": NO_HR}
    assert _as_tuples(missing) == {"niqe": _files(w, NIQE)}
    # with HR images the same selection needs FID's Inception weights too; PSNR needs no file
    skipped, missing = scoring.metric_files(cfg, has_hr=True)
    assert skipped == {} and _as_tuples(missing) == {"fid": _files(w, INCEPTION), "niqe": _files(w, NIQE)}
    _put(w, NIQE)  # present in weights_dir (TORCH_HOME points elsewhere): found
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "elsewhere"))
    assert scoring.metric_files(cfg, has_hr=False) == ({"psnr": NO_HR, "fid": NO_HR}, {})


def test_metric_files_skips_optional_metrics_and_with_strict_false_names_each_absent_file(tmp_path, monkeypatch):
    """An optional metric whose files are absent is skipped with a reason naming each absent file, its
    URL and the fetch command; a required one is returned as missing (strict=true) or skipped
    (strict=false). Files present in weights_dir are not named. Options decide the files (LPIPS on VGG)
    and may be interpolations."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "elsewhere"))
    w = tmp_path / "w"
    metrics = {"lpips": {"optional": True, "net": "${backbone}"}, "dists": {}, "psnr": {}}
    skipped, missing = scoring.metric_files(_cfg(w, metrics, backbone="vgg"), has_hr=True)
    assert skipped == {"lpips": _why("lpips", w, LPIPS_VGG, VGG16)}
    assert _as_tuples(missing) == {"dists": _files(w, DISTS, VGG16)}
    _put(w, VGG16)  # shared by LPIPS-VGG and DISTS: no longer named
    skipped, missing = scoring.metric_files(_cfg(w, metrics, backbone="vgg"), has_hr=True)
    assert skipped == {"lpips": _why("lpips", w, LPIPS_VGG)} and _as_tuples(missing) == {"dists": _files(w, DISTS)}
    skipped, missing = scoring.metric_files(_cfg(w, metrics, strict=False, backbone="vgg"), has_hr=True)
    assert skipped == {"lpips": _why("lpips", w, LPIPS_VGG), "dists": _why("dists", w, DISTS)} and missing == {}
    _put(w, LPIPS_VGG, DISTS)
    assert scoring.metric_files(_cfg(w, metrics, backbone="vgg"), has_hr=True) == ({}, {})


def test_plan_metrics_builds_the_metrics_not_skipped_and_logs_each_skip(tmp_path, monkeypatch, caplog):
    """plan_metrics: the scorers of the metrics that run, in the order of the selection, built once with
    their options and the run's crop_border; the skipped ones with their reasons, each logged."""
    import logging

    import pyiqa

    from benchmark.metrics import METRICS

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "elsewhere"))
    w = tmp_path / "w"
    cfg = _cfg(w, {"psnr": {"y_channel": "${rgb}"}, "lpips": {"optional": True}, "ssim": {}}, crop_border=3, rgb=False)
    lpips_alex = [("pyiqa", "LPIPS_v0.1_alex-df73285e.pth", _HF + "LPIPS_v0.1_alex-df73285e.pth"),
                  ("checkpoints", "alexnet-owt-7be5be79.pth", "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth")]
    with caplog.at_level(logging.WARNING, logger="srbench"):
        plan = scoring.plan_metrics(cfg, True, torch.device("cpu"))
    assert list(plan.active) == ["psnr", "ssim"] and plan.excluded == []
    assert plan.skipped == {"lpips": _why("lpips", w, *lpips_alex)}
    assert all(plan.active[n][0] is METRICS.get(n) for n in plan.active) and plan.specs == {
        "psnr": METRICS.get("psnr"), "ssim": METRICS.get("ssim")}
    assert [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()] == [
        f"metric lpips skipped: {plan.skipped['lpips']}"]
    x, y = torch.rand(2, 3, 16, 16), torch.rand(1, 3, 16, 16)
    rgb = pyiqa.create_metric("psnr", test_y_channel=False, color_space="ycbcr", device="cpu")(x, y.expand(2, -1, -1, -1))
    assert plan.active["psnr"][1](x, y).tolist() == pytest.approx(rgb.double().tolist(), abs=1e-5)
    with pytest.raises(RuntimeError, match=r"^metric 'ssim' failed on an SR input of 5x5 pixels \(after crop_border=3"):
        plan.active["ssim"][1](torch.rand(1, 3, 5, 5), torch.rand(1, 3, 5, 5))
    # a data set without HR images: both full-reference metrics are skipped and nothing is built
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="srbench"):
        plan = scoring.plan_metrics(_cfg(w, {"psnr": {}, "ssim": {}}), False, torch.device("cpu"))
    assert plan.active == {} and plan.skipped == {"psnr": NO_HR, "ssim": NO_HR}
    assert [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()] == [
        f"metric psnr skipped: {NO_HR}", f"metric ssim skipped: {NO_HR}"]


def test_plan_metrics_stops_before_building_when_a_required_metric_s_files_cannot_be_fetched(tmp_path, monkeypatch):
    """strict=true and a required metric's file absent, offline: plan_metrics raises FileNotFoundError
    naming the file and where it goes; nothing is built."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # offline without probing the network
    w = tmp_path / "w"
    (path, url), = [(p, u) for _, p, u in _files(w, NIQE)]
    with pytest.raises(FileNotFoundError, match="metric files are missing") as err:
        scoring.plan_metrics(_cfg(w, {"psnr": {}, "niqe": {}}), True, torch.device("cpu"))
    assert f"niqe: niqe_modelparameters.mat -> {path}" in str(err.value) and url in str(err.value)
