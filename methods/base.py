"""The method contract of DESIGN.md."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import torch

from benchmark.registry import Registry
from benchmark.weights import WeightFile

METHODS: Registry[type] = Registry("method")


class SRMethod:
    """Base class of every SR method.

    Contract: :meth:`upscale` takes ``lr`` of shape ``[B, 3, h, w]`` in [0, 1] and one
    ``torch.Generator`` per batch element and returns ``[B, 3, scale*h, scale*w]`` in [0, 1].
    All randomness must come from those generators, never from the global RNG, so that
    run ``r`` (seed ``seed + r``) can be reproduced alone and runs can be batched.
    The harness validates every output and names method, image and seed when it is wrong.
    """

    #: name under which results are stored (``<output_dir>/<dataset>/<name>``)
    name: str = "method"
    #: upscaling factor
    scale: int = 4
    #: False for deterministic methods: they run once and get no G-STD / L-STD
    stochastic: bool = True
    #: smallest LR side the method accepts (checked before generation)
    min_size: int = 1

    @classmethod
    def weight_files(cls, **config) -> list[WeightFile]:
        """Files this method needs, from its config (``cfg.method`` without ``_target_``),
        without instantiating it, so the weights doctor can list them before a run."""
        return []

    def load(self, device: torch.device) -> None:
        """Load weights onto ``device``. Called once, before the first :meth:`upscale`."""

    def upscale(self, lr: torch.Tensor, generators: Sequence[torch.Generator]) -> torch.Tensor:
        raise NotImplementedError

    # Methods whose outputs already exist on disk (``precomputed``) override these two.
    def stored_runs(self) -> int | None:
        """Number of runs found on disk, or None for methods that generate."""
        return None

    def stored_path(self, sample_id: str, run: int) -> Path:
        raise NotImplementedError

    #: Optional hook for methods that work per run over all images (an official repository's script):
    #: ``generate_runs(work, seed, store, timing)`` gets ``{run: [samples missing in that run]}``, the base
    #: seed (run ``r`` uses ``seed + r``), the :class:`~benchmark.store.Store` to write
    #: ``samples/sampleRR/<id>.png`` into, and the timing dict to add ``image_runs`` and ``seconds`` to.
    #: It also gets ``samples=`` (every image of the data set) and ``runs=`` (N) as keywords, for methods
    #: whose unit of work is a whole run (see methods/external.py, "Resume rule").
    #: The runner calls it (after :meth:`load`) instead of its per-image loop when it is not None.
    generate_runs: Callable[..., None] | None = None

    def num_parameters(self) -> int | None:
        """Parameter count for the timing table, when the adapter can know it."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, scale={self.scale})"
