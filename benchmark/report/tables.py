"""Paper tables from the tidy frame: Table 1 (quality and stability) and Table 2 (timing).

One table model (:class:`Table`) is built from the frame and rendered as LaTeX, Markdown, CSV
and HTML, so the four always agree. Conventions of the CCSR paper's Table 1:

* rows: data sets x metrics (arrow from the metric's direction), then FID-like set metrics
  (mean over runs, no G-STD), then L-STD; columns: methods;
* cells: ``mean/G-STD`` for stochastic methods, ``mean`` for deterministic ones; L-STD is
  ``-`` for deterministic methods;
* per row the best value is red and the second best blue, separately for the means (by the
  metric's direction) and for the G-STDs (lower is better). Values are compared as printed,
  so numbers that print the same tie; tied values share a colour and the next distinct value
  is the second best (dense ranking);
* precision: each metric's ``decimals`` in its spec (PSNR, NIQE, MUSIQ, FID 2; SSIM, LPIPS,
  DISTS, CLIPIQA 4), G-STD and L-STD 4. Labels, decimals and row order come from the metric
  specs (:mod:`benchmark.metrics`); metrics the registry does not know print upper-case with 4.

With a :class:`benchmark.stats.StatsConfig` (``python -m benchmark report`` passes one unless
``stats.enabled=false``), each number stored with a confidence interval prints it in brackets,
and the best of a row is tested against the second (:mod:`benchmark.report.significance`): when
they are not separated at the chosen level neither is coloured and both carry a dagger (``†``)
explained under the table. Rows whose per-image data is missing keep the plain marking.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pandas as pd

from benchmark.report.collect import LSTD, dataset_order, method_order
from benchmark.metrics import METRICS
from benchmark.report.names import metric_label
from benchmark.report.significance import TIED, UNTESTED, best_vs_second

if TYPE_CHECKING:
    from benchmark.report.significance import Verdict
    from benchmark.stats import StatsConfig

GSTD_DIGITS = 4
LSTD_DISPLAY = ("L-STD", 4)
MISSING = "n/a"   # metric not computed for this method (skipped, or no results)
UNDEFINED = "-"   # G-STD / L-STD of a deterministic method (or of a single run)


def _spec(metric: str):

    return METRICS.get(metric) if metric in METRICS else None


def label(metric: str) -> str:
    """Printed name: ``names.<metric>=`` of the report, else the spec's ``label`` (L-STD for the
    pixel-level std; unknown names upper-case)."""

    if metric_label(metric) is not None:
        return metric_label(metric)
    if metric == LSTD:
        return LSTD_DISPLAY[0]
    spec = _spec(metric)
    return spec.label if spec is not None else metric.upper()


def digits(metric: str) -> int:
    """Decimals of the mean: the spec's ``decimals`` (4 for L-STD and unknown names)."""
    if metric == LSTD:
        return LSTD_DISPLAY[1]
    spec = _spec(metric)
    return spec.decimals if spec is not None else 4


def paper_order() -> list[str]:
    """Registered metrics in the row order of the paper's Table 1 (the specs' ``table_row``)."""

    specs = [METRICS.get(n) for n in METRICS.names()]
    return [s.name for s in sorted(specs, key=lambda s: s.table_row)]


