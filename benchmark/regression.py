"""``python -m benchmark check``: a quality and stability regression gate for CI.

Compares results (a results.json or a folder of them) with a baseline, quantity by quantity:

* ``<metric>.mean``: quality; a regression is a change *in the metric's bad direction*
  (PSNR down, LPIPS up, ...) larger than the tolerance;
* ``<metric>.gstd``, ``<metric>.std_over_runs`` (set metrics such as FID) and ``lstd``:
  stability; a regression is an *increase* larger than the tolerance.

A change is within tolerance when ``|current - baseline| <= max(abs, rel * |baseline|)``.
Default tolerances (:data:`DEFAULT_TOLERANCES`; later rules override earlier ones, ``--tol``
rules come last); each metric's own defaults are its spec's ``tolerance_mean`` and
``tolerance_spread`` (:mod:`benchmark.metrics`), added after these general rules::

    *.mean            abs 1e-6  rel 0.005   (0.5 %: about 0.13 dB at 27 dB PSNR)
    *.gstd            abs 1e-4  rel 0.10    (G-STD is estimated from few runs)
    *.std_over_runs   abs 1e-4  rel 0.10
    lstd              abs 1e-4  rel 0.05
    fid.mean          abs 0     rel 0.02    (from the FID spec)
    kid.mean          abs 1e-4  rel 0.05    (from the KID spec)

With the same code, data and seeds on the same kind of machine the values are identical (every
run has its own seeded generator), so the defaults only absorb numeric drift between machines
and library versions.

With ``--ci`` a change also has to leave the baseline's confidence interval (stored in
results.json by benchmark/stats.py) to count: a quantity regresses only when it is worse than
the tolerance allows *and* outside the baseline's interval in the bad direction (below its low
end for a higher-is-better mean, above its high end otherwise); likewise for improvements.
Quantities whose baseline has no interval (``std_over_runs``, ``stats.enabled=false``, baselines
written before intervals existed) are judged by the tolerance alone, and the diff table says so.

Exit codes: 0 within tolerance (improvements included), 1 regressed, 2 not comparable
(different data set content, number of images, runs, first seed, crop border, stochastic flag,
metric set or metric options; a metric averaged over a different number of (image, run) values,
i.e. values excluded as undefined on one side only; a (data set, method) missing on one side;
unreadable input).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import fnmatch
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pandas as pd

from benchmark.cliargs import EXIT_FOUND, EXIT_OK, EXIT_USAGE, option_style
from benchmark.metrics import METRICS, MetricSpec
from benchmark.report.collect import LSTD, collect, frame, load, rows_of
from benchmark.results import MetricResult, Result, result_problems
from benchmark.stats import Interval
from benchmark.store import atomic_write_bytes, atomic_write_json

BASELINE_FORMAT = 1
EXIT_REGRESSED, EXIT_NOT_COMPARABLE = EXIT_FOUND, EXIT_USAGE  # the shared exit codes of benchmark/cli.py


@dataclass(frozen=True)
class Tolerance:
    """Allowed change: ``max(abs, rel * |baseline|)``. None fields are taken from earlier rules."""

    abs: float | None = None
    rel: float | None = None

    def allowed(self, baseline: float) -> float:
        return max(self.abs or 0.0, (self.rel or 0.0) * abs(baseline))


def _default_tolerances() -> list[tuple[str, Tolerance]]:
    """General rules, then each registered metric's spec tolerances where they differ from them."""
    general = [
        ("*.mean", Tolerance(abs=1e-6, rel=0.005)),
        ("*.gstd", Tolerance(abs=1e-4, rel=0.10)),
        ("*.std_over_runs", Tolerance(abs=1e-4, rel=0.10)),
        (LSTD, Tolerance(abs=1e-4, rel=0.05)),
    ]
    base = MetricSpec("_", "FR", True, False, "", lambda o, d: None)  # the spec defaults
    rules = list(general)
    for name in METRICS.names():
        spec = METRICS.get(name)
        if spec.tolerance_mean != base.tolerance_mean:
            rules.append((f"{name}.mean", Tolerance(spec.tolerance_mean.abs, spec.tolerance_mean.rel)))
        if spec.tolerance_spread != base.tolerance_spread:
            t = Tolerance(spec.tolerance_spread.abs, spec.tolerance_spread.rel)
            rules += [(f"{name}.gstd", t), (f"{name}.std_over_runs", t)]
    return rules


