"""Thin wrapper that seeds an official repository's script, then runs it unchanged.

Usage (the ``{seeded}`` placeholder of ``method.cmd`` expands to the first four words)::

    <python> external_seed.py --seed S [--sorted-listdir] [--stub MODULE ...] -- script.py [script args]

It runs with the *repository's* interpreter, so it imports nothing from srbench. Before the
script starts it

- seeds Python's ``random``, NumPy's global generator and torch's CPU and CUDA generators with
  ``S`` (for scripts that never seed, or parse ``--seed`` and ignore it: OSEDiff, SR3); NumPy and
  torch are seeded right after the script first imports them, which is equivalent (an import draws
  nothing) and spares scripts that never use torch its import time;
- with ``--sorted-listdir``, makes ``os.listdir`` and ``os.scandir`` (hence ``os.walk``) return
  entries sorted by name, for scripts that process files in directory order (StableSR's
  ``os.listdir``, CCSR's ``os.walk``): that order is the file system's hash order, which differs
  between machines, and with noise drawn image after image it decides which noise each image gets;
- with ``--stub MODULE``, puts an empty module of that name in ``sys.modules`` whose attributes
  are no-op functions, for a trailing step that cannot run offline and does not touch the outputs
  (SinSR's ``evaluate`` module, which downloads CLIPIQA/MUSIQ weights after all images are written).

The script then runs as ``__main__`` with ``sys.argv = [script, *args]`` and its own folder first
on ``sys.path``, exactly as ``python script.py args`` would run it.
"""

from __future__ import annotations

import importlib.abc
import os
import random
import runpy
import sys
import types


def _seed_numpy(seed: int):
    return lambda np: np.random.seed(seed % 2**32)


def _seed_torch(seed: int):
    return lambda torch: torch.manual_seed(seed)  # seeds every CUDA device too (torch.manual_seed docs)


class _SeedOnImport(importlib.abc.MetaPathFinder):
    """Seeds NumPy / torch right after the script first imports them.

    Equivalent to seeding before the script starts (importing draws nothing), without making
    scripts that never use them pay for importing torch.
    """

    def __init__(self, seeders: dict) -> None:
        self.seeders = seeders  # module name -> function(module)

    def find_spec(self, name, path, target=None):
        if name not in self.seeders:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None
        seeder, loader = self.seeders.pop(name), spec.loader
        exec_module = loader.exec_module

        def exec_and_seed(module):
            exec_module(module)
            seeder(module)

        loader.exec_module = exec_and_seed
        return spec


def _seed(seed: int) -> None:
    random.seed(seed)
    seeders = {"numpy": _seed_numpy(seed), "torch": _seed_torch(seed)}
    for name in list(seeders):
        if name in sys.modules:  # already imported (by site customisation): seed now
            seeders.pop(name)(sys.modules[name])
    sys.meta_path.insert(0, _SeedOnImport(seeders))


class _SortedScandir:
    """``os.scandir`` with entries sorted by name; usable as iterator and context manager."""

    def __init__(self, entries: list) -> None:
        self._it = iter(entries)

    def __iter__(self):
        return self

    def __next__(self):
        return next(self._it)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._it = iter(())


def _sort_listings() -> None:
    listdir, scandir = os.listdir, os.scandir

    def sorted_listdir(path=".") -> list:
        return sorted(listdir(path))

    def sorted_scandir(path="."):
        with scandir(path) as it:
            entries = sorted(it, key=lambda e: e.name)
        return _SortedScandir(entries)

    os.listdir = sorted_listdir
    os.scandir = sorted_scandir  # os.walk looks os.scandir up at call time


def _stub(name: str) -> None:
    module = types.ModuleType(name)
    module.__getattr__ = lambda attr: (lambda *a, **k: None)  # every function is a no-op
    sys.modules[name] = module


def main(argv: list[str]) -> None:
    if "--" not in argv:
        raise SystemExit("external_seed.py: usage: --seed S [--sorted-listdir] [--stub MODULE] -- script.py [args]")
    cut = argv.index("--")
    opts, rest = argv[:cut], argv[cut + 1:]
    seed, stubs, sort = None, [], False
    i = 0
    while i < len(opts):
        if opts[i] == "--seed":
            seed, i = int(opts[i + 1]), i + 2
        elif opts[i] == "--stub":
            stubs.append(opts[i + 1])
            i += 2
        elif opts[i] == "--sorted-listdir":
            sort, i = True, i + 1
        else:
            raise SystemExit(f"external_seed.py: unknown option {opts[i]!r}")
    if seed is None or not rest:
        raise SystemExit("external_seed.py: --seed S and a script after -- are required")
    script = rest[0]
    _seed(seed)
    if sort:
        _sort_listings()
    for name in stubs:
        _stub(name)
    sys.argv = [script, *rest[1:]]
    sys.path[0] = os.path.dirname(os.path.abspath(script))
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main(sys.argv[1:])