def fmt(value: float | None, ndigits: int) -> str:
    """Fixed-point text; ``-0.00`` prints as ``0.00``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    text = f"{value:.{ndigits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def rank(values: Sequence[float | None], higher_is_better: bool) -> list[int | None]:
    """1 for the best, 2 for the second best, None otherwise; None/NaN values are not ranked.

    Dense ranking: every value equal to the best is 1, every value equal to the next distinct
    value is 2. Pass values rounded as printed so that what looks tied is tied.
    """
    present = sorted({v for v in values if v is not None and not math.isnan(v)}, reverse=higher_is_better)
    best = present[0] if present else None
    second = present[1] if len(present) > 1 else None
    return [None if v is None or (isinstance(v, float) and math.isnan(v)) else 1 if v == best
            else 2 if v == second else None for v in values]


TIE_MARK = "\u2020"  # dagger: best and second best of the row are not separated


@dataclass
class Part:
    """One printed number of a cell with its rank in the row (1 best, 2 second).

    ``ci``: the confidence interval as printed (low, high), None when not stored or not shown;
    ``tie``: best or second best, but not separated from the other (no colour, a dagger).
    """

    text: str
    rank: int | None = None
    ci: tuple[str, str] | None = None
    tie: bool = False

    def plain(self) -> str:
        return self.text + (TIE_MARK if self.tie else "") + (f" [{self.ci[0]}, {self.ci[1]}]" if self.ci else "")


@dataclass
class Cell:
    """``mean`` or ``mean/G-STD``; ``gstd`` None means the cell has no G-STD part."""

    mean: Part
    gstd: Part | None = None

    def plain(self) -> str:
        return self.mean.plain() + ("" if self.gstd is None else "/" + self.gstd.plain())


@dataclass
class Row:
    metric: str
    label: str
    higher_is_better: bool
    cells: list[Cell]
    # best-vs-second test of the "mean" and "gstd" parts (absent: not tested, plain marking)
    verdicts: dict[str, Verdict] = field(default_factory=dict)


@dataclass
class Group:
    dataset: str
    rows: list[Row]
    notes: list[str] = field(default_factory=list)


@dataclass
class Table:
    methods: list[str]
    groups: list[Group]
    caption: str
    # set when intervals / significance were used: what they mean, for the notes under the table
    stats_note: str | None = None
    tie_note: str | None = None
    untested: list[str] = field(default_factory=list)  # rows whose best/second could not be tested, and why

    @property
    def has_ties(self) -> bool:
        return any(p.tie for g in self.groups for r in g.rows for c in r.cells for p in (c.mean, c.gstd) if p)


def _metric_rows(sub: pd.DataFrame) -> list[str]:
    """Metrics with at least one value in this data set: paper order, then set metrics, then L-STD."""
    have = sub[sub["status"] == "ok"]
    kinds = have.groupby("metric")["kind"].first().to_dict()
    names = list(dict.fromkeys(have["metric"]))
    known = [m for m in paper_order() if m in kinds]
    rest = [m for m in names if m not in known and m != LSTD]
    per_image = [m for m in known + rest if kinds[m] != "set"]
    sets = [m for m in known + rest if kinds[m] == "set"]
    lstd = [LSTD] if LSTD in kinds or (sub["metric"] == LSTD).any() else []
    return per_image + sets + lstd


def _value_notes(sub: pd.DataFrame, methods: Sequence[str]) -> list[str]:
    """Flags of means averaged over fewer values (excluded ones) and of values at a metric's cap."""
    notes = []
    for r in sub[sub["status"] == "ok"].itertuples():
        if r.method not in methods:
            continue
        k = getattr(r, "excluded", None)
        if isinstance(k, (int, float)) and not pd.isna(k) and k > 0:
            n = r.num_values
            if pd.isna(n):  # a results.json written by hand may lack the count (None or NaN): say only what is known
                notes.append(f"{label(r.metric)} of {r.method}: {int(k)} value(s) excluded from the mean (metric "
                             f"undefined on them; listed in results.json)")
            else:
                notes.append(f"{label(r.metric)} of {r.method} averaged over {int(n)} of {int(n) + int(k)} values: "
                             f"{int(k)} excluded (metric undefined on them; listed in results.json)")
        c = getattr(r, "num_capped", None)
        if isinstance(c, (int, float)) and not pd.isna(c) and c > 0:
            notes.append(f"{label(r.metric)} of {r.method}: {int(c)} value(s) at the cap {r.cap:g} "
                         f"(identical images; pyiqa's eps, see docs/metrics.md)")
    return notes