DEFAULT_TOLERANCES: list[tuple[str, Tolerance]] = _default_tolerances()


def parse_tolerance(text: str) -> tuple[str, Tolerance]:
    """``PATTERN=abs:X,rel:Y`` (either part may be left out), e.g. ``psnr.mean=abs:0.05``, ``*.gstd=rel:0.2``."""
    if "=" not in text:
        raise ValueError(f"--tol {text!r}: expected PATTERN=abs:X,rel:Y, e.g. psnr.mean=abs:0.05 or '*.gstd=rel:0.2'")
    pattern, spec = text.split("=", 1)
    values: dict[str, float] = {}
    for part in spec.split(","):
        kind, _, num = part.partition(":")
        kind = kind.strip()
        if kind not in ("abs", "rel") or not num:
            raise ValueError(f"--tol {text!r}: each part must be abs:<number> or rel:<number>, got {part!r}")
        try:
            v = float(num)
        except ValueError:
            raise ValueError(f"--tol {text!r}: {num!r} is not a number") from None
        if not v >= 0 or math.isinf(v):
            raise ValueError(f"--tol {text!r}: tolerances must be finite and >= 0")
        values[kind] = v
    return pattern.strip(), Tolerance(**values)


def tolerance_for(quantity: str, rules: Sequence[tuple[str, Tolerance]]) -> Tolerance:
    """The tolerance of one quantity: every matching rule in order, later fields win."""
    abs_, rel = 0.0, 0.0
    for pattern, tol in rules:
        if fnmatch.fnmatchcase(quantity, pattern):
            abs_ = tol.abs if tol.abs is not None else abs_
            rel = tol.rel if tol.rel is not None else rel
    return Tolerance(abs_, rel)


# ----------------------------------------------------------------------------- baselines


def entries(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Baseline entries (results.json-shaped, without config and versions) from the tidy frame."""
    out = []
    for (ds, method), sub in df.groupby(["dataset", "method"], sort=True):
        first = sub.iloc[0]
        num = lambda v: None if pd.isna(v) else float(v)
        metrics, skipped, lstd, lstd_ci = {}, {}, None, None
        for r in sub.itertuples():
            if r.metric == LSTD:
                lstd = num(r.mean)
                lstd_ci = _interval(r.mean_low, r.mean_high)
            elif r.status == "skipped":
                skipped[r.metric] = r.note
            else:
                metrics[r.metric] = MetricResult(num(r.mean), num(r.gstd), bool(r.higher_is_better), r.kind,
                                                 std_over_runs=num(r.std_over_runs),
                                                 mean_ci=_interval(r.mean_low, r.mean_high),
                                                 gstd_ci=_interval(r.gstd_low, r.gstd_high),
                                                 num_values=_int(r.num_values))
        out.append(Result(
            dataset=ds, method=method, runs=_int(first["runs"]), seed=_int(first["seed"]),
            crop_border=_int(first["crop_border"]), stochastic=bool(first["stochastic"]),
            num_images=_int(first["num_images"]), content_hash=first["content_hash"],
            protocol=first["protocol"], metrics=metrics, skipped=skipped, lstd=lstd, lstd_ci=lstd_ci,
        ).to_json())
    return out


def _interval(low: Any, high: Any) -> Interval | None:
    """A baseline entry keeps the ends of a stored interval (results.json ``*_ci``); None when absent."""
    if low is None or high is None or pd.isna(low) or pd.isna(high):
        return None
    return Interval(float(low), float(high))


def _int(v: Any) -> int | None:
    return None if v is None or pd.isna(v) else int(v)


def write_baseline(df: pd.DataFrame, path: Path, keep: Sequence[dict[str, Any]] = ()) -> None:
    """Write the entries of ``df`` (plus the entries ``keep`` of other (data set, method) pairs) as a baseline."""
    new = entries(df)
    chosen = {(e["dataset"], e["method"]) for e in new}
    all_entries = sorted([e for e in keep if (e["dataset"], e["method"]) not in chosen] + new,
                         key=lambda e: (e["dataset"], e["method"]))
    atomic_write_json(path, {"srbench_baseline": BASELINE_FORMAT,
                             "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                             "entries": all_entries})


_RECREATE = ("recreate it from known-good results with `python -m benchmark check <results> --baseline {path} "
             "--update-baseline --replace-baseline`")


def read_baseline_entries(path: Path) -> list[dict[str, Any]]:
    """The entries of an srbench baseline file, each checked; a malformed file raises ValueError
    naming the file, the entry, the key, what was found and how to recreate it."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot read baseline {path}: {err}; " + _RECREATE.format(path=path)) from None
    if not isinstance(data, dict) or "srbench_baseline" not in data:
        raise ValueError(f"{path} is not an srbench baseline (no 'srbench_baseline' key)")
    if data["srbench_baseline"] != BASELINE_FORMAT:
        raise ValueError(f"baseline {path} has format {data['srbench_baseline']!r}, this srbench reads "
                         f"{BASELINE_FORMAT}: " + _RECREATE.format(path=path))
    if not isinstance(data.get("entries"), list):
        raise ValueError(f"baseline {path} has no list 'entries' (found {data.get('entries')!r:.80}): "
                         + _RECREATE.format(path=path))
    problems = []
    for n, e in enumerate(data["entries"]):
        who = (f"{e.get('dataset')}/{e.get('method')}" if isinstance(e, dict) else f"#{n}")
        problems += [f"entry {n} ({who}): {p}" for p in result_problems(e)]
    if problems:
        raise ValueError(f"baseline {path} is malformed:\n  - " + "\n  - ".join(problems[:20])
                         + ("\n  - ..." if len(problems) > 20 else "") + "\n" + _RECREATE.format(path=path))
    return data["entries"]


