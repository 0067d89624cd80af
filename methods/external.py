"""Methods that only their official repositories can run: a command template, run once per seed.

For each run ``r`` (seed ``seed + r``) with images still missing, the adapter

1. copies those LR images into ``<result folder>/staging/runRR/input/`` (file names kept, so the
   image id is the file stem, as every official script writes its outputs);
2. fills the command template and runs it through ``bash`` (in ``workdir``, ``{repo}`` by default),
   appending its stdout/stderr to ``<result folder>/external.log``, with a per-run timeout;
3. finds each output at ``output_pattern`` under ``{output_dir}``, checks that it decodes and has
   the size ``scale x`` LR, and stores it as ``samples/sampleRR/<id>.png``. Missing, ambiguous or
   mis-sized outputs raise a ValueError naming the image, the seed and the log file; the valid
   outputs of that run are kept, so a rerun only redoes what is missing.

Placeholders of ``cmd`` (``{{``/``}}`` write literal braces): ``{python} {repo} {input_dir}
{output_dir} {seed} {steps} {scale} {n_samples} {run}`` and one per entry of ``weights`` (paths,
checked before anything runs and listed by the weights doctor). Paths are shell-quoted.

With ``all_runs: true`` the command runs once for all N runs (``{n_samples}`` = N, ``{seed}`` =
the base seed) for repositories that draw N samples per image themselves; ``output_pattern`` then
uses ``{run}`` or ``{sample}`` to tell the runs apart. Those runs cannot be reproduced one by one.
``output_pattern`` may also use ``{index}`` (the image's position in the sorted staged folder) for
scripts that number their outputs, and ``inputs: hr`` stages the HR images instead, for
repositories that degrade the ground truth themselves (DDRM, DDNM).

Timing: the command's wall time per image-run. It includes process start-up and model loading,
which an external process does not let the harness exclude; results.json says so
(``timing.includes_model_loading``). Use ``all_runs`` or many images to amortise it.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import glob
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from benchmark.data import Sample, read_image, write_png_atomic
from benchmark.weights import WeightFile
from methods.base import METHODS, SRMethod

#: the official-repository presets served by :class:`External` (conf/method/<name>.yaml)
PRESETS = ("external", "stablesr", "diffbir", "pasd", "resshift", "seesr", "supir", "osediff", "sinsr", "addsr",
           "ddrm", "ddnm", "sr3", "ccsr_v1")


def _missing(value: Any) -> bool:
    return value in (None, "", "???")


class _Placeholders(dict):
    """``str.format_map`` mapping that names the unknown placeholder and the known ones."""

    def __missing__(self, key: str) -> str:
        raise ValueError(f"unknown placeholder {{{key}}} in method.cmd; known: "
                         + " ".join("{" + k + "}" for k in sorted(self)))


class External(SRMethod):
    """An official repository's inference command as an SR method (see the module docstring)."""

    def __init__(self, cmd: str, name: str = "external", repo: str | None = None, python: str | None = None,
                 scale: int = 4, steps: int | None = None, stochastic: bool = True, all_runs: bool = False,
                 output_pattern: str = "{id}.png", weights: Mapping[str, str] | None = None,
                 workdir: str | None = None, timeout: float = 3600.0, env: Mapping[str, Any] | None = None,
                 keep_staging: bool = False, num_params: int | None = None, inputs: str = "lr",
                 sources: Sequence[Mapping[str, Any]] | None = None) -> None:
        if _missing(cmd):
            raise ValueError(f"method {name!r} needs method.cmd, a command template such as "
                             f"'{{python}} {{repo}}/inference.py --input {{input_dir}} --output {{output_dir}} "
                             f"--seed {{seed}}'")
        if not float(timeout) > 0:
            raise ValueError(f"method.timeout must be > 0 seconds, got {timeout!r}")
        self.cmd, self.name = str(cmd), name
        self.repo = None if _missing(repo) else Path(str(repo)).expanduser().resolve()
        self.python = python or sys.executable
        self.scale, self.steps = int(scale), steps
        self.stochastic, self.all_runs = bool(stochastic), bool(all_runs)
        self.output_pattern = output_pattern
        self.weights = {k: str(v) for k, v in (weights or {}).items()}
        self.workdir = workdir
        self.timeout = float(timeout)
        self.env = {k: str(v) for k, v in (env or {}).items()}
        self.keep_staging = bool(keep_staging)
        self._num_params = num_params
        if inputs not in ("lr", "hr"):
            raise ValueError(f"method.inputs must be 'lr' or 'hr', got {inputs!r}")
        # "hr": repositories that degrade the ground truth themselves (DDRM, DDNM: bicubic SR of Table 3)
        self.inputs = inputs
        if self.all_runs and "{run" not in output_pattern and "{sample" not in output_pattern:
            raise ValueError(f"method {name!r}: with all_runs=true, output_pattern must tell runs apart with "
                             f"{{run}} or {{sample}}, got {output_pattern!r}")
        # fail on a malformed template now, not after the first run
        self._format(self.cmd, self._values(Path("in"), Path("out"), 0, 1, 0))

    # ------------------------------------------------------------------ configuration

    def _weight_paths(self) -> dict[str, Path]:
        base = {"repo": str(self.repo) if self.repo else ""}
        return {k: Path(v.format_map(base)).expanduser() for k, v in self.weights.items() if not _missing(v)}

    @classmethod
    def weight_files(cls, **config: Any) -> list[WeightFile]:
        name = config.get("name", "external")
        repo = config.get("repo")
        base = {"repo": "" if _missing(repo) else str(repo)}
        if config.get("sources"):  # the preset declares where its files come from (benchmark/sources.py)
            from benchmark.sources import weight_files as from_sources

            weights = config.get("weights") or {}
            paths = {f"weights.{k}": None if _missing(v) or ("{repo}" in str(v) and _missing(repo))
                     else Path(str(v).format_map(base)).expanduser() for k, v in weights.items()}
            declared = from_sources(config, paths)
            covered = {w.planned.entry.key for w in declared}
            rest = {k: v for k, v in weights.items() if f"weights.{k}" not in covered}
            return declared + cls.weight_files(**{**config, "sources": None, "weights": rest})
        out = []
        for key, value in (config.get("weights") or {}).items():
            path = Path(f"<method.weights.{key}>") if _missing(value) else Path(str(value).format_map(base))
            out.append(WeightFile(name=f"{name} {key}", url=config.get("weights_url") or "see conf/method/"
                                  f"{name}.yaml", path=path.expanduser(), needed_by=f"method {name}"))
        return out

    def load(self, device: torch.device) -> None:
        """Check the repository and the weight files before any command runs."""
        uses_repo = "{repo}" in self.cmd or self.workdir or any("{repo}" in v for v in self.weights.values())
        if self.repo is not None or uses_repo:
            if self.repo is None:
                raise ValueError(f"method {self.name!r} needs method.repo=<clone of the official repository> "
                                 f"(see conf/method/{self.name}.yaml for which repository and commit)")
            if not self.repo.is_dir():
                raise FileNotFoundError(f"method.repo={self.repo} of method {self.name!r} is not a directory: clone "
                                        f"the official repository there (see conf/method/{self.name}.yaml)")
        missing = [f"method.weights.{k}" for k, v in self.weights.items() if _missing(v)]
        missing += [f"{p} (method.weights.{k})" for k, p in self._weight_paths().items() if not p.exists()]
        if missing:
            raise FileNotFoundError(f"method {self.name!r} is missing weight files: " + ", ".join(missing)
                                    + f"; download them as conf/method/{self.name}.yaml describes")
        self.device = device

    def num_parameters(self) -> int | None:
        return self._num_params

    def upscale(self, lr: torch.Tensor, generators: Sequence[torch.Generator]) -> torch.Tensor:
        raise RuntimeError(f"method {self.name!r} runs an external command per run; the runner calls generate_runs")

    # ------------------------------------------------------------------ one command

    def _values(self, input_dir: Path, output_dir: Path, seed: int, n_samples: int, run: int) -> dict[str, Any]:
        q = lambda p: shlex.quote(str(p))  # noqa: E731
        values: dict[str, Any] = {
            "python": q(self.python), "repo": q(self.repo) if self.repo else "''", "input_dir": q(input_dir),
            "output_dir": q(output_dir), "seed": seed, "steps": "" if self.steps is None else self.steps,
            "scale": self.scale, "n_samples": n_samples, "run": run,
        }
        values.update({k: q(p) for k, p in self._weight_paths().items()})
        return values

    def _format(self, template: str, values: dict[str, Any]) -> str:
        try:
            return template.format_map(_Placeholders(values))
        except (IndexError, KeyError) as err:  # positional {} or a malformed field
            raise ValueError(f"method.cmd of {self.name!r} is not a valid template ({err!r}): use named "
                             f"placeholders and write literal braces as {{{{ and }}}}") from None
        except ValueError as err:
            raise ValueError(f"method.cmd of {self.name!r}: {err}") from None

    def _run_command(self, command: str, log_path: Path, what: str) -> float:
        """Run ``command`` through bash with the timeout; append its output to ``log_path``; return seconds."""
        cwd = self.workdir.format(repo=str(self.repo)) if self.workdir else (str(self.repo) if self.repo else None)
        env = {**os.environ, **self.env}
        if getattr(self, "device", None) is not None and self.device.type == "cuda" and self.device.index is not None:
            env.setdefault("CUDA_VISIBLE_DEVICES", str(self.device.index))
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "a") as log:
            stamp = _dt.datetime.now().isoformat(timespec="seconds")
            log.write(f"\n===== {stamp} {what}\n$ {command}\n")
            log.flush()
            t0 = time.perf_counter()
            # own session: on timeout the whole process group (bash and the repository's python) is killed
            proc = subprocess.Popen(["bash", "-c", command], cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
            try:
                rc = proc.wait(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                log.write(f"===== killed after the timeout of {self.timeout:g} s\n")
                raise TimeoutError(f"method {self.name!r}, {what}: the command ran past method.timeout="
                                   f"{self.timeout:g} s and was stopped; its output is in {log_path}") from None
            seconds = time.perf_counter() - t0
            log.write(f"===== exit code {rc} after {seconds:.2f} s\n")
        if rc != 0:
            tail = _tail(log_path)
            raise RuntimeError(f"method {self.name!r}, {what}: the command failed with exit code {rc}. "
                               f"Last lines of {log_path}:\n{tail}")
        return seconds

    # ------------------------------------------------------------------ the runner's hook

    def generate_runs(self, work: Mapping[int, Sequence[Sample]], seed: int, store: Any,
                      timing: dict[str, Any]) -> None:
        """Run the command for every run with missing images and store its validated outputs."""
        timing["includes_model_loading"] = True
        log_path = store.root / "external.log"
        if self.all_runs:
            runs = sorted(work)
            n = max(runs) + 1
            images = {s.id: s for r in runs for s in work[r]}
            stage = store.root / "staging" / "all_runs"
            in_dir, out_dir = self._stage(stage, list(images.values()))
            what = f"all {n} runs (seed {seed}, n_samples {n})"
            seconds = self._run_command(self._format(self.cmd, self._values(in_dir, out_dir, seed, n, 0)),
                                        log_path, what)
            done = 0
            errors: list[str] = []
            for r in runs:
                done += self._collect(out_dir, work[r], r, seed + r, store, log_path, errors)
            self._account(timing, seconds, done, n * len(images))
            self._finish(stage, errors)
            return
        for r in sorted(work):
            stage = store.root / "staging" / f"run{r:02d}"
            in_dir, out_dir = self._stage(stage, work[r])
            what = f"run {r} (seed {seed + r}, {len(work[r])} image(s))"
            seconds = self._run_command(self._format(self.cmd, self._values(in_dir, out_dir, seed + r, 1, r)),
                                        log_path, what)
            errors = []
            done = self._collect(out_dir, work[r], r, seed + r, store, log_path, errors)
            self._account(timing, seconds, done, len(work[r]))
            self._finish(stage, errors)
        with contextlib.suppress(OSError):  # drop the empty staging folder
            (store.root / "staging").rmdir()

    def _stage(self, stage: Path, samples: Sequence[Sample]) -> tuple[Path, Path]:
        if stage.exists():
            shutil.rmtree(stage)  # leftovers of an interrupted command must not count as its outputs
        in_dir, out_dir = stage / "input", stage / "output"
        in_dir.mkdir(parents=True)
        out_dir.mkdir()
        for smp in samples:
            src = smp.lr_path if self.inputs == "lr" else smp.hr_path
            if src is None:
                raise ValueError(f"method {self.name!r} reads HR images (method.inputs=hr) but image {smp.id!r} has none")
            shutil.copyfile(src, in_dir / f"{smp.id}{src.suffix.lower()}")
        return in_dir, out_dir

    @staticmethod
    def _account(timing: dict[str, Any], seconds: float, done: int, expected: int) -> None:
        # seconds per image-run of this command, credited to the outputs that were stored
        if expected:
            timing["image_runs"] += done
            timing["seconds"] += seconds * done / expected

    def _finish(self, stage: Path, errors: list[str]) -> None:
        if errors:
            raise ValueError(f"method {self.name!r} wrote unusable outputs (the valid ones were stored; the command "
                             f"outputs are kept in {stage / 'output'}):\n  - " + "\n  - ".join(errors))
        if not self.keep_staging:
            shutil.rmtree(stage, ignore_errors=True)

    def _collect(self, out_dir: Path, samples: Sequence[Sample], run: int, seed: int, store: Any, log_path: Path,
                 errors: list[str]) -> int:
        """Validate and store the outputs of one run; append a message per bad image; return how many were stored."""
        stored = 0
        expected: set[Path] = set()
        order = {s.id: i for i, s in enumerate(sorted(samples, key=lambda s: s.id))}
        for smp in samples:
            # {index}: position in the sorted staged folder, for scripts that number their outputs
            pattern = self.output_pattern.format(id=smp.id, run=run, sample=run, seed=seed, index=order[smp.id])
            matches = sorted(Path(p) for p in glob.glob(str(out_dir / pattern), recursive=True))
            where = f"image {smp.id!r}, seed {seed} (run {run})"
            if not matches:
                errors.append(f"{where}: no output matches {out_dir / pattern}")
                continue
            if len(matches) > 1:
                errors.append(f"{where}: {len(matches)} outputs match {out_dir / pattern}: "
                              + ", ".join(p.name for p in matches[:5]) + "; make method.output_pattern specific")
                continue
            expected.add(matches[0])
            try:
                arr = read_image(matches[0])
            except ValueError as err:
                errors.append(f"{where}: {matches[0]} is unreadable ({err})")
                continue
            want = (smp.lr_size[0] * self.scale, smp.lr_size[1] * self.scale)
            if arr.shape[:2] != want:
                errors.append(f"{where}: {matches[0].name} is {arr.shape[1]}x{arr.shape[0]}, expected "
                              f"{want[1]}x{want[0]} (x{self.scale} of the {smp.lr_size[1]}x{smp.lr_size[0]} LR image)")
                continue
            write_png_atomic(store.sample_path(smp.id, run), arr)
            stored += 1
        if errors:
            others = sorted(p.relative_to(out_dir).as_posix() for p in out_dir.rglob("*")
                            if p.is_file() and p not in expected)
            if others:
                errors.append("other files the command wrote (misnamed outputs?): " + ", ".join(others[:10])
                              + (" ..." if len(others) > 10 else "") + f"; expected names follow method.output_pattern="
                              f"{self.output_pattern!r}; log: {log_path}")
        return stored


def _tail(path: Path, lines: int = 20) -> str:
    text = path.read_text(errors="replace").splitlines()
    return "\n".join("    " + line for line in text[-lines:])


for _preset in PRESETS:
    METHODS.add(_preset, External)
