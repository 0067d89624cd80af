"""Fixed results.json contents for the report and gate tests (values chosen by hand, see test_report.py)."""

from __future__ import annotations

import copy
import json
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

PROTOCOL_METRICS = {"psnr": {}, "ssim": {}, "lpips": {}, "niqe": {"params_path": None, "optional": True},
                    "clipiqa": {"optional": True}, "fid": {}}


def _m(mean: float, gstd: float | None, hib: bool, kind: str = "FR") -> dict[str, Any]:
    return {"mean": mean, "gstd": gstd, "higher_is_better": hib, "kind": kind, "num_images": 20}


def _fid(mean: float, std: float | None) -> dict[str, Any]:
    return {"mean": mean, "gstd": None, "std_over_runs": std, "higher_is_better": False, "kind": "set"}


def _result(dataset: str, method: str, stochastic: bool, metrics: dict, lstd: float | None,
            skipped: dict | None = None, sec: float | None = None, params: int | None = None) -> dict:
    runs = 10 if stochastic else 1
    return {"method": method, "dataset": dataset, "runs": runs, "seed": 0, "crop_border": 4,
            "stochastic": stochastic, "num_images": 20, "metrics": metrics, "skipped": skipped or {},
            "lstd": lstd,
            "timing": {"generation_seconds": 1.0, "scoring_seconds": 1.0, "image_runs_timed": 20 * runs,
                       "seconds_per_image_run": sec, "parameters": params},
            "config": {"runs": runs, "seed": 0, "crop_border": 4, "metrics": PROTOCOL_METRICS,
                       "dataset": {"_target_": "benchmark.data.FolderDataset", "lr_dir": "/nonexistent/lr"}},
            "versions": {}}


def fixed_results() -> list[dict]:
    """Two data sets, one deterministic and two stochastic methods; ties on purpose (see the golden text)."""
    realsr = [
        _result("RealSR", "bsrgan", False, {
            "psnr": _m(24.5812, None, True), "ssim": _m(0.7351, None, True), "lpips": _m(0.2391, None, False),
            "niqe": _m(5.6583, None, False, "NR"), "fid": _fid(141.2875, None)}, None,
            skipped={"clipiqa": "missing clipiqa weights"}, sec=0.0123, params=16697987),
        _result("RealSR", "stable_sr", True, {
            "psnr": _m(24.6549, 0.8012, True), "ssim": _m(0.7079, 0.0121, True), "lpips": _m(0.3091, 0.0188, False),
            "niqe": _m(5.3423, 0.2991, False, "NR"), "clipiqa": _m(0.6234, 0.0312, True, "NR"),
            "fid": _fid(128.5001, 1.2)}, 0.0442),
        _result("RealSR", "ccsr", True, {
            "psnr": _m(24.6451, 0.2853, True), "ssim": _m(0.73514, 0.0040, True), "lpips": _m(0.2870, 0.0065, False),
            "niqe": _m(5.2411, 0.1000, False, "NR"), "clipiqa": _m(0.6234, 0.0089, True, "NR"),
            "fid": _fid(118.0, 0.8)}, 0.0099, sec=2.3456, params=1_500_000_000),
    ]
    drealsr = [
        _result("DRealSR", "bsrgan", False, {"psnr": _m(26.7, None, True), "lpips": _m(0.2858, None, False)},
                None, sec=0.0131, params=16697987),
        _result("DRealSR", "ccsr", True, {"psnr": _m(28.1234, 0.1499, True), "lpips": _m(0.2858, 0.0101, False)},
                0.0123, sec=2.5, params=1_500_000_000),
    ]
    return realsr + drealsr


def write_results(root: Path, results: list[dict] | None = None, content_hash: str = "abc123") -> Path:
    """Write results.json (and a manifest.json with the data set content hash) in the Store layout."""
    for res in copy.deepcopy(results if results is not None else fixed_results()):
        folder = root / res["dataset"] / res["method"]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "results.json").write_text(json.dumps(res, indent=2))
        (folder / "manifest.json").write_text(json.dumps(
            {"generation": {"dataset": {"name": res["dataset"], "content_hash": content_hash}}}))
    return root


# ----------------------------------------------------------------------------- reading figures back


def figure_summary(fig: Any) -> dict[str, Any]:
    """What a matplotlib figure draws, read from its artists before it is saved and closed:
    per axes its title, labels, tick labels, the offsets of every collection and the data of
    every line and image that carry a ``gid``; the legend texts and every text of the figure."""
    import numpy as np

    axes = []
    texts: list[str] = []
    for ax in fig.axes:
        a = {"title": ax.get_title(), "xlabel": ax.get_xlabel(), "ylabel": ax.get_ylabel(),
             "xticks": [t.get_text() for t in ax.get_xticklabels()],
             "collections": {c.get_gid(): np.asarray(c.get_offsets(), dtype=float).copy()
                             for c in ax.collections if c.get_gid()},
             "lines": {ln.get_gid(): np.asarray(ln.get_ydata(), dtype=float).copy() for ln in ax.lines if ln.get_gid()},
             "images": {im.get_gid(): np.asarray(im.get_array()).copy() for im in ax.images},
             "n_images": len(ax.images), "axis_on": ax.axison}
        axes.append(a)
        texts += [a["title"], a["xlabel"], a["ylabel"], *a["xticks"]]
    legends = [lg for lg in list(fig.legends) + [ax.get_legend() for ax in fig.axes] if lg is not None]
    legend_texts = [t.get_text() for lg in legends for t in lg.get_texts()]
    suptitle = fig._suptitle.get_text() if getattr(fig, "_suptitle", None) is not None else ""
    texts += legend_texts + [suptitle]
    return {"axes": axes, "legend": legend_texts, "suptitle": suptitle, "texts": [t for t in texts if t]}


@contextmanager
def recorded_figures() -> Iterator[dict[str, dict[str, Any]]]:
    """{file stem: figure_summary} of every figure the report writes through plots.save meanwhile."""
    from benchmark.report import plots

    seen: dict[str, dict[str, Any]] = {}
    real = plots.save

    def spy(fig, out_dir, stem):
        seen[stem] = figure_summary(fig)
        return real(fig, out_dir, stem)

    plots.save = spy
    try:
        yield seen
    finally:
        plots.save = real


def stored_results(root: Path) -> dict[tuple[str, str], Path]:
    """{(dataset, method): result folder} of every results.json below root, read from the files
    themselves (whatever the folders are called)."""
    out = {}
    for p in sorted(Path(root).rglob("results.json")):
        r = json.loads(p.read_text())
        out[(r["dataset"], r["method"])] = p.parent
    return out