def load_baseline(path: Path) -> pd.DataFrame:
    """A baseline file written by ``--update-baseline``, a results.json, or a folder of results.

    Anything malformed raises ValueError naming the file (``check`` exits 2, never 1).
    """
    if path.is_dir():
        return collect(path)
    if not path.is_file():
        raise FileNotFoundError(f"baseline {path} does not exist: create it from known-good results with "
                                f"`python -m benchmark check <results> --baseline {path} --update-baseline`")
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"cannot read baseline {path}: {err}") from None
    if isinstance(data, dict) and "srbench_baseline" in data:
        results = [Result.from_json(e, f"baseline {path} entry {i}")
                   for i, e in enumerate(read_baseline_entries(path))]
        return frame(row for r in results for row in rows_of(r, None, r.content_hash))
    if isinstance(data, dict) and "metrics" in data:
        return load([path])
    raise ValueError(f"{path} is neither an srbench baseline nor a results.json")


# ----------------------------------------------------------------------------- comparison


@dataclass
class Line:
    """One compared quantity (or one reason why a pair is not comparable)."""

    dataset: str
    method: str
    quantity: str
    status: str  # ok | improved | regressed | not comparable
    kind: str = ""  # quality | stability | protocol
    higher_is_better: bool | None = None
    baseline: float | None = None
    current: float | None = None
    allowed: float | None = None
    message: str = ""
    interval: tuple[float, float] | None = None  # the baseline's confidence interval (--ci)


@dataclass
class Comparison:
    lines: list[Line] = field(default_factory=list)
    unused_rules: list[str] = field(default_factory=list)
    ci: bool = False  # --ci: changes inside the baseline's interval do not count

    @property
    def exit_code(self) -> int:
        if any(x.status == "not comparable" for x in self.lines):
            return EXIT_NOT_COMPARABLE
        if any(x.status == "regressed" for x in self.lines):
            return EXIT_REGRESSED
        return EXIT_OK


_RUN_FACTS = [("num_images", "number of images"), ("runs", "runs"), ("seed", "first seed"),
              ("crop_border", "crop_border"), ("stochastic", "stochastic"), ("content_hash", "data set content"),
              ("protocol", "metric options")]


def _facts(sub: pd.DataFrame) -> dict[str, Any]:
    first = sub.iloc[0]
    return {k: (None if first[k] is None or (not isinstance(first[k], str) and pd.isna(first[k])) else first[k])
            for k, _ in _RUN_FACTS}


def _computed(sub: pd.DataFrame) -> set[str]:
    return set(sub[(sub["metric"] != LSTD) & (sub["status"] != "skipped")]["metric"])


