"""Score images that some SR method already wrote (for example the official CCSR scripts)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import torch

from benchmark.images import IMAGE_EXTS
from methods.base import METHODS, SRMethod

_SAMPLE_DIR = re.compile(r"^sample(\d+)$")


@METHODS.register("precomputed")
class Precomputed(SRMethod):
    """Outputs already on disk under ``path``.

    ``path`` holds either ``sample00 ... sampleNN`` subfolders (the layout of the official CCSR
    scripts; ``sample0``, ``sample1`` spellings too), one run per subfolder in numeric order,
    or a flat folder of images (one run). Files are matched to the data set by stem.
    """

    def __init__(self, path: str, scale: int = 4, stochastic: bool | None = None,
                 name: str = "precomputed") -> None:
        if path in (None, "", "???"):
            raise ValueError("method.path is required for method=precomputed: pass method.path=<folder of SR outputs>")
        self.path = Path(path).expanduser()
        if not self.path.is_dir():
            raise FileNotFoundError(
                f"method.path {self.path} does not exist: point it at a folder with sample00.. subfolders "
                f"or at a flat folder of SR images"
            )
        self.scale = int(scale)
        self.name = name
        runs = sorted(
            ((int(m.group(1)), p) for p in self.path.iterdir() if p.is_dir() and (m := _SAMPLE_DIR.match(p.name))),
        )
        numbers = [n for n, _ in runs]
        if len(set(numbers)) != len(numbers):
            dup = sorted({p.name for n, p in runs if numbers.count(n) > 1})
            raise ValueError(f"method.path {self.path} has run folders with the same number: {', '.join(dup)}; keep one spelling")
        self._run_dirs = [p for _, p in runs] or [self.path]
        self.stochastic = len(self._run_dirs) > 1 if stochastic is None else bool(stochastic)
        self._index = [self._list(d) for d in self._run_dirs]

    @staticmethod
    def _list(folder: Path) -> dict[str, Path]:
        return {p.stem: p for p in sorted(folder.iterdir()) if p.is_file() and p.suffix.lower() in IMAGE_EXTS}

    def stored_runs(self) -> int:
        return len(self._run_dirs)

    def stored_path(self, sample_id: str, run: int) -> Path:
        try:
            return self._index[run][sample_id]
        except KeyError:
            raise FileNotFoundError(
                f"precomputed output for image {sample_id!r}, run {run} is missing: expected "
                f"{self._run_dirs[run]}/{sample_id}.png (any of {', '.join(IMAGE_EXTS)})"
            ) from None

    def missing(self, sample_ids: Sequence[str]) -> list[str]:
        """Every (run folder, image) pair of the data set without an output file."""
        return [f"{d}/{i}" for d, idx in zip(self._run_dirs, self._index) for i in sample_ids if i not in idx]

    def upscale(self, lr: torch.Tensor, generators: Sequence[torch.Generator]) -> torch.Tensor:
        raise RuntimeError("precomputed outputs are read from disk by the runner, not generated")
