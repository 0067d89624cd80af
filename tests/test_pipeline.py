"""Pipelined runs (``pipeline=true``, benchmark/pipeline.py) give the same bits as sequential ones.

* the sample scored from memory is the PNG that is stored (the round trip is lossless) and
  scores the same;
* ``pipeline=true`` and ``pipeline=false`` write byte-identical samples, scores.csv, lstd.csv
  and results.json (the timing figures and ``config.pipeline`` excepted, named below), for a
  stochastic and a deterministic method, seed 0 and seed != 0, the demo set, a resumed run,
  several chunks of runs per image, sources that store run by run or replace a sample;
* the background writer: every queued sample is on disk when the sink closes, a failed write
  is raised in the main thread naming the file, and later samples are not written;
* a failure in the scorer thread reaches the main thread with its type.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from benchmark import sink as sink_mod
from benchmark.data import FolderDataset
from benchmark.images import read_image, to_uint8, write_png_atomic
from benchmark.pipeline import StreamScorer
from benchmark.runner import generate
from benchmark.scoring import ImageScoring, MetricPlan, build_scorers, per_image_metrics, score
from benchmark.sink import SampleSink
from benchmark.store import Store
from benchmark.write_errors import OutputWriteError
from conftest import folder_dir, make_pairs, run_bench

# The only results.json fields a pipelined and a sequential run of the same config may differ in:
# wall-clock figures of the timing block, and the pipeline switch itself (recorded in config).
TIMING_FIELDS_THAT_DIFFER = ("generation_seconds", "scoring_seconds", "seconds_per_image_run", "critical_path",
                             "pipeline")


def _plan(device: torch.device = torch.device("cpu"), names=("psnr", "ssim")) -> MetricPlan:
    return MetricPlan(build_scorers(list(names), {}, device, 4), {})


def _noise_outputs(h: int, w: int, runs: int, seed: int = 0) -> torch.Tensor:
    """[runs, 3, h, w] in [0, 1], a smooth image plus per-run noise (as noise_control makes)."""
    base = torch.linspace(0, 1, h * w * 3).reshape(3, h, w)
    gens = [torch.Generator().manual_seed(seed + r) for r in range(runs)]
    return torch.stack([(base + 0.05 * torch.randn(3, h, w, generator=g)).clamp(0, 1) for g in gens])


# ----------------------------------------------------------------------------- the round trip


def test_in_memory_sample_equals_the_stored_png_and_scores_the_same(tmp_path):
    lr, hr = make_pairs(tmp_path / "data", ["img"], lr_size=(32, 40))
    smp = FolderDataset(str(lr), str(hr), 4, "t").samples()[0]
    out = _noise_outputs(128, 160, 4)
    in_memory = list(to_uint8(out))  # what the sink hands to the scorer (one conversion per batch)
    for r, arr in enumerate(in_memory):
        write_png_atomic(tmp_path / f"{r}.png", arr)
    read_back = [read_image(tmp_path / f"{r}.png") for r in range(4)]
    for a, b in zip(in_memory, read_back):
        assert a.dtype == b.dtype == np.uint8 and a.shape == b.shape and np.array_equal(a, b)
    # an array in another memory layout (a permuted view of a C x H x W buffer) with the same values
    permuted = [np.ascontiguousarray(a.transpose(2, 0, 1)).transpose(1, 2, 0) for a in in_memory]
    assert not permuted[0].flags["C_CONTIGUOUS"]
    plan = _plan()
    got = []
    for arrays in (in_memory, read_back, permuted):
        excluded: list = []
        image = ImageScoring(smp, [0, 1, 2, 3], per_image_metrics(plan), 4, torch.device("cpu"), excluded)
        image.add([0, 1], arrays[:2])
        image.add([2, 3], arrays[2:])
        got.append((image.rows, image.finish(), excluded))
    # bit for bit: == on floats, not approx (L-STD's reduction must not depend on the layout)
    assert got[0] == got[1] == got[2]
    assert len(got[0][0]) == 8 and got[0][1] is not None and got[0][1] > 0


def test_png_encoding_is_lossless_8_bit_rgb_decoded_by_pil(tmp_path):
    """encode_png (OpenCV, Paeth filter, run-length strategy) writes 8-bit RGB PNGs that Pillow,
    an independent decoder, reads back bit for bit: noise, flat, gradients, odd sizes."""
    import io

    from PIL import Image

    from benchmark.images import encode_png

    gen = np.random.default_rng(0)
    ramp = np.broadcast_to(np.arange(97, dtype=np.uint8)[None, :, None], (61, 97, 3)).copy()
    cases = [gen.integers(0, 256, (64, 80, 3), dtype=np.uint8), np.full((33, 17, 3), 255, np.uint8),
             np.zeros((1, 1, 3), np.uint8), ramp, to_uint8(_noise_outputs(48, 40, 1)[0])]
    cases.append(cases[0][:, ::2])  # a non-contiguous view
    for arr in cases:
        data = encode_png(arr)
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        assert data[24] == 8 and data[25] == 2  # IHDR: bit depth 8, colour type 2 (RGB)
        with Image.open(io.BytesIO(data)) as img:
            assert img.mode == "RGB"
            assert np.array_equal(np.asarray(img), arr)
        write_png_atomic(tmp_path / "x.png", arr)
        assert np.array_equal(read_image(tmp_path / "x.png"), arr)
    with pytest.raises(ValueError, match="uint8 H x W x 3"):
        encode_png(np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="uint8 H x W x 3"):
        encode_png(np.zeros((4, 4, 3), np.float32))


def test_to_uint8_rounds_half_to_even_clamps_and_converts_a_batch_like_each_image():
    """Hand values: x 255 then round half to even (torch.round), clamp to [0, 1]; a batch gives
    each image's array, C-contiguous as read_image returns it."""
    vals = torch.tensor([0.0, 0.5 / 255, 1.5 / 255, 2.5 / 255, 254.5 / 255, 1.2, -0.3, 1.0], dtype=torch.float64)
    want = [0, 0, 2, 2, 254, 255, 0, 255]
    img = torch.zeros(3, 2, 8, dtype=torch.float64)
    img[1, 1] = vals
    arr = to_uint8(img)
    assert arr.dtype == np.uint8 and arr.shape == (2, 8, 3) and arr.flags["C_CONTIGUOUS"]
    assert arr[1, :, 1].tolist() == want and not arr[..., 0].any() and not arr[0].any()
    batch = _noise_outputs(16, 24, 3)
    arrays = to_uint8(batch)
    assert arrays.shape == (3, 16, 24, 3)
    for r in range(3):
        assert arrays[r].flags["C_CONTIGUOUS"]
        one = to_uint8(batch[r])
        assert np.array_equal(arrays[r], one)
        by_hand = np.round(np.clip(batch[r].permute(1, 2, 0).numpy().astype(np.float64), 0, 1) * 255)
        assert np.array_equal(one, by_hand.astype(np.uint8))  # numpy rounds half to even too
    with pytest.raises(ValueError, match="3 x H x W"):
        to_uint8(torch.zeros(8, 8))