def compare(current: pd.DataFrame, baseline: pd.DataFrame,
            rules: Sequence[tuple[str, Tolerance]] = DEFAULT_TOLERANCES, ci: bool = False) -> Comparison:
    """Compare every (data set, method) of ``current`` with ``baseline``.

    ``ci``: a change beyond the tolerance counts only when it also leaves the baseline's
    confidence interval in that direction (see the module docstring).
    """
    comp = Comparison(ci=ci)
    used: set[str] = set()
    cur_pairs = set(map(tuple, current[["dataset", "method"]].drop_duplicates().to_numpy()))
    base_pairs = set(map(tuple, baseline[["dataset", "method"]].drop_duplicates().to_numpy()))
    for ds, m in sorted(base_pairs - cur_pairs):
        comp.lines.append(Line(ds, m, "results", "not comparable", "protocol",
                               message="in the baseline but not in the results (did the run fail?)"))
    for ds, m in sorted(cur_pairs - base_pairs):
        comp.lines.append(Line(ds, m, "results", "not comparable", "protocol",
                               message="not in the baseline (add it with --update-baseline)"))
    for ds, m in sorted(cur_pairs & base_pairs):
        cur = current[(current["dataset"] == ds) & (current["method"] == m)]
        base = baseline[(baseline["dataset"] == ds) & (baseline["method"] == m)]
        fc, fb = _facts(cur), _facts(base)
        protocol_ok = True
        for key, name in _RUN_FACTS:
            if key in ("content_hash", "protocol") and (fc[key] is None or fb[key] is None):
                continue  # unknown on one side (e.g. results.json without manifest): cannot tell, do not block
            if fc[key] != fb[key]:
                protocol_ok = False
                shown = (lambda v: str(v)[:12]) if key == "content_hash" else str
                comp.lines.append(Line(ds, m, key, "not comparable", "protocol",
                                       message=f"{name}: baseline {shown(fb[key])}, now {shown(fc[key])}"))
        mc, mb = _computed(cur), _computed(base)
        if mc != mb:
            protocol_ok = False
            comp.lines.append(Line(ds, m, "metrics", "not comparable", "protocol",
                                   message=f"metric set: baseline {sorted(mb)}, now {sorted(mc)}"))
        if not protocol_ok:
            continue
        for r in base.itertuples():
            if r.status == "skipped":
                continue
            c = cur[cur["metric"] == r.metric].iloc[0]
            nb, nc = _int(getattr(r, "num_values", None)), _int(c.get("num_values"))
            if r.metric != LSTD and nb is not None and nc is not None and nb != nc:
                # a mean over other values (some excluded as undefined on one side) is another number
                comp.lines.append(Line(ds, m, f"{r.metric}.mean", "not comparable", "protocol",
                                       message=f"averaged over {nb} values in the baseline, {nc} now "
                                               f"(excluded values are listed in results.json)"))
                continue
            if r.metric == LSTD:
                checks = [(LSTD, "mean", "stability", False)]
            else:
                checks = [(f"{r.metric}.mean", "mean", "quality", bool(r.higher_is_better)),
                          (f"{r.metric}.gstd", "gstd", "stability", False),
                          (f"{r.metric}.std_over_runs", "std_over_runs", "stability", False)]
            for quantity, col, kind, hib in checks:
                b, v = getattr(r, col), float(c[col])
                if pd.isna(b) and pd.isna(v):
                    continue
                for pattern, _ in rules:
                    if fnmatch.fnmatchcase(quantity, pattern):
                        used.add(pattern)
                if pd.isna(b) or pd.isna(v):
                    comp.lines.append(Line(ds, m, quantity, "not comparable", "protocol", hib, _none(b), _none(v),
                                           message="defined on one side only"))
                    continue
                allowed = tolerance_for(quantity, rules).allowed(b)
                worse = (b - v) if hib else (v - b)  # > 0: in the bad direction
                status = "regressed" if worse > allowed else "improved" if -worse > allowed else "ok"
                lo, hi = getattr(r, f"{col}_low", math.nan), getattr(r, f"{col}_high", math.nan)
                interval = None if col == "std_over_runs" or pd.isna(lo) or pd.isna(hi) else (float(lo), float(hi))
                message = ""
                if ci and interval is not None and status != "ok":
                    # outside the interval on the side the change went: low end for a fall, high end for a rise
                    outside = v < interval[0] if v < b else v > interval[1]
                    if not outside:
                        status, message = "ok", "inside the baseline's interval"
                elif ci and interval is None:
                    message = "no baseline interval: tolerance only"
                comp.lines.append(Line(ds, m, quantity, status, kind, hib, float(b), v, allowed, message, interval))
    # A user rule that matches nothing is most likely a typo (psnr.std instead of psnr.gstd).
    comp.unused_rules = [p for p, t in rules if p not in used and (p, t) not in DEFAULT_TOLERANCES]
    return comp


