"""Fast in-process tests of the paper tables (benchmark/report/tables.py) on hand-made tidy frames.

Every expected cell, rank, mark and note below is worked out by hand from the frame of the test
and printed with Python's own formatting (``f"{v:.2f}"``), not read back from the module. They
cover what the golden-text tests of test_report.py do not reach: methods with different numbers
of runs (G-STD/L-STD not ranked, per data set), the significance marking given a verdict,
intervals and their digits, the notes under the table (excluded and capped values, metrics not
computed, the stats notes), the caption's N and seed range, metric labels and decimals from the
specs, the timing table, and the Markdown/LaTeX/CSV rendering of ties and intervals.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from benchmark.metrics import METRICS, MetricSpec
from benchmark.report import tables
from benchmark.report.collect import LSTD, frame
from benchmark.report.names import metric_labels
from benchmark.report.significance import SEPARATED, TIED, Verdict
from benchmark.stats import StatsConfig

NAN = math.nan
STATS = StatsConfig(resamples=300, seed=3, level=0.95)


def row(ds: str, method: str, metric: str, mean: float, gstd: float = NAN, *, runs: int = 1, seed: int = 0,
        status: str = "ok", **extra) -> dict:
    """One tidy row as benchmark.report.collect.rows_of writes it (kind/direction from the spec)."""
    if metric == LSTD:
        kind, hib = "pixel", False
    elif metric in METRICS:
        kind, hib = METRICS.get(metric).kind, METRICS.get(metric).higher_is_better
    else:
        kind, hib = extra.pop("kind", "FR"), extra.pop("higher_is_better", True)
    base = {"dataset": ds, "method": method, "metric": metric, "kind": kind, "higher_is_better": hib,
            "status": status, "mean": mean, "gstd": gstd, "runs": runs, "seed": seed, "stochastic": runs > 1,
            "path": None, "num_values": None, "excluded": 0, "num_capped": None, "cap": None, "note": None,
            "ci_level": None}
    base.update(extra)
    return base


def cells(t: tables.Table, ds: str, metric: str) -> list[tables.Cell]:
    g = next(g for g in t.groups if g.dataset == ds)
    return next(r for r in g.rows if r.metric == metric).cells


def ranks(cs: list[tables.Cell], part: str = "mean") -> list[int | None]:
    return [None if getattr(c, part) is None else getattr(c, part).rank for c in cs]


# ----------------------------------------------------------------------------- ranking and cells


def test_cells_and_ranks_of_a_hand_made_table():
    """det (deterministic), s_a and s_b (4 runs each) on one data set; best/second by hand."""
    df = frame([
        row("d", "det", "psnr", 27.004), row("d", "det", "lpips", 0.30), row("d", "det", "fid", 50.0),
        row("d", "det", LSTD, NAN, status="none"),
        row("d", "s_a", "psnr", 27.0049, 0.31234, runs=4), row("d", "s_a", "lpips", 0.25, 0.0125, runs=4),
        row("d", "s_a", "fid", 40.0, runs=4), row("d", "s_a", LSTD, 0.02, runs=4),
        row("d", "s_b", "psnr", 26.5, 0.2, runs=4), row("d", "s_b", "lpips", 0.2, 0.0125, runs=4),
        row("d", "s_b", "fid", 45.0, runs=4), row("d", "s_b", LSTD, 0.03, runs=4),
    ])
    t = tables.build(df)
    assert t.methods == ["det", "s_a", "s_b"]
    assert [r.metric for r in t.groups[0].rows] == ["psnr", "lpips", "fid", LSTD]
    assert [r.higher_is_better for r in t.groups[0].rows] == [True, False, False, False]
    psnr = cells(t, "d", "psnr")
    # 27.004 and 27.0049 both print 27.00: tied best; 26.50 second
    assert [c.plain() for c in psnr] == [f"{27.004:.2f}", f"{27.0049:.2f}/{0.31234:.4f}", f"{26.5:.2f}/{0.2:.4f}"]
    assert ranks(psnr) == [1, 1, 2]
    assert ranks(psnr, "gstd") == [None, 2, 1]  # G-STD: lower is better; det has no G-STD part
    lpips = cells(t, "d", "lpips")
    assert ranks(lpips) == [None, 2, 1] and ranks(lpips, "gstd") == [None, 1, 1]  # equal G-STDs tie
    fid = cells(t, "d", "fid")
    assert [c.plain() for c in fid] == ["50.00", "40.00", "45.00"] and all(c.gstd is None for c in fid)
    assert ranks(fid) == [None, 1, 2]
    lstd = cells(t, "d", LSTD)
    assert [c.plain() for c in lstd] == ["-", "0.0200", "0.0300"] and ranks(lstd) == [None, 1, 2]
    assert t.untested == [] and t.stats_note is None and t.tie_note is None


def test_stability_is_ranked_only_between_equal_numbers_of_runs_per_data_set():
    """A: s_a 3 runs, s_b 5 runs (G-STD and L-STD not ranked there); B: every method 5 runs (ranked)."""
    rows = []
    for ds, runs in (("A", {"s_a": 3, "s_b": 5}), ("B", {"s_a": 5, "s_b": 5, "s_c": 5})):
        for i, (m, n) in enumerate(runs.items()):
            rows += [row(ds, m, "psnr", 25.0 + i, 0.1 * (i + 1), runs=n), row(ds, m, LSTD, 0.01 * (i + 1), runs=n)]
    df = frame(rows)
    methods = ["s_a", "s_b", "s_c"]
    assert tables.mixed_runs(df, "A", methods) == {"s_a": 3, "s_b": 5}
    assert tables.mixed_runs(df, "B", methods) == {}
    t = tables.build(df)
    assert t.methods == methods
    # A: the means are ranked (25.00 < 26.00, higher is better), G-STD and L-STD are not
    assert ranks(cells(t, "A", "psnr")) == [2, 1, None]
    assert ranks(cells(t, "A", "psnr"), "gstd") == [None, None, None]
    assert ranks(cells(t, "A", LSTD)) == [None, None, None]
    assert [c.plain() for c in cells(t, "A", "psnr")] == ["25.00/0.1000", "26.00/0.2000", "n/a"]
    # B: same N everywhere, everything ranked
    assert ranks(cells(t, "B", "psnr")) == [None, 2, 1]
    assert ranks(cells(t, "B", "psnr"), "gstd") == [1, 2, None]
    assert ranks(cells(t, "B", LSTD)) == [1, 2, None]
    assert t.groups[0].notes == [
        "G-STD and L-STD not ranked: the stochastic methods have different numbers of runs (s_a 3, s_b 5); a "
        "population std over fewer runs is biased low (about sqrt((N-1)/N) of the spread), so rerun them with the "
        "same runs= to compare their stability"]
    assert t.groups[1].notes == []
    # the caption names each method's N, per data set where it differs
    assert t.caption == ("Quality and stability. Stochastic methods: mean/G-STD over the runs per image of each "
                         "method: s_a 3 on A and 5 on B, s_b 5, s_c 5; deterministic methods: mean of one run. "
                         "FID-like set metrics: mean over runs. Best and second best of each row in red and blue.")


def test_caption_seed_range_and_n():
    def caption(rows, methods=None):
        return tables.build(frame(rows), methods=methods).caption

    head = "Quality and stability. Stochastic methods: mean/G-STD over "
    tail = ("; deterministic methods: mean of one run. FID-like set metrics: mean over runs. "
            "Best and second best of each row in red and blue.")
    one = [row("d", "det", "psnr", 20.0, seed=1), row("d", "s", "psnr", 21.0, 0.1, runs=3, seed=7)]
    assert caption(one) == f"{head}3 runs per image (seeds {7}..{7 + 3 - 1}){tail}"
    # two stochastic methods with different seeds (same N): no single seed range to print
    two = one + [row("d", "t", "psnr", 22.0, 0.1, runs=3, seed=5)]
    assert caption(two) == f"{head}3 runs per image{tail}"
    # ... unless the other one is left out of the table
    assert caption(two, ["det", "s"]) == f"{head}3 runs per image (seeds 7..9){tail}"
    # deterministic methods only: no N to name
    assert caption([row("d", "det", "psnr", 20.0)]) == f"{head}N runs per image{tail}"


# ----------------------------------------------------------------------------- notes under the table


def test_notes_for_excluded_capped_and_not_computed_values():
    df = frame([
        # a method left out of the table comes first: its notes must not stop the others
        row("d", "other", "psnr", 30.0, 0.1, runs=2, excluded=5, num_values=15, num_capped=4, cap=80.0),
        row("d", "a", "psnr", 30.0, 0.1, runs=2, excluded=2, num_values=38, num_capped=3, cap=80.0),
        row("d", "a", "niqe", 5.0, 0.1, runs=2, excluded=1, num_values=39),
        row("d", "b", "psnr", 31.0, 0.1, runs=2, excluded=0, num_values=40, num_capped=1, cap=80.0),
        row("d", "c", "psnr", 29.0, 0.1, runs=2, num_values=40, num_capped=0, cap=80.0),
        row("d", "a", "lpips", NAN, status="empty", runs=2, note="no image had the inputs this metric needs"),
        row("d", "b", "lpips", NAN, status="empty", runs=2, note="no image had the inputs this metric needs"),
        row("d", "c", "clipiqa", NAN, status="skipped", runs=2, note="missing  clipiqa\nweights"),
    ])
    t = tables.build(df, methods=["a", "b", "c"])
    assert t.groups[0].notes == [
        "LPIPS not computed for a, b: no image had the inputs this metric needs",
        "CLIPIQA not computed for c: missing clipiqa weights",  # whitespace of the reason collapsed
        f"PSNR of a averaged over 38 of {38 + 2} values: 2 excluded (metric undefined on them; listed in "
        f"results.json)",
        "PSNR of a: 3 value(s) at the cap 80 (identical images; pyiqa's eps, see docs/metrics.md)",
        f"NIQE of a averaged over 39 of {39 + 1} values: 1 excluded (metric undefined on them; listed in "
        f"results.json)",
        "PSNR of b: 1 value(s) at the cap 80 (identical images; pyiqa's eps, see docs/metrics.md)",
    ]
    # a hand-written results.json without the value count: no invented "0 of k"
    hand = frame([row("d", "a", "niqe", 5.0, 0.1, runs=2, excluded=3)])
    assert tables.build(hand, methods=["a"]).groups[0].notes == [
        "NIQE of a: 3 value(s) excluded from the mean (metric undefined on them; listed in results.json)"]
    # ... also when another method's count makes the column numeric (NaN, not None, for this one)
    mixed = frame([row("d", "a", "niqe", 5.0, 0.1, runs=2, excluded=3),
                   row("d", "b", "niqe", 6.0, 0.1, runs=2, excluded=1, num_values=39)])
    assert pd.isna(mixed.loc[0, "num_values"]) and mixed.loc[0, "num_values"] is not None
    assert tables.build(mixed, methods=["a", "b"]).groups[0].notes == [
        "NIQE of a: 3 value(s) excluded from the mean (metric undefined on them; listed in results.json)",
        f"NIQE of b averaged over 39 of {39 + 1} values: 1 excluded (metric undefined on them; listed in "
        f"results.json)"]
    # metrics without any value get no row (only the note); "other" gets no column
    assert [r.metric for r in t.groups[0].rows] == ["psnr", "niqe"]
    assert [c.plain() for c in cells(t, "d", "niqe")] == ["5.00/0.1000", "n/a", "n/a"]


# ----------------------------------------------------------------------------- intervals and significance


def _with_intervals(**ci_level) -> pd.DataFrame:
    lvl = ci_level.get("level", 0.95)
    return frame([
        row("d", "a", "psnr", 27.0, 0.5, runs=3, mean_low=26.4321, mean_high=27.5678, gstd_low=0.41234,
            gstd_high=0.56789, ci_level=lvl),
        row("d", "b", "psnr", 26.0, 0.25, runs=3, mean_low=NAN, mean_high=26.5, gstd_low=0.2, gstd_high=NAN,
            ci_level=lvl),
        row("d", "a", LSTD, 0.02, runs=3, mean_low=0.01234, mean_high=0.03456, ci_level=lvl),
        row("d", "b", LSTD, 0.03, runs=3, mean_low=0.025, mean_high=NAN, ci_level=ci_level.get("other", lvl)),
    ])


def test_intervals_print_with_the_digits_of_their_value_and_only_when_asked():
    df = _with_intervals()
    t = tables.build(df, stats_cfg=STATS)
    a, b = cells(t, "d", "psnr")
    assert a.mean.ci == (f"{26.4321:.2f}", f"{27.5678:.2f}") and a.gstd.ci == (f"{0.41234:.4f}", f"{0.56789:.4f}")
    assert b.mean.ci is None and b.gstd.ci is None  # half an interval is no interval
    la, lb = cells(t, "d", LSTD)
    assert la.mean.ci == (f"{0.01234:.4f}", f"{0.03456:.4f}") and lb.mean.ci is None
    assert a.plain() == "27.00 [26.43, 27.57]/0.5000 [0.4123, 0.5679]"
    # no scores.csv beside these rows: best vs second is untested, the plain marking stays, and why is listed
    assert ranks([a, b]) == [1, 2] and ranks([a, b], "gstd") == [2, 1] and ranks([la, lb]) == [1, 2]
    why = "no per-image scores of {} on d (scores.csv/lstd.csv)"  # the best of the part is looked up first
    assert t.untested == [f"d PSNR: {why.format('a')}", f"d PSNR G-STD: {why.format('b')}",
                          f"d L-STD: {why.format('a')}"]
    assert t.stats_note == ("Brackets: 95% confidence intervals (bootstrap over images, FID over runs; BCa where "
                            "defined, else percentile).")
    # stats disabled (or not given): the same frame prints no interval at all
    for cfg in (None, StatsConfig(enabled=False)):
        off = tables.build(df, stats_cfg=cfg)
        parts = [p for g in off.groups for r in g.rows for c in r.cells for p in (c.mean, c.gstd) if p]
        assert all(p.ci is None for p in parts) and off.untested == [] and off.stats_note is None


def test_bracket_note_levels_and_frames_without_interval_columns():
    two = tables.build(_with_intervals(level=0.9, other=0.95), stats_cfg=STATS)
    assert two.stats_note.startswith("Brackets: 90%/95% confidence intervals (")
    # a frame without the ci_level column (an older tidy frame): the level is "stored"
    no_level = tables.build(_with_intervals().drop(columns=["ci_level"]), stats_cfg=STATS)
    assert no_level.stats_note.startswith("Brackets: stored confidence intervals (")
    # without the interval columns at all: no interval, no bracket note, no error
    bare = _with_intervals().drop(columns=["mean_low", "mean_high", "gstd_low", "gstd_high"])
    t = tables.build(bare, stats_cfg=STATS)
    assert all(c.mean.ci is None and (c.gstd is None or c.gstd.ci is None) for r in t.groups[0].rows for c in r.cells)
    assert t.stats_note is None


def test_interval_ends_missing_or_none():
    from types import SimpleNamespace as NS

    assert tables._ci(NS(mean_low=1.234, mean_high=2.345), "mean", 2) == ("1.23", "2.35")
    for lo, hi in ((None, 2.0), (1.0, None), (NAN, 2.0), (1.0, NAN), (None, None)):
        assert tables._ci(NS(mean_low=lo, mean_high=hi), "mean", 2) is None, (lo, hi)
    assert tables._ci(NS(), "gstd", 4) is None  # columns absent


@pytest.fixture
def verdicts(monkeypatch):
    """best_vs_second replaced by a recorder answering the status set in ``answer``."""
    calls, answer = [], {"status": TIED}

    def fake(df, dataset, metric, part, best, second, higher_is_better, cfg):
        calls.append((dataset, metric, part, list(best), list(second), higher_is_better))
        return Verdict(answer["status"], why="by hand")

    monkeypatch.setattr(tables, "best_vs_second", fake)
    return calls, answer


def test_a_tie_verdict_uncolours_best_and_second_only(verdicts):
    calls, answer = verdicts
    df = frame([
        row("d", "det", "psnr", 24.0), row("d", "det", "ssim", 0.7),
        row("d", "a", "psnr", 26.0, 0.3, runs=3), row("d", "a", "ssim", 0.8, 0.01, runs=3),
        row("d", "b", "psnr", 25.0, 0.2, runs=3), row("d", "b", "ssim", 0.8, 0.01, runs=3),
    ])
    t = tables.build(df, stats_cfg=STATS)
    det, a, b = cells(t, "d", "psnr")
    # by hand: means 26 (a) > 25 (b) > 24 (det); G-STD 0.2 (b) < 0.3 (a)
    assert calls[:2] == [("d", "psnr", "mean", ["a"], ["b"], True), ("d", "psnr", "gstd", ["b"], ["a"], False)]
    assert [(c.mean.rank, c.mean.tie) for c in (det, a, b)] == [(None, False), (None, True), (None, True)]
    assert [(c.gstd.rank, c.gstd.tie) for c in (a, b)] == [(None, True), (None, True)] and det.gstd is None
    # SSIM: a and b tie as printed (both best, no second) and det is second: tested; the G-STDs all tie: not tested
    assert ("d", "ssim", "mean", ["a", "b"], ["det"], True) in calls
    assert not any(c[1] == "ssim" and c[2] == "gstd" for c in calls)
    assert len(calls) == 3
    assert t.tie_note == ("\u2020 best and second best of the row are not separated at 95%: the difference may come "
                          "from which images and seeds were drawn.")
    assert t.stats_note == ("Best and second best are coloured only where the best beats the second at 95% "
                            "(paired bootstrap over images, 300 resamples, seed 3; FID: over runs).")
    md = tables.to_markdown(t)
    assert "| d | PSNR ↑ | 24.00 | 26.00†/0.3000† | 25.00†/0.2000† |" in md
    # separated: the plain colours stay, no dagger, no tie note
    answer["status"] = SEPARATED
    t = tables.build(df, stats_cfg=STATS)
    assert ranks(cells(t, "d", "psnr")) == [None, 1, 2] and not t.has_ties and t.tie_note is None


def test_stats_note_names_the_bracket_level_and_the_test(verdicts):
    _, answer = verdicts
    answer["status"] = SEPARATED
    t = tables.build(_with_intervals(level=0.9), stats_cfg=StatsConfig(resamples=500, seed=11, level=0.99))
    assert t.stats_note == ("Brackets: 90% confidence intervals (bootstrap over images, FID over runs; BCa where "
                            "defined, else percentile). Best and second best are coloured only where the best beats "
                            "the second at 99% (paired bootstrap over images, 500 resamples, seed 11; FID: over runs).")


def test_a_row_whose_values_all_print_the_same_is_not_tested(verdicts):
    calls, _ = verdicts
    df = frame([row("d", "a", "psnr", 26.001, 0.3, runs=3), row("d", "b", "psnr", 25.999, 0.3, runs=3)])
    t = tables.build(df, stats_cfg=STATS)
    assert calls == [] and t.untested == [] and cells(t, "d", "psnr")[0].mean.text == f"{26.001:.2f}" == "26.00"
    assert ranks(cells(t, "d", "psnr")) == [1, 1] and t.groups[0].rows[0].verdicts == {}


# ----------------------------------------------------------------------------- labels, decimals, rows


def test_labels_decimals_and_row_order_come_from_the_specs(monkeypatch):
    spec = MetricSpec("myq", "NR", True, False, "pyiqa", lambda options, device: None, label="MyQ-score",
                      decimals=3, table_row=0)
    monkeypatch.setitem(METRICS._items, "myq", spec)
    assert tables.label("myq") == "MyQ-score" and tables.digits("myq") == 3
    assert tables.label("unknown_metric") == "UNKNOWN_METRIC" and tables.digits("unknown_metric") == 4
    assert tables.label(LSTD) == "L-STD" and tables.digits(LSTD) == 4
    with metric_labels({"psnr": "PSNR-Y"}):
        assert tables.label("psnr") == "PSNR-Y"
    assert tables.label("psnr") == "PSNR"
    df = frame([row("d", "a", "psnr", 25.0), row("d", "a", "unknown_metric", 0.123456, kind="NR",
                                                 higher_is_better=False),
                row("d", "a", "myq", 1.23456)])
    t = tables.build(df)
    g = t.groups[0]
    # table_row 0 puts myq before PSNR; names the registry does not know follow, with 4 decimals
    assert [(r.label, r.cells[0].plain()) for r in g.rows] == [
        ("MyQ-score", f"{1.23456:.3f}"), ("PSNR", "25.00"), ("UNKNOWN_METRIC", f"{0.123456:.4f}")]
    assert g.rows[2].higher_is_better is False


def test_frames_without_the_count_columns_have_no_count_notes():
    """A tidy frame written before ``num_values``/``excluded``/``num_capped``/``cap`` existed."""
    df = frame([row("d", "a", "psnr", 25.0, 0.1, runs=2), row("d", "b", "psnr", 24.0, 0.1, runs=2)])
    t = tables.build(df.drop(columns=["num_values", "excluded", "num_capped", "cap"]))
    assert t.groups[0].notes == [] and ranks(cells(t, "d", "psnr")) == [1, 2]


def test_fixed_point_text():
    assert tables.fmt(0.0, 2) == "0.00" and tables.fmt(-0.004, 2) == "0.00" and tables.fmt(-0.006, 2) == "-0.01"
    assert tables.fmt(1.5, 0) == "2" and tables.fmt(NAN, 3) == tables.MISSING


def test_no_lstd_row_without_lstd_values():
    """A frame with no L-STD row at all (e.g. filtered to some metrics) gets no L-STD row; a frame whose
    L-STD values are all undefined (deterministic methods) gets one of dashes."""
    t = tables.build(frame([row("d", "a", "psnr", 25.0)]))
    assert [r.metric for r in t.groups[0].rows] == ["psnr"]
    t = tables.build(frame([row("d", "a", "psnr", 25.0), row("d", "a", LSTD, NAN, status="none")]))
    assert [r.metric for r in t.groups[0].rows] == ["psnr", LSTD] and t.groups[0].rows[1].cells[0].plain() == "-"


# ----------------------------------------------------------------------------- rendering


def _hand_table() -> tables.Table:
    """A table model built by hand: a tie with an interval, a best and a second with intervals."""
    P = tables.Part
    row_ = tables.Row("psnr", "PSNR", True, [
        tables.Cell(P("1.00", rank=1, ci=("0.90", "1.10")), P("0.1000", rank=2)),
        tables.Cell(P("0.50", tie=True, ci=("0.40", "0.60"))),
        tables.Cell(P("0.70", rank=2), P("0.2000", tie=True)),
    ])
    return tables.Table(["a|b", "c", "d_e"], [tables.Group("set|1", [row_], notes=["x|y"])], "Cap, in red and blue.",
                        stats_note="S.", tie_note="\u2020 T 50%.")


def test_plain_markdown_latex_and_csv_of_marks_and_intervals():
    t = _hand_table()
    c = t.groups[0].rows[0].cells
    assert [x.plain() for x in c] == ["1.00 [0.90, 1.10]/0.1000", "0.50\u2020 [0.40, 0.60]", "0.70/0.2000\u2020"]
    assert tables.to_markdown(t) == (
        "| Dataset | Metric | a\\|b | c | d_e |\n"
        "|---|---|:---:|:---:|:---:|\n"
        "| set\\|1 | PSNR ↑ | **1.00** [0.90, 1.10]/_0.1000_ | 0.50\u2020 [0.40, 0.60] | _0.70_/0.2000\u2020 |\n"
        "\n"
        "Cap, in **bold** and _italics_.\n"
        "S.\n"
        "\u2020 T 50%.\n"
        "\n"
        "- set|1: x\\|y\n")
    tex = tables.to_latex(t)
    assert (r"set|1 & PSNR$\uparrow$ & \textcolor{red}{1.00}\,{\scriptsize[0.90, 1.10]}/\textcolor{blue}{0.1000} & "
            r"0.50$^\dagger$\,{\scriptsize[0.40, 0.60]} & \textcolor{blue}{0.70}/0.2000$^\dagger$ \\") in tex
    assert "Datasets & Metrics & a|b & c & d\\_e \\\\\n" in tex
    assert tex.endswith("\\par\\footnotesize S.\n\\par\\footnotesize $^\\dagger$ T 50\\%.\n\\end{table*}\n")
    assert tables.to_csv(t) == ("dataset,metric,direction,a|b,c,d_e\n"
                                "set|1,PSNR,higher,\"1.00 [0.90, 1.10]/0.1000\",\"0.50\u2020 [0.40, 0.60]\","
                                "0.70/0.2000\u2020\n")
    # a table without rows still has its header (one column per method)
    assert tables.to_csv(tables.Table(["a", "b"], [], "")) == "dataset,metric,direction,a,b\n"


# ----------------------------------------------------------------------------- Table 2: timing


def test_timing_table_by_hand():
    df = frame([
        row("R", "det", "psnr", 20.0, seconds_per_image_run=0.0123, parameters=16_697_987),
        row("R", "big", "psnr", 21.0, 0.1, runs=2, seconds_per_image_run=2.3456, parameters=7_000_000_000),
        row("D", "det", "psnr", 20.0, seconds_per_image_run=NAN, parameters=16_697_987),
        row("D", "big", "psnr", 21.0, 0.1, runs=2, seconds_per_image_run=NAN, parameters=7_000_000_000),
    ])
    t = tables.build_timing(df)  # data sets and methods from the frame: D, R; det first
    assert t.methods == ["det", "big"]
    assert t.rows == [("Parameters (M)", [f"{16_697_987 / 1e6:.2f}", f"{7_000_000_000 / 1e6:.2f}"]),
                      ("Runtime on R (s/image-run)", [f"{0.0123:.3f}", f"{2.3456:.3f}"])]
    assert t.rows[0][1] == ["16.70", "7000.00"]
    # a method asked for without results prints n/a
    t2 = tables.build_timing(df, ["R"], ["big", "ghost"])
    assert t2.rows == [("Parameters (M)", ["7000.00", "n/a"]), ("Runtime on R (s/image-run)", ["2.346", "n/a"])]
    assert tables.timing_latex(t2) == (
        "% Generated by `python -m benchmark report`. Needs \\usepackage{booktabs}.\n"
        "\\begin{table}[t]\n\\centering\n"
        "\\caption{Model size and generation time per image and run (from each run's timing).}\n"
        "\\label{tab:srbench-timing}\n\\begin{tabular}{lcc}\n\\toprule\n"
        "Model & big & ghost \\\\\n\\midrule\n"
        "Parameters (M) & 7000.00 & n/a \\\\\n"
        "Runtime on R (s/image-run) & 2.346 & n/a \\\\\n"
        "\\bottomrule\n\\end{tabular}\n\\end{table}\n")
    # timing without parameters (or parameters without timing) is still a table; neither: none
    secs_only = df.assign(parameters=NAN)
    assert tables.build_timing(secs_only).rows[0] == ("Parameters (M)", ["n/a", "n/a"])
    params_only = df.assign(seconds_per_image_run=NAN)
    assert tables.build_timing(params_only).rows == [("Parameters (M)", ["16.70", "7000.00"])]
    assert tables.build_timing(df.assign(parameters=NAN, seconds_per_image_run=NAN)) is None