def _rounded(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _ci(r: object, col: str, ndigits: int) -> tuple[str, str] | None:
    lo, hi = getattr(r, f"{col}_low", math.nan), getattr(r, f"{col}_high", math.nan)
    if lo is None or hi is None or math.isnan(lo) or math.isnan(hi):
        return None
    return fmt(lo, ndigits), fmt(hi, ndigits)


def build(df: pd.DataFrame, datasets: Sequence[str] | None = None, methods: Sequence[str] | None = None,
          stats_cfg: StatsConfig | None = None) -> Table:
    """The Table-1 model of the tidy frame.

    ``stats_cfg`` None or disabled: the paper's plain marking, no intervals. Otherwise intervals
    are shown where stored and the best of each row part is tested against the second.
    """
    datasets = list(datasets or dataset_order(df))
    methods = list(methods or method_order(df))
    use_stats = stats_cfg is not None and stats_cfg.enabled
    untested: list[str] = []
    groups = []
    for ds in datasets:
        sub = df[df["dataset"] == ds]
        rows = []
        mixed = mixed_runs(df, ds, methods)  # different N: G-STD and L-STD are not comparable, not ranked
        for metric in _metric_rows(sub):
            at = {r.method: r for r in sub[sub["metric"] == metric].itertuples()}
            hib = bool(next(r.higher_is_better for r in at.values() if r.status == "ok")) if metric != LSTD else False
            cells: list[Cell] = []
            for m in methods:
                r = at.get(m)
                if metric == LSTD:
                    ok = r is not None and r.status == "ok"
                    undefined = r is not None and not ok
                    cells.append(Cell(Part(fmt(r.mean, digits(metric)) if ok else UNDEFINED if undefined else MISSING,
                                           ci=_ci(r, "mean", digits(metric)) if ok and use_stats else None)))
                    continue
                if r is None or r.status != "ok":
                    cells.append(Cell(Part(MISSING)))
                    continue
                mean = Part(fmt(r.mean, digits(metric)), ci=_ci(r, "mean", digits(metric)) if use_stats else None)
                if r.kind == "set" or not r.stochastic:
                    cells.append(Cell(mean))
                else:
                    gstd_ok = not math.isnan(r.gstd)
                    cells.append(Cell(mean, Part(fmt(r.gstd, GSTD_DIGITS) if gstd_ok else UNDEFINED,
                                                 ci=_ci(r, "gstd", GSTD_DIGITS) if gstd_ok and use_stats else None)))
            row = Row(metric, label(metric), hib, cells)
            for part, better in (("mean", hib), ("gstd", False)):
                parts = [getattr(c, part) for c in cells]
                if mixed and (part == "gstd" or metric == LSTD):
                    continue  # stds over different numbers of runs: no best/second (see mixed_runs)
                ranks = rank([_rounded(p.text) if p is not None else None for p in parts], better)
                for p, rk in zip(parts, ranks):
                    if p is not None:
                        p.rank = rk
                if use_stats:
                    _test(row, part, parts, better, df, ds, methods, stats_cfg, untested)
            rows.append(row)
        why: dict[tuple[str, str], list[str]] = {}
        for r in sub[sub["status"].isin(["skipped", "empty"])].itertuples():
            if r.method in methods:
                why.setdefault((r.metric, " ".join(str(r.note).split())), []).append(r.method)
        notes = [f"{label(metric)} not computed for {', '.join(ms)}: {note}" for (metric, note), ms in why.items()]
        notes += _value_notes(sub, methods)
        if mixed:
            notes.append("G-STD and L-STD not ranked: the stochastic methods have different numbers of runs ("
                         + ", ".join(f"{m} {n}" for m, n in mixed.items())
                         + "); a population std over fewer runs is biased low (about sqrt((N-1)/N) of the "
                           "spread), so rerun them with the same runs= to compare their stability")
        groups.append(Group(ds, rows, notes))
    table = Table(methods, groups, _caption(df, methods), untested=untested)
    if use_stats:
        shown = any(p.ci for g in groups for r in g.rows for c in r.cells for p in (c.mean, c.gstd) if p)
        tested = any(v.status != "untested" for g in groups for r in g.rows for v in r.verdicts.values())
        level = f"{stats_cfg.level * 100:g}%"
        how = (f"paired bootstrap over images, {stats_cfg.resamples} resamples, seed {stats_cfg.seed}; "
               f"FID: over runs")
        notes = []
        if shown:
            # the level the stored intervals were computed at (the run's stats.level), not the test's
            stored = sorted({float(v) for v in df.get("ci_level", pd.Series(dtype=float)).dropna()})
            shown_level = "/".join(f"{v * 100:g}%" for v in stored) or "stored"
            notes.append(f"Brackets: {shown_level} confidence intervals (bootstrap over images, FID over runs; "
                         f"BCa where defined, else percentile).")
        if tested:
            notes.append(f"Best and second best are coloured only where the best beats the second at {level} "
                         f"({how}).")
        table.stats_note = " ".join(notes) or None
        if table.has_ties:
            table.tie_note = (f"{TIE_MARK} best and second best of the row are not separated at {level}: the "
                              f"difference may come from which images and seeds were drawn.")
    return table


def _test(row: Row, part: str, parts: list[Part | None], better: bool, df: pd.DataFrame, dataset: str,
          methods: Sequence[str], cfg: StatsConfig, untested: list[str]) -> None:
    """Best vs second of one row part; a tie takes the colours away and marks both with a dagger."""

    best = [m for m, p in zip(methods, parts) if p is not None and p.rank == 1]
    second = [m for m, p in zip(methods, parts) if p is not None and p.rank == 2]
    if not best or not second:
        return  # a single value (or all tied as printed): nothing to test
    v = best_vs_second(df, dataset, row.metric, part, best, second, better, cfg)
    row.verdicts[part] = v
    if v.status == UNTESTED:
        untested.append(f"{dataset} {row.label}{' G-STD' if part == 'gstd' else ''}: {v.why}")
    elif v.status == TIED:
        for p in parts:
            if p is not None and p.rank in (1, 2):
                p.rank, p.tie = None, True


def _runs_text(df: pd.DataFrame, methods: Sequence[str]) -> str:
    """``10 runs per image`` when every stochastic result has the same N, else each method's N
    (``the runs per image of each method: ccsr 3, stable_sr 4 on RealSR and 10 on DRealSR``),
    so a caption never leaves the reader guessing which N belongs to which column."""
    sto = df[df["method"].isin(methods) & df["stochastic"]].drop_duplicates(["dataset", "method"])
    runs = sorted({int(r) for r in sto["runs"].dropna()})
    if len(runs) <= 1:
        return f"{runs[0] if runs else 'N'} runs per image"
    parts = []
    for m in [m for m in methods if m in set(sto["method"])]:
        per_ds = sto[sto["method"] == m][["dataset", "runs"]].itertuples(index=False)
        per_ds = [(d, int(r)) for d, r in per_ds]
        if len({r for _, r in per_ds}) == 1:
            parts.append(f"{m} {per_ds[0][1]}")
        else:
            parts.append(f"{m} " + " and ".join(f"{r} on {d}" for d, r in per_ds))
    return "the runs per image of each method: " + ", ".join(parts)


def mixed_runs(df: pd.DataFrame, dataset: str, methods: Sequence[str]) -> dict[str, int]:
    """N of each stochastic method of ``dataset`` when they differ (else {}).

    G-STD and L-STD are population stds (ddof=0) over N runs: their expected value grows with N
    (for Gaussian values E[std] is about sigma*sqrt((N-1)/N), 0.82 sigma at N=3 and 0.95 at N=10),
    so a method run fewer times looks more stable than it is. Tables do not rank them then.
    """
    sto = df[(df["dataset"] == dataset) & df["method"].isin(methods) & df["stochastic"]]
    runs = sto.drop_duplicates("method").set_index("method")["runs"]
    by = {m: int(runs[m]) for m in methods if m in runs.index}
    return by if len(set(by.values())) > 1 else {}


def _caption(df: pd.DataFrame, methods: Sequence[str]) -> str:
    runs = sorted({int(r) for r in df[df["method"].isin(methods) & df["stochastic"]]["runs"].dropna()})
    seeds = sorted({int(s) for s in df[df["method"].isin(methods) & df["stochastic"]]["seed"].dropna()})
    n = _runs_text(df, methods)
    seed = f" (seeds {seeds[0]}..{seeds[0] + runs[0] - 1})" if len(seeds) == 1 and len(runs) == 1 else ""
    return (f"Quality and stability. Stochastic methods: mean/G-STD over {n}{seed}; "
            f"deterministic methods: mean of one run. FID-like set metrics: mean over runs. "
            f"Best and second best of each row in red and blue.")


# ----------------------------------------------------------------------------- LaTeX

_TEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def tex_escape(text: str) -> str:
    return "".join(_TEX_ESCAPES.get(ch, ch) for ch in text)


def _tex_part(p: Part) -> str:
    color = {1: "red", 2: "blue"}.get(p.rank or 0)
    text = rf"\textcolor{{{color}}}{{{p.text}}}" if color else p.text
    if p.tie:
        text += r"$^\dagger$"
    if p.ci:
        text += rf"\,{{\scriptsize[{p.ci[0]}, {p.ci[1]}]}}"
    return text


def _tex_cell(c: Cell) -> str:
    return _tex_part(c.mean) + ("" if c.gstd is None else "/" + _tex_part(c.gstd))


def _arrow(row: Row, tex: bool) -> str:
    if tex:
        return r"$\uparrow$" if row.higher_is_better else r"$\downarrow$"
    return "↑" if row.higher_is_better else "↓"


def to_latex(table: Table, label_: str = "tab:srbench") -> str:
    """Booktabs table* in the layout of the paper's Table 1; needs \\usepackage{booktabs,xcolor}."""
    out = io.StringIO()
    cols = "ll" + "c" * len(table.methods)
    out.write("% Generated by `python -m benchmark report`. Needs \\usepackage{booktabs} and \\usepackage{xcolor}.\n")
    for g in table.groups:
        for note in g.notes:
            out.write(f"% {g.dataset}: {note}\n")
    out.write("\\begin{table*}[t]\n\\centering\n")
    out.write(f"\\caption{{{tex_escape(table.caption)}}}\n\\label{{{label_}}}\n")
    out.write(f"\\begin{{tabular}}{{{cols}}}\n\\toprule\n")
    out.write(" & ".join(["Datasets", "Metrics"] + [tex_escape(m) for m in table.methods]) + " \\\\\n")
    for g in table.groups:
        out.write("\\midrule\n")
        for i, row in enumerate(g.rows):
            first = tex_escape(g.dataset) if i == 0 else ""
            cells = [first, tex_escape(row.label) + _arrow(row, True)] + [_tex_cell(c) for c in row.cells]
            out.write(" & ".join(cells) + " \\\\\n")
    out.write("\\bottomrule\n\\end{tabular}\n")
    for note in (table.stats_note, table.tie_note):
        if note:
            text = tex_escape(note).replace(TIE_MARK, r"$^\dagger$")
            out.write(f"\\par\\footnotesize {text}\n")
    out.write("\\end{table*}\n")
    return out.getvalue()


# ----------------------------------------------------------------------------- Markdown / CSV


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def _md_part(p: Part) -> str:
    text = f"**{p.text}**" if p.rank == 1 else f"_{p.text}_" if p.rank == 2 else p.text
    return text + (TIE_MARK if p.tie else "") + (f" [{p.ci[0]}, {p.ci[1]}]" if p.ci else "")


def to_markdown(table: Table) -> str:
    """GitHub Markdown: best in bold, second best in italics."""
    lines = ["| " + " | ".join(["Dataset", "Metric"] + [_md_escape(m) for m in table.methods]) + " |",
             "|" + "---|" * 2 + ":---:|" * len(table.methods)]
    for g in table.groups:
        for i, row in enumerate(g.rows):
            cells = [_md_escape(g.dataset) if i == 0 else "", f"{row.label} {_arrow(row, False)}"]
            cells += [_md_part(c.mean) + ("" if c.gstd is None else "/" + _md_part(c.gstd)) for c in row.cells]
            lines.append("| " + " | ".join(cells) + " |")
    lines += ["", table.caption.replace("in red and blue", "in **bold** and _italics_")]
    lines += [f"{note}" for note in (table.stats_note, table.tie_note) if note]
    notes = [f"- {g.dataset}: {_md_escape(n)}" for g in table.groups for n in g.notes]
    if notes:
        lines += [""] + notes
    return "\n".join(lines) + "\n"


def to_csv(table: Table) -> str:
    """The printed table as CSV (text cells as in the paper layout, without colours)."""
    rows = []
    for g in table.groups:
        for row in g.rows:
            rows.append({"dataset": g.dataset, "metric": row.label,
                         "direction": "higher" if row.higher_is_better else "lower",
                         **{m: c.plain() for m, c in zip(table.methods, row.cells)}})
    buf = io.StringIO()
    pd.DataFrame(rows, columns=["dataset", "metric", "direction", *table.methods]).to_csv(
        buf, index=False, lineterminator="\n")
    return buf.getvalue()


# ----------------------------------------------------------------------------- Table 2: timing


@dataclass
class TimingTable:
    methods: list[str]
    rows: list[tuple[str, list[str]]]


def build_timing(df: pd.DataFrame, datasets: Sequence[str] | None = None,
                 methods: Sequence[str] | None = None) -> TimingTable | None:
    """Parameters (millions) and seconds per image-run per data set; None when no result has timing."""
    datasets = list(datasets or dataset_order(df))
    methods = list(methods or method_order(df))
    runs = df.drop_duplicates(["dataset", "method"])
    if runs["seconds_per_image_run"].isna().all() and runs["parameters"].isna().all():
        return None
    params = runs.groupby("method")["parameters"].max()
    rows = [("Parameters (M)", [fmt(params.get(m, math.nan) / 1e6, 2) for m in methods])]
    for ds in datasets:
        sec = runs[runs["dataset"] == ds].set_index("method")["seconds_per_image_run"]
        if sec.notna().any():
            rows.append((f"Runtime on {ds} (s/image-run)", [fmt(sec.get(m, math.nan), 3) for m in methods]))
    return TimingTable(methods, rows)


def timing_latex(t: TimingTable, label_: str = "tab:srbench-timing") -> str:
    out = io.StringIO()
    out.write("% Generated by `python -m benchmark report`. Needs \\usepackage{booktabs}.\n")
    out.write("\\begin{table}[t]\n\\centering\n")
    out.write("\\caption{Model size and generation time per image and run (from each run's timing).}\n")
    out.write(f"\\label{{{label_}}}\n\\begin{{tabular}}{{l{'c' * len(t.methods)}}}\n\\toprule\n")
    out.write(" & ".join(["Model"] + [tex_escape(m) for m in t.methods]) + " \\\\\n\\midrule\n")
    for name, cells in t.rows:
        out.write(" & ".join([tex_escape(name)] + cells) + " \\\\\n")
    out.write("\\bottomrule\n\\end{tabular}\n\\end{table}\n")
    return out.getvalue()


def timing_markdown(t: TimingTable) -> str:
    lines = ["| " + " | ".join(["Model"] + [_md_escape(m) for m in t.methods]) + " |",
             "|---|" + ":---:|" * len(t.methods)]
    lines += ["| " + " | ".join([name] + cells) + " |" for name, cells in t.rows]
    return "\n".join(lines) + "\n"
