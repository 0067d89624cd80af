"""Display names and order for reports: ``names.<key>=<display>`` on the report command line,
or ``names=<file.yaml>`` holding ``key: display`` lines (their order is the order of the
methods and data sets in tables and plots unless ``methods=`` / ``datasets=`` say otherwise).

Keys are what the results store: method names (``noise_control``), data set names
(``realsr``) and metric names (``psnr``, ``lstd`` for L-STD). Display names are used in the
LaTeX/Markdown/CSV tables, the plots and the HTML page; results.csv keeps both
(``method``/``dataset`` display, ``method_key``/``dataset_key`` as stored).
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping

import pandas as pd
from benchmark.metrics import METRICS

_METRIC_LABELS: dict[str, str] = {}


def load(file: str | Path | None, items: Mapping[str, str] | None = None) -> dict[str, str]:
    """Merge a names YAML file (a flat ``key: display`` mapping) with command-line items (which win)."""
    out: dict[str, str] = {}
    if file:
        from omegaconf import OmegaConf

        path = Path(file).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"names={path}: no such file (expected a YAML file of 'key: display name' lines)")
        data = OmegaConf.to_container(OmegaConf.load(path))
        if not isinstance(data, dict) or any(isinstance(v, (dict, list)) for v in data.values()):
            raise ValueError(f"names={path}: expected a flat mapping of 'key: display name' lines, e.g. "
                             f"'noise_control: Noise control'")
        out.update({str(k): str(v) for k, v in data.items()})
    out.update({str(k): str(v) for k, v in (items or {}).items()})
    return out


def ordered(keys: list[str], names: Mapping[str, str]) -> list[str]:
    """``keys`` with those named in ``names`` first, in the names' order, then the rest as given."""
    pos = {k: i for i, k in enumerate(names)}
    return sorted(keys, key=lambda k: (0, pos[k]) if k in pos else (1, keys.index(k)))


def apply(df: pd.DataFrame, names: Mapping[str, str]) -> pd.DataFrame:
    """The frame with display names in ``method`` and ``dataset`` (stored keys kept in ``*_key``)."""
    if not names:
        return df
    out = df.copy()
    for col in ("method", "dataset"):
        out[f"{col}_key"] = out[col]
        out[col] = out[col].map(lambda k: names.get(k, k))
    clash = out.groupby(["dataset", "method"])[["dataset_key", "method_key"]].nunique()
    bad = clash[(clash > 1).any(axis=1)]
    if len(bad):
        raise ValueError(f"display names map two results to one name: {', '.join(map(str, bad.index))}; "
                         f"give each method and data set its own names.<key>=...")
    out.attrs = dict(df.attrs)
    for attr in ("method_order", "dataset_order"):
        if out.attrs.get(attr):
            out.attrs[attr] = [names.get(k, k) for k in out.attrs[attr]]
    return out


@contextmanager
def metric_labels(names: Mapping[str, str]) -> Iterator[None]:
    """Use ``names`` for metric labels (``psnr: PSNR-Y``) while a report is written."""

    old = dict(_METRIC_LABELS)
    _METRIC_LABELS.update({k: v for k, v in names.items() if k in METRICS or k == "lstd"})
    try:
        yield
    finally:
        _METRIC_LABELS.clear()
        _METRIC_LABELS.update(old)


def metric_label(metric: str) -> str | None:
    return _METRIC_LABELS.get(metric)
