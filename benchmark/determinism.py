"""``check_determinism=true``: a method declared deterministic must give identical outputs twice.

A deterministic method runs once and gets no G-STD / L-STD, so if it is in fact not
deterministic (non-deterministic GPU kernels built on atomic adds, ``cudnn.benchmark`` picking different
algorithms, a forgotten global-RNG call) its
instability goes unreported. The check runs every image twice more with the seed of run 0
and compares:

* the two fresh outputs with each other, bit for bit (floats), and
* the first fresh output, quantised as stored, with the stored ``sample00`` PNG (which is what
  gets scored, possibly made by an earlier, resumed process).

Any difference raises ValueError naming method and image, with the size of the difference.
"""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np
import torch

from benchmark.data import Sample
from benchmark.images import read_image, to_tensor, to_uint8
from benchmark.store import Store
from benchmark.sink import run_seed
from methods.base import SampleSource, SRMethod

log = logging.getLogger("srbench")

FIX = ("make it deterministic (torch.use_deterministic_algorithms(True), torch.backends.cudnn.benchmark=False, "
       "no global-RNG calls), or declare it stochastic so that it runs `runs` times and gets G-STD and L-STD")


def check(method: SampleSource, samples: Sequence[Sample], store: Store, seed: int, device: torch.device,
          loaded: bool) -> None:
    """Run ``method`` twice per image and compare (see the module doc); ``loaded``: ``load`` already called."""
    if method.stochastic:
        log.info("check_determinism: method %s is stochastic; nothing to check", method.name)
        return
    if not isinstance(method, SRMethod):
        log.warning("check_determinism: method %s does not compute through upscale (precomputed outputs or an "
                    "external command), so it cannot be rerun here; not checked", method.name)
        return
    if not loaded:
        method.load(device)
    log.info("check_determinism: running %s twice on %d image(s)", method.name, len(samples))
    for smp in samples:
        lr = to_tensor(read_image(smp.lr_path)).unsqueeze(0).to(device)
        outs = []
        for _ in range(2):
            gens = [torch.Generator(device=device).manual_seed(run_seed(seed, 0))]
            with torch.inference_mode():
                outs.append(method.upscale(lr.clone(), gens).detach().float().cpu())
        where = f"method {method.name!r} is declared deterministic but gave different outputs for image {smp.id!r}"
        if outs[0].shape != outs[1].shape:
            raise ValueError(f"{where} (shapes {list(outs[0].shape)} and {list(outs[1].shape)}): {FIX}")
        if not torch.equal(outs[0], outs[1]):
            diff = (outs[0] - outs[1]).abs()
            raise ValueError(f"{where} (seed {seed}, two calls in a row): {int((diff > 0).sum())} of "
                             f"{diff.numel()} values differ, by up to {float(diff.max()):.3g}: {FIX}")
        stored = read_image(store.sample_path(smp.id, 0))
        fresh = to_uint8(outs[0][0])
        if fresh.shape != stored.shape or not np.array_equal(fresh, stored):
            n = int((fresh != stored).sum()) if fresh.shape == stored.shape else fresh.size
            raise ValueError(f"{where} (seed {seed}): a new call differs from the stored "
                             f"{store.sample_path(smp.id, 0)} in {n} 8-bit value(s): {FIX}")
    log.info("check_determinism: %s gave identical outputs", method.name)
