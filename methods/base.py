"""The sample-source contract of DESIGN.md, and the small base class of ``upscale``-style adapters.

Every method is a :class:`SampleSource`: the runner asks it for the (image, run) pairs still
missing with ``produce(todo, sink)`` (:class:`benchmark.sink.Todo`, :class:`benchmark.sink.SampleSink`)
and never branches on the kind of method. The sink owns the seeds (``seed + r``), output
validation, atomic writing and timing.

* :class:`SRMethod`: adapters that compute a batch of runs of one image implement
  :meth:`SRMethod.upscale` only; :meth:`SRMethod.produce` batches the runs, seeds one generator
  per run, times each call and hands the output to the sink.
* Sources that do not compute per batch (precomputed outputs, an official repository's script)
  subclass :class:`SampleSource` and implement :meth:`SampleSource.produce` directly.
"""

from __future__ import annotations

import time
from typing import Sequence

import torch

from benchmark.data import Sample
from benchmark.images import read_image, to_tensor
from benchmark.registry import GroupRegistry
from benchmark.sink import SampleSink, Todo
from benchmark.store import Store
from benchmark.weights import WeightFile

METHODS = GroupRegistry("method", "method")  # names: conf/method/*.yaml, classes: their _target_


class SampleSource:
    """What every method is: something that stores SR samples for (image, run) pairs on request."""

    #: name under which results are stored (``<output_dir>/<dataset>/<name>``)
    name: str = "method"
    #: upscaling factor
    scale: int = 4
    #: False for deterministic methods: they run once and get no G-STD / L-STD
    stochastic: bool = True
    #: smallest LR side the method accepts (checked before generation)
    min_size: int = 1
    #: False for sources that draw no seeds (precomputed outputs): results record no seed
    seeded: bool = True

    @classmethod
    def weight_files(cls, **config) -> list[WeightFile]:
        """Files this method needs, from its config (``cfg.method`` without ``_target_``),
        without instantiating it, so the weights doctor can list them before a run."""
        return []

    def fixed_runs(self) -> int | None:
        """Runs this source holds whatever ``runs=`` says (precomputed outputs on disk), else None."""
        return None

    def stored_current(self, store: Store, sample_id: str, run: int) -> bool:
        """False when a stored sample is known to be out of date (a precomputed source file changed)."""
        return True

    def check_inputs(self, samples: Sequence[Sample]) -> None:
        """Raise FileNotFoundError/ValueError before any work when the source cannot serve ``samples``."""

    def load(self, device: torch.device) -> None:
        """Load weights onto ``device``. Called once, before the first sample is produced."""

    def produce(self, todo: Todo, sink: SampleSink) -> None:
        """Store every (image, run) of ``todo.missing`` through ``sink`` (seeds from ``sink.seed(r)``)."""
        raise NotImplementedError(f"{type(self).__name__} must implement produce(todo, sink) or subclass SRMethod "
                                  f"and implement upscale(lr, generators)")

    def num_parameters(self) -> int | None:
        """Parameter count for the timing table, when the adapter can know it."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, scale={self.scale})"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class SRMethod(SampleSource):
    """Base class of ``upscale``-style SR methods.

    Contract: :meth:`upscale` takes ``lr`` of shape ``[B, 3, h, w]`` in [0, 1] and one
    ``torch.Generator`` per batch element and returns ``[B, 3, scale*h, scale*w]`` in [0, 1].
    All randomness must come from those generators, never from the global RNG, so that
    run ``r`` (seed ``seed + r``) can be reproduced alone and runs can be batched.
    The harness validates every output and names method, image and seed when it is wrong.
    """

    def upscale(self, lr: torch.Tensor, generators: Sequence[torch.Generator]) -> torch.Tensor:
        raise NotImplementedError

    def produce(self, todo: Todo, sink: SampleSink) -> None:
        """Up to ``todo.batch_size`` runs of one image per :meth:`upscale` call; inference time only
        (the LR decode and the PNG write are outside the timed span, synchronised on CUDA)."""
        device = todo.device
        self.load(device)
        for smp, runs in todo.by_image():
            lr = to_tensor(read_image(smp.lr_path)).unsqueeze(0).to(device)
            for start in range(0, len(runs), todo.batch_size):
                chunk = runs[start:start + todo.batch_size]
                gens = sink.generators(chunk, device)
                batch = lr.expand(len(chunk), -1, -1, -1).contiguous()
                _sync(device)
                t0 = time.perf_counter()
                with torch.inference_mode():
                    out = self.upscale(batch, gens)
                _sync(device)
                sink.put_batch(smp, chunk, out, time.perf_counter() - t0)