# ----------------------------------------------------------------------------- whole runs


def _outputs(root: Path) -> dict:
    res = json.loads((root / "results.json").read_text())
    timing = res.pop("timing")
    for key in TIMING_FIELDS_THAT_DIFFER:
        timing.pop(key, None)
    res["config"].pop("pipeline")
    return {"scores": (root / "scores.csv").read_bytes(), "lstd": (root / "lstd.csv").read_bytes(),
            "results": res, "timing_rest": timing,
            "pngs": {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.png"))}}


def _run_both(args: list[str], out: Path, root: Path, prepare=None) -> tuple[dict, dict]:
    """The same command sequentially, then pipelined, into the same output folder (so their configs
    differ only in ``pipeline``); ``prepare(root)`` runs before each (e.g. stores part of the work)."""
    results = []
    for mode in ("false", "true"):
        shutil.rmtree(out, ignore_errors=True)
        if prepare is not None:
            prepare()
        res = run_bench(args + [f"pipeline={mode}"])
        assert res["timing"]["pipeline"] is (mode == "true")
        results.append(_outputs(root))
    return results[0], results[1]


@pytest.mark.parametrize("method, seed, runs", [("noise_control", 0, 3), ("noise_control", 7, 3),
                                                ("bicubic", 5, 3)])
def test_pipelined_run_equals_sequential_run_byte_for_byte(tmp_path, pairs, method, seed, runs):
    lr, hr = pairs
    out = tmp_path / "out"
    args = ["dataset=folder", f"dataset.lr_dir={lr}", f"dataset.hr_dir={hr}", f"output_dir={out}",
            "metrics=[psnr,ssim]", "device=cpu", f"method={method}", f"seed={seed}", f"runs={runs}", "batch_size=2"]
    seq, pipe = _run_both(args, out, folder_dir(out, lr, hr) / method)
    assert seq == pipe and pipe["results"]["scoring_device"] == "cpu"
    assert len(pipe["pngs"]) == 3 * (runs if method == "noise_control" else 1)
    scores = pd.read_csv(folder_dir(out, lr, hr) / method / "scores.csv")
    assert sorted(set(scores["seed"])) == list(range(seed, seed + (runs if method == "noise_control" else 1)))


def test_pipelined_run_equals_sequential_run_on_the_demo_set(tmp_path):
    out = tmp_path / "out"
    args = ["dataset=demo", f"output_dir={out}", "metrics=[psnr,ssim]", "device=cpu", "runs=2", "seed=3"]
    seq, pipe = _run_both(args, out, out / "demo" / "noise_control")
    assert seq == pipe and len(pipe["pngs"]) == 12


def test_resumed_pipelined_run_equals_uninterrupted_sequential_run(tmp_path, pairs):
    """Part of the samples stored before: img_a complete (scored from disk), img_b with one run
    missing (from disk after generation), img_c absent (streamed from memory)."""
    lr, hr = pairs
    out = tmp_path / "out"
    root = folder_dir(out, lr, hr) / "noise_control"
    args = ["dataset=folder", f"dataset.lr_dir={lr}", f"dataset.hr_dir={hr}", f"output_dir={out}",
            "metrics=[psnr,ssim]", "device=cpu", "method=noise_control", "seed=2", "runs=3", "batch_size=2"]
    run_bench(args + ["pipeline=false"])
    ref = _outputs(root)
    keep = tmp_path / "partial"
    shutil.copytree(root / "samples", keep)
    for p in [keep / "sample01" / "img_b.png", *keep.glob("sample*/img_c.png")]:
        p.unlink()

    def prepare():
        shutil.copytree(keep, root / "samples")
        shutil.copy(tmp_path / "manifest.json", root / "manifest.json")

    shutil.copy(root / "manifest.json", tmp_path / "manifest.json")
    seq, pipe = _run_both(args, out, root, prepare)
    for got in (seq, pipe):
        assert got["timing_rest"]["image_runs_generated_now"] == 4
        got["timing_rest"] = ref["timing_rest"] = None  # timing.json was not kept: counts only this invocation
    assert seq == pipe == ref


# ----------------------------------------------------------------------------- the streaming scorer


def _folder(tmp_path, ids=("img_a", "img_b", "img_c")):
    lr, hr = make_pairs(tmp_path / "data", list(ids), lr_size=(16, 20))
    return FolderDataset(str(lr), str(hr), 4, "t").samples()


class _Source:
    """A minimal sample source: noise around bicubic, stored image-major (SRMethod's order) or run-major,
    optionally storing run 0 of the first image again after its image was complete."""

    name, scale, stochastic, seeded = "src", 4, True, True

    def __init__(self, order: str = "image", replace: bool = False) -> None:
        self.order, self.replace = order, replace

    def stored_current(self, store, sample_id, run):
        return True

    def produce(self, todo, sink):
        from benchmark.images import to_tensor

        from methods.bicubic import bicubic_upscale

        def one(smp, r, bump=0.0):
            lr = to_tensor(read_image(smp.lr_path)).unsqueeze(0)
            g = torch.Generator().manual_seed(sink.seed(r))
            up = bicubic_upscale(lr, 4)
            out = (up + 0.05 * torch.randn(up.shape, generator=g) + bump).clamp(0, 1)
            sink.put_batch(smp, [r], out, 0.0)

        pairs = [(s, r) for s, runs in todo.by_image() for r in runs]
        if self.order == "run":
            pairs.sort(key=lambda p: (p[1], todo.samples.index(p[0])))
        for smp, r in pairs:
            one(smp, r, bump=0.3 if self.replace and (smp.id, r) == (todo.samples[0].id, 0) else 0.0)
        if self.replace:  # the right sample, replacing the first one after its image was scored
            one(todo.samples[0], 0)


@pytest.mark.parametrize("order, replace", [("image", False), ("run", False), ("image", True)])
def test_streamed_scores_equal_scores_of_the_stored_samples(tmp_path, order, replace):
    """runs=5 with chunks of 2 runs ([0,1], [2,3], [4]): several chunks per image, L-STD across them;
    a run-major source and a replaced sample fall back to the stored files, with the same result."""
    samples = _folder(tmp_path)
    runs, seeds, device = 5, list(range(10, 15)), torch.device("cpu")
    store = Store(tmp_path / "out", "t", "src")
    plan = _plan()
    scorer = StreamScorer(samples, runs, seeds, plan, 4, device, chunk=2)
    generate(_Source(order, replace), samples, store, runs, 10, 2, device, pipeline=True, scorer=scorer)
    streamed = scorer.streamed_images
    got, got_lstd = scorer.finish(store)
    ref_plan = _plan()
    ref, ref_lstd = score(samples, store, runs, seeds, ref_plan, 4, device, chunk=2)
    pd.testing.assert_frame_equal(got, ref, check_exact=True)
    pd.testing.assert_frame_equal(got_lstd, ref_lstd, check_exact=True)
    assert plan.excluded == ref_plan.excluded
    assert len(got) == 3 * runs * 2 and got_lstd["lstd"].notna().all()
    # image-major: every image streamed from memory; run-major: img_a and img_b are left unfinished when
    # the next image's run 0 arrives (scored from disk), img_c alone keeps gathering and is streamed;
    # a replaced sample: its image counted as streamed when complete, then dropped to the stored file
    assert streamed == {("image", False): 3, ("run", False): 1, ("image", True): 3}[(order, replace)]
    assert sorted(scorer._results) == {("image", False): ["img_a", "img_b", "img_c"], ("run", False): ["img_c"],
                                       ("image", True): ["img_b", "img_c"]}[(order, replace)]


def test_a_failure_in_the_scorer_thread_reaches_the_main_thread(tmp_path):
    samples = _folder(tmp_path, ["img_a"])

    class Boom:
        def __call__(self, sr, hr=None):
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")  # not an input problem: stops the run

    spec = build_scorers(["psnr"], {}, torch.device("cpu"), 4)["psnr"][0]
    plan = MetricPlan({"psnr": (spec, Boom())}, {})
    store = Store(tmp_path / "out", "t", "src")
    scorer = StreamScorer(samples, 2, [0, 1], plan, 4, torch.device("cpu"))
    with pytest.raises(torch.OutOfMemoryError, match="simulated"):
        generate(_Source(), samples, store, 2, 0, 2, torch.device("cpu"), pipeline=True, scorer=scorer)
    scorer.abort()


def test_abort_returns_only_once_the_scorer_thread_has_ended(tmp_path):
    """Ctrl-C during a pipelined run: ``abort`` waits for the chunk being scored. A scorer thread still
    inside torch when the interpreter exits aborts the process ("terminate called without an active
    exception", exit 134) instead of srbench's exit 130 (seen 3 of 3 times on the demo set, runs=200)."""
    import threading
    import time

    samples = _folder(tmp_path, ["img_a"])
    started, release = threading.Event(), threading.Event()

    class Busy:  # stands for a metric still computing when Ctrl-C arrives
        def __call__(self, sr, hr=None):
            started.set()
            release.wait(10)
            return torch.zeros(sr.shape[0], dtype=torch.float64)

    spec = build_scorers(["psnr"], {}, torch.device("cpu"), 4)["psnr"][0]
    scorer = StreamScorer(samples, 2, [0, 1], MetricPlan({"psnr": (spec, Busy())}, {}), 4, torch.device("cpu"))
    scorer.expect({"img_a": [0, 1]})
    hr = read_image(samples[0].hr_path)
    scorer(samples[0], 0, hr)
    scorer(samples[0], 1, hr)  # the image's chunk is handed over: the thread starts scoring it
    assert started.wait(10)
    timer = threading.Timer(0.5, release.set)
    timer.start()
    t0 = time.perf_counter()
    scorer.abort()
    assert not scorer._thread.is_alive() and time.perf_counter() - t0 >= 0.4
    timer.join()


# ----------------------------------------------------------------------------- the background writer


class _Named:
    name, scale = "m", 1


def _sink(tmp_path, timing, **kw) -> SampleSink:
    samples = [_sample(i) for i in range(5)]
    return SampleSink(Store(tmp_path, "d", "m"), _Named(), 0, timing, 0, samples=samples, **kw)


def _sample(i: int):
    from benchmark.data import Sample

    return Sample(f"im{i}", Path(f"/nonexistent/im{i}.png"), None, (8, 8))


def _slow_writes(monkeypatch, fail_at: int | None = None) -> list[Path]:
    import time

    real, written = sink_mod.write_png_atomic, []

    def slow(path, arr):
        time.sleep(0.03)  # the main thread is far ahead of the writer
        if fail_at is not None and len(written) + 1 == fail_at:
            raise OutputWriteError(28, f"cannot write {path}: No space left on device (simulated)")
        real(path, arr)
        written.append(path)

    monkeypatch.setattr(sink_mod, "write_png_atomic", slow)
    return written


def test_close_writes_every_queued_sample_and_counts_only_written_ones(tmp_path, monkeypatch):
    written = _slow_writes(monkeypatch)
    timing: dict = {}
    sink = _sink(tmp_path, timing, write_queue=8)
    arrays = [np.full((8, 8, 3), 40 * i, np.uint8) for i in range(5)]
    for i, arr in enumerate(arrays):
        sink.put_array(f"im{i}", 0, arr, seconds=0.5)
    assert len(written) < 5  # still queued: put_array did not wait for the writes
    arrays[4][:] = 255  # a source reusing its buffer after put_array must not change what is stored
    sink.close()
    assert len(written) == 5 and timing["image_runs"] == 5 and timing["seconds"] == 2.5
    for i in range(5):
        assert np.array_equal(read_image(tmp_path / "d" / "m" / "samples" / "sample00" / f"im{i}.png"),
                              np.full((8, 8, 3), 40 * i, np.uint8))


def test_failed_background_write_is_raised_naming_the_file_and_stops_later_writes(tmp_path, monkeypatch):
    written = _slow_writes(monkeypatch, fail_at=3)
    timing: dict = {}
    sink = _sink(tmp_path, timing, write_queue=2)
    with pytest.raises(OutputWriteError, match=r"cannot write .*sample00/im2\.png: No space left"):
        for i in range(5):
            sink.put_array(f"im{i}", 0, np.zeros((8, 8, 3), np.uint8))
        sink.close()
    sink.close(raise_errors=False)
    assert [p.name for p in written] == ["im0.png", "im1.png"]
    assert sorted(p.name for p in (tmp_path / "d" / "m" / "samples" / "sample00").iterdir()) == ["im0.png", "im1.png"]
    assert timing["image_runs"] == 2  # counted as written, never as queued


def test_sample_path_waits_for_queued_writes(tmp_path, monkeypatch):
    """A source reading back a stored sample (external's seed check) sees what it stored."""
    _slow_writes(monkeypatch)
    sink = _sink(tmp_path, {}, write_queue=8)
    sink.put_array("im0", 0, np.full((8, 8, 3), 7, np.uint8))
    assert read_image(sink.sample_path("im0", 0))[0, 0, 0] == 7
    sink.close()


def test_temporaries_of_a_killed_write_are_removed_only_for_this_runs_images(tmp_path):
    from benchmark.sink import remove_stale_temporaries

    store = Store(tmp_path, "d", "m")
    folder = store.sample_dir(1)
    folder.mkdir(parents=True)
    ours = folder / ".im.v3.abcd1234.png.tmp"  # image id "im.v3" (ids may hold dots)
    other = folder / ".other.abcd1234.png.tmp"  # an image of another shard, maybe being written now
    final = folder / "im.v3.png"
    for p in (ours, other, final):
        p.write_bytes(b"x")
    from benchmark.data import Sample

    removed = remove_stale_temporaries([Sample("im.v3", Path("x.png"), None, (4, 4))], store, 2)
    assert removed == [ours] and not ours.exists() and other.exists() and final.exists()


# ----------------------------------------------------------------------------- scoring device


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU: scores on cuda vs cpu (issue 17)")
def test_scores_on_the_gpu_equal_the_cpu_scores(tmp_path):
    """Issue 17: per-image PSNR/SSIM/NIQE and L-STD computed on a GPU equal the CPU values to 1e-6."""
    from conftest import NIQE_NPZ

    lr, hr = make_pairs(tmp_path / "data", ["img"], lr_size=(32, 40))
    smp = FolderDataset(str(lr), str(hr), 4, "t").samples()[0]
    arrays = [to_uint8(o) for o in _noise_outputs(128, 160, 4)]
    names = ["psnr", "ssim"] + (["niqe"] if NIQE_NPZ.exists() else [])
    options = {"niqe": {"params_path": str(NIQE_NPZ)}} if NIQE_NPZ.exists() else {}
    got = {}
    for dev in ("cpu", "cuda"):
        device = torch.device(dev)
        plan = MetricPlan(build_scorers(names, options, device, 4), {})
        excluded: list = []
        image = ImageScoring(smp, [0, 1, 2, 3], per_image_metrics(plan), 4, device, excluded)
        image.add([0, 1, 2, 3], arrays)
        got[dev] = (image.rows, image.finish(), excluded)
    (cpu_rows, cpu_lstd, cpu_ex), (gpu_rows, gpu_lstd, gpu_ex) = got["cpu"], got["cuda"]
    assert cpu_ex == gpu_ex == [] and len(cpu_rows) == len(gpu_rows) == 4 * len(names)
    for a, b in zip(cpu_rows, gpu_rows):
        assert a[:4] == b[:4]  # image, run, seed, metric
        assert abs(a[4] - b[4]) <= 1e-6 * max(1.0, abs(a[4])), (a, b)
    assert abs(cpu_lstd - gpu_lstd) <= 1e-6
