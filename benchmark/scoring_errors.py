"""Metric failures that name the metric and the input, instead of a bare library traceback.

A metric that cannot score an input (SSIM's 11x11 window on a crop a few pixels high, a
network given a too-small image) fails deep inside pyiqa/torch with a message such as
"Kernel size can't be greater than actual input size". :func:`named` wraps a scorer so the
error says which metric, on which input size, after which ``crop_border``, and what to do.
"""

from __future__ import annotations

from typing import Any

import torch


class NamedScorer:
    """Forwards to ``scorer``; a failure of a per-image call is re-raised with the metric named."""

    def __init__(self, name: str, scorer: Any, crop_border: int) -> None:
        self._name, self._scorer, self._crop = name, scorer, crop_border

    def __call__(self, sr: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        try:
            return self._scorer(sr, *args, **kwargs)
        except (RuntimeError, ValueError) as err:
            h, w = sr.shape[-2:]
            raise RuntimeError(
                f"metric {self._name!r} failed on an SR input of {w}x{h} pixels (after crop_border={self._crop}, "
                f"if the metric crops): {err}. If the images are this small, lower crop_border or leave the metric "
                f"out (metrics=[...])"
            ) from err

    def __getattr__(self, attr: str) -> Any:  # score_set of set metrics, and anything else
        return getattr(self._scorer, attr)


def named(name: str, scorer: Any, crop_border: int) -> Any:
    """Wrap a per-image scorer (callable); set-level scorers without ``__call__`` are returned as they are."""
    return NamedScorer(name, scorer, crop_border) if callable(scorer) else scorer