def _none(v: float) -> float | None:
    return None if pd.isna(v) else float(v)


# ----------------------------------------------------------------------------- output


def _g(v: float | None) -> str:
    return "-" if v is None else f"{v:.6g}"


def format_comparison(comp: Comparison) -> str:
    """The diff table: one line per quantity, regressions marked, then a summary."""
    head = ["dataset", "method", "quantity", "dir", "baseline", "current", "change", "allowed", "status"]
    if comp.ci:
        head.insert(5, "baseline CI")
    rows = []
    for x in comp.lines:
        if x.status == "not comparable" and x.baseline is None and x.current is None:
            row = [x.dataset, x.method, x.quantity, "", "", "", "", "", f"NOT COMPARABLE: {x.message}"]
            if comp.ci:  # the interval column, so that the message stays in the status column
                row.insert(5, "")
            rows.append(row)
            continue
        change = "" if x.baseline is None or x.current is None else f"{x.current - x.baseline:+.3g}" + (
            f" ({(x.current - x.baseline) / abs(x.baseline) * 100:+.1f}%)" if x.baseline else "")
        direction = "" if x.higher_is_better is None else ("↑" if x.higher_is_better else "↓")
        status = {"regressed": f"REGRESSED ({x.kind})", "not comparable": f"NOT COMPARABLE: {x.message}"}.get(
            x.status, x.status)
        if x.message and x.status in ("ok", "improved", "regressed"):
            status += f" ({x.message})"
        row = [x.dataset, x.method, x.quantity, direction, _g(x.baseline), _g(x.current), change,
               "" if x.allowed is None else f"±{x.allowed:.3g}", status]
        if comp.ci:
            row.insert(5, "-" if x.interval is None else f"[{_g(x.interval[0])}, {_g(x.interval[1])}]")
        rows.append(row)
    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
    fmt = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip()
    out = [fmt(head), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows]
    n = {s: sum(x.status == s for x in comp.lines) for s in ("ok", "improved", "regressed", "not comparable")}
    verdict = {0: "PASS", 1: "FAIL: regressed", 2: "NOT COMPARABLE"}[comp.exit_code]
    out.append(f"\n{verdict} (exit {comp.exit_code}): {n['ok']} within tolerance"
               + (" or the baseline's interval" if comp.ci else "")
               + f", {n['improved']} improved, {n['regressed']} regressed, {n['not comparable']} not comparable")
    if n["improved"] and comp.exit_code == 0:
        out.append("improvements: once intended, record them with --update-baseline")
    for p in comp.unused_rules:
        out.append(f"warning: --tol pattern {p!r} matched no quantity (quantities look like psnr.mean, "
                   f"psnr.gstd, fid.std_over_runs, lstd)")
    return "\n".join(out)


def write_junit(comp: Comparison, path: Path) -> None:
    """JUnit XML: one test case per quantity; regressions are failures, incomparable pairs errors."""
    suite = ET.Element("testsuite", name="srbench.check", tests=str(len(comp.lines)),
                       failures=str(sum(x.status == "regressed" for x in comp.lines)),
                       errors=str(sum(x.status == "not comparable" for x in comp.lines)))
    for x in comp.lines:
        case = ET.SubElement(suite, "testcase", classname=f"srbench.{x.dataset}.{x.method}", name=x.quantity)
        detail = (f"baseline {_g(x.baseline)}, current {_g(x.current)}, allowed change "
                  f"{'-' if x.allowed is None else f'{x.allowed:.3g}'}"
                  + ("" if x.interval is None else f", baseline interval [{_g(x.interval[0])}, {_g(x.interval[1])}]"))
        if x.status == "regressed":
            ET.SubElement(case, "failure", message=f"{x.kind} regression: {detail}", type=f"{x.kind}-regression")
        elif x.status == "not comparable":
            ET.SubElement(case, "error", message=x.message or detail, type="not-comparable")
        elif x.status == "improved":
            ET.SubElement(case, "system-out").text = f"improved: {detail}"
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    atomic_write_bytes(path, ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n")


def parser() -> argparse.ArgumentParser:
    """The command line of ``python -m benchmark check``."""
    ap = argparse.ArgumentParser(
        prog="python -m benchmark check",
        description="Compare results with a baseline. Exit 0: within tolerance; 1: quality or stability "
                    "regressed; 2: not comparable (data set, runs, seed, crop, metric set/options differ).",
        epilog="Defaults: " + "; ".join(f"{p} abs {t.abs:g} rel {t.rel:g}" for p, t in DEFAULT_TOLERANCES)
               + ". A change is allowed when |current - baseline| <= max(abs, rel*|baseline|).")
    ap.add_argument("results", help="a results.json or a folder with results.json files below it")
    ap.add_argument("--baseline", required=True, type=Path,
                    help="baseline JSON written by --update-baseline (a results.json or a folder also work)")
    ap.add_argument("--tol", action="append", default=[], metavar="PATTERN=abs:X,rel:Y",
                    help="tolerance for quantities matching PATTERN (psnr.mean, '*.gstd', lstd, ...); repeatable")
    ap.add_argument("--datasets", help="only these data sets (comma-separated)")
    ap.add_argument("--methods", help="only these methods (comma-separated)")
    ap.add_argument("--junit", type=Path, help="also write JUnit XML here")
    ap.add_argument("--ci", action="store_true",
                    help="count a change only when it also leaves the baseline's confidence interval (stored by "
                         "stats.enabled=true runs) in the bad direction; the diff table shows the interval")
    ap.add_argument("--update-baseline", action="store_true",
                    help="record the results in the baseline and exit 0: their (data set, method) entries are "
                         "replaced, the baseline's other entries are kept")
    ap.add_argument("--replace-baseline", action="store_true",
                    help="with --update-baseline: write only these results, dropping every other entry")
    return ap


def _entries_to_keep(path: Path, current: pd.DataFrame, replace: bool) -> list[dict[str, Any]]:
    """Entries of the existing baseline that ``--update-baseline`` keeps (none with ``--replace-baseline``).

    An existing file that is not a readable srbench baseline is never overwritten silently: the
    error says that ``--replace-baseline`` would replace it and what it holds would be lost.
    """
    if replace or not path.exists():
        return []
    try:
        return read_baseline_entries(path)
    except ValueError as err:
        n = len(current[["dataset", "method"]].drop_duplicates())
        raise ValueError(f"{err}\n--update-baseline keeps the entries of the existing baseline that these results "
                         f"do not cover, so it must be a readable srbench baseline. To overwrite {path} with these {n} "
                         f"result(s) pass --replace-baseline (its current content is lost).") from None


def main(argv: list[str]) -> int:
    """Run the gate; returns the exit code (0 ok, 1 regressed, 2 not comparable or bad input)."""
    args = parser().parse_args(option_style(argv, ["baseline", "tol", "datasets", "methods", "junit"], "check"))
    try:
        rules = DEFAULT_TOLERANCES + [parse_tolerance(t) for t in args.tol]
        current = collect(args.results, args.datasets, args.methods)
        if args.update_baseline:
            keep = _entries_to_keep(args.baseline, current, args.replace_baseline)
            write_baseline(current, args.baseline, keep)
            pairs = current[["dataset", "method"]].drop_duplicates()
            print(f"wrote baseline {args.baseline} with {len(pairs)} result(s): "
                  + ", ".join(f"{d}/{m}" for d, m in pairs.to_numpy()))
            chosen = set(map(tuple, pairs.to_numpy()))
            kept = [f"{e['dataset']}/{e['method']}" for e in keep if (e["dataset"], e["method"]) not in chosen]
            if kept:
                print(f"kept {len(kept)} baseline entr{'y' if len(kept) == 1 else 'ies'} these results do not "
                      f"cover: {', '.join(kept)} (--replace-baseline drops them)")
            return EXIT_OK
        baseline = load_baseline(args.baseline)
        if args.datasets or args.methods:
            keep = current[["dataset", "method"]].drop_duplicates()
            baseline = baseline.merge(keep, on=["dataset", "method"])
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_NOT_COMPARABLE
    comp = compare(current, baseline, rules, ci=args.ci)
    print(format_comparison(comp))
    if args.junit:
        write_junit(comp, args.junit)
    return comp.exit_code
