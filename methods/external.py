"""Methods that only their official repositories can run: a command template, run per seed.

How one run ``r`` (seed ``seed + r``) is produced
-------------------------------------------------
1. **Staging.** The images are written as PNG (whatever the data set's format, decoded by the one
   rule of :func:`benchmark.data.read_image`) into a fresh ``<result folder>/staging/<what>-<pid>/
   input/`` under *numbered* names ``000000.png, 000001.png, ...`` (position of the image id in
   sorted order; at least 6 digits, all of one width). Such names sort identically as strings, as
   numbers and in "natural" order, so a repository that numbers its outputs by sorted file name
   (DDRM, DDNM, SR3) and srbench agree on every number. ``index.json`` in the staging folder and
   ``external.log`` record the number <-> id map.
2. **Command.** ``method.cmd`` is filled in and run through ``bash`` in ``workdir`` (``{repo}`` by
   default), its output appended to ``<result folder>/external.log``, with ``method.timeout``.
   Every placeholder is substituted already shell-quoted; a template that quotes a placeholder
   itself (``"{output_dir}"``) is normalised to the bare placeholder, and a placeholder inside a
   longer quoted string is refused (inside double quotes, ``$(...)`` in a path would run).
3. **Outputs.** Each output is found at ``output_pattern`` under ``{output_dir}``; the values put
   into the pattern are glob-escaped, so they match literally. It must decode and be ``scale x``
   the LR size. Two checks catch scripts that do not do what they claim: outputs whose thumbnail
   is much closer to *another* staged input than to their own (shuffled or shifted numbering) and,
   for a stochastic method, a run whose outputs are bit-identical to another seed's (a seed flag
   that is parsed but never used). Errors name the image, the seed and the log file; the valid
   outputs of a failed run are not stored (see the resume rule).

Resume rule: resume equals an uninterrupted run
-----------------------------------------------
Most official scripts seed once and then draw noise image after image, so the noise an image gets
depends on which images come before it in the folder. Hence **a run is the unit of work**: when
any image of run ``r`` is missing, the command runs again over *all* images of the data set with
seed ``seed + r`` and all of run ``r``'s outputs are stored (those kept from before are replaced
by the regenerated ones: identical where the repository is deterministic for a seed; on a GPU with
non-deterministic kernels the run still stays one consistent draw). With ``per_image: true`` the unit is one (image, run): each
image is staged alone and runs in its own process seeded with ``seed + r``, so resuming any subset
equals the uninterrupted run (at the cost of one model load per image-run). With ``all_runs:
true`` the unit is the whole result: one command draws all N runs of all images.

Processes: the command runs in its own process group under a guard
(:mod:`methods.external_guard`); the group is killed when srbench stops in any way (an exception,
Ctrl-C, SIGTERM, and SIGKILL through the guard), and staging folders left by a dead run are
removed at the next start (the result folder's lock guarantees that no live run owns them).

Placeholders of ``cmd`` (``{{``/``}}`` write literal braces): ``{python} {repo} {input_dir}
{output_dir} {work_dir} {seed} {steps} {scale} {n_samples} {run}``, ``{seeded}`` (runs the script
that follows ``--`` through :mod:`methods.external_seed`, which seeds random/NumPy/torch with the
run seed first) and one per entry of ``weights``. Placeholders of ``output_pattern``: ``{id}``
(the staged file stem, e.g. ``000003``), ``{index}`` (that number), ``{index1}`` (the number + 1,
for scripts that count from 1), ``{run}``/``{sample}``, ``{seed}``.

Timing: the command's wall time per image-run, including process start-up and model loading,
which an external process does not let the harness exclude (``timing.includes_model_loading``).
"""

from __future__ import annotations

import datetime as _dt
import glob
import json
import logging
import os
import shlex
import shutil
import signal
import string
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from benchmark.data import Sample
from benchmark.errors import MissingFilesError, UserError
from benchmark.images import read_image, write_png_atomic
from benchmark.sink import SampleSink, Todo, read_output
from benchmark.sources import weight_files as from_sources
from benchmark.weights import WeightFile
from methods.base import SampleSource

log = logging.getLogger("srbench")

HERE = Path(__file__).resolve().parent
SEED_WRAPPER = HERE / "external_seed.py"
GUARD = HERE / "external_guard.py"

#: placeholders of ``cmd`` (besides one per weight)
CMD_FIELDS = ("python", "repo", "input_dir", "output_dir", "work_dir", "seed", "steps", "scale", "n_samples", "run",
              "seeded")
#: placeholders of ``output_pattern``
PATTERN_FIELDS = ("id", "index", "index1", "run", "sample", "seed")
#: a thumbnail's side for the input <-> output correspondence check (pixels)
THUMB = 16


class CommandFailed(UserError, RuntimeError):
    """The repository's command exited non-zero; the message names the run, the exit code and the log."""


class CommandTimeout(UserError, TimeoutError):
    """The repository's command ran past ``method.timeout`` and was stopped with its process group."""


def _missing(value: Any) -> bool:
    return value in (None, "", "???")


class _Placeholders(dict):
    """``str.format_map`` mapping that names the unknown placeholder and the known ones."""

    def __init__(self, values: Mapping[str, Any], what: str) -> None:
        super().__init__(values)
        self.what = what

    def __missing__(self, key: str) -> str:
        raise UserError(f"unknown placeholder {{{key}}} in {self.what}; known: "
                         + " ".join("{" + k + "}" for k in sorted(self)))


def normalise_template(cmd: str, name: str = "external") -> str:
    """Return ``cmd`` with quotes around whole placeholders removed; refuse partly quoted ones.

    srbench substitutes every placeholder already shell-quoted, so ``"{output_dir}"`` would put a
    single-quoted path inside double quotes, where ``$(...)`` and backticks in the path run. A
    placeholder that is exactly wrapped (``"{x}"`` or ``'{x}'``) is unwrapped; one inside a longer
    quoted word (``"{output_dir}/x"``) raises ValueError with the fix (``{output_dir}/x``, which
    bash joins into one word). Quote state follows bash: backslash escapes outside quotes and
    inside double quotes, nothing is special inside single quotes.
    """
    try:
        parts = list(string.Formatter().parse(cmd))
    except ValueError as err:
        raise UserError(f"method.cmd of {name!r} is not a valid template ({err}): use named placeholders "
                         f"and write literal braces as {{{{ and }}}}") from None
    out: list[str] = []
    quote: str | None = None
    strip_next: str | None = None  # closing quote to drop at the start of the next literal
    for k, (literal, field, spec, conv) in enumerate(parts):
        if strip_next is not None:
            literal = literal[1:]  # the closing quote of an unwrapped placeholder (checked below)
            quote, strip_next = None, None
        opened_at = -1
        i = 0
        while i < len(literal):
            c = literal[i]
            if quote is None:
                if c == "\\":
                    i += 1
                elif c in "'\"":
                    quote, opened_at = c, i
            elif quote == "'":
                if c == "'":
                    quote = None
            elif c == "\\":
                i += 1
            elif c == '"':
                quote = None
            i += 1
        if field is None:
            out.append(_escape_braces(literal))
            continue
        if field == "" or field.isdigit():
            raise UserError(f"method.cmd of {name!r} has a positional placeholder {{{field}}}: use named ones "
                             f"({' '.join('{' + f + '}' for f in CMD_FIELDS)} or a weight name)")
        text = "{" + field + ("!" + conv if conv else "") + (":" + spec if spec else "") + "}"
        if quote is not None:
            nxt = parts[k + 1][0] if k + 1 < len(parts) else ""
            if opened_at == len(literal) - 1 and nxt.startswith(quote):
                literal = literal[:-1]  # drop the opening quote; the closing one goes with the next literal
                strip_next = quote
            else:
                raise UserError(
                    f"method.cmd of {name!r} puts the placeholder {{{field}}} inside a quoted string "
                    f"({quote}...{quote}). srbench substitutes every placeholder already quoted for the shell, "
                    f"and inside double quotes a path containing $(...) would run: write it unquoted, e.g. "
                    f"{{{field}}}/file instead of {quote}{{{field}}}/file{quote}")
        out.append(_escape_braces(literal) + text)
    return "".join(out)


def _escape_braces(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


class External(SampleSource):
    """An official repository's inference command as an SR method (see the module docstring).

    Errors: ValueError for a malformed template or option (at construction), FileNotFoundError
    for a missing repository, weight file or required local edit (in :meth:`load`, before any
    command runs), RuntimeError/TimeoutError/ValueError naming image, seed and log for a failed run.
    """

    def __init__(self, cmd: str, name: str = "external", repo: str | None = None, python: str | None = None,
                 scale: int = 4, steps: int | None = None, stochastic: bool = True, all_runs: bool = False,
                 per_image: bool = False, output_pattern: str = "{id}.png", weights: Mapping[str, str] | None = None,
                 workdir: str | None = None, timeout: float = 3600.0, env: Mapping[str, Any] | None = None,
                 keep_staging: bool = False, num_params: int | None = None, inputs: str = "lr",
                 edits: Sequence[Mapping[str, Any]] | None = None, single_gpu: bool = False, min_size: int = 1,
                 check_correspondence: bool = True, sources: Sequence[Mapping[str, Any]] | None = None) -> None:
        if _missing(cmd):
            raise UserError(f"method {name!r} needs method.cmd, a command template such as "
                             f"'{{python}} {{repo}}/inference.py --input {{input_dir}} --output {{output_dir}} "
                             f"--seed {{seed}}'")
        if not float(timeout) > 0:
            raise UserError(f"method.timeout must be > 0 seconds, got {timeout!r}")
        self.name = name
        self.cmd = normalise_template(str(cmd), name)
        self.repo = None if _missing(repo) else Path(str(repo)).expanduser().resolve()
        self.python = python or sys.executable
        self.scale, self.steps = int(scale), steps
        self.stochastic, self.all_runs, self.per_image = bool(stochastic), bool(all_runs), bool(per_image)
        if self.all_runs and self.per_image:
            raise UserError(f"method {name!r}: all_runs and per_image exclude each other (one command for all "
                             f"runs vs one command per image-run); set one of them false")
        self.output_pattern = output_pattern
        self.weights = {k: str(v) for k, v in (weights or {}).items()}
        self.workdir = workdir
        self.timeout = float(timeout)
        self.env = {k: str(v) for k, v in (env or {}).items()}
        self.keep_staging = bool(keep_staging)
        self._num_params = num_params
        if inputs not in ("lr", "hr"):
            raise UserError(f"method.inputs must be 'lr' or 'hr', got {inputs!r}")
        # "hr": repositories that degrade the ground truth themselves (DDRM, DDNM: bicubic SR of Table 3)
        self.inputs = inputs
        self.edits = [dict(e) for e in (edits or [])]
        for e in self.edits:
            if not e.get("file") or not e.get("pinned"):
                raise UserError(f"method {name!r}: every entry of method.edits needs 'file' (relative to the "
                                 f"repository) and 'pinned' (the text the edit removes), got {e!r}")
        self.single_gpu = bool(single_gpu)
        self.min_size = int(min_size)
        self.check_correspondence = bool(check_correspondence)
        if self.all_runs and "{run" not in output_pattern and "{sample" not in output_pattern:
            raise UserError(f"method {name!r}: with all_runs=true, output_pattern must tell runs apart with "
                             f"{{run}} or {{sample}}, got {output_pattern!r}")
        # fail on a malformed template now, not after the first run
        self._format(self.cmd, self._values(Path("in"), Path("out"), Path("work"), 0, 1, 0), "method.cmd")
        self._pattern("000000", 0, 0, 0)

    # ------------------------------------------------------------------ configuration

    def _weight_paths(self) -> dict[str, Path]:
        return {k: _resolve_weight(v, self.repo) for k, v in self.weights.items() if not _missing(v)}

    @classmethod
    def preflight_problems(cls, **config: Any) -> list[str]:
        """Problems found from the config alone, before any work (the run's preflight lists them with
        everything else it lacks): an official-repository preset needs ``method.repo``."""
        cmd, workdir, edits = str(config.get("cmd") or ""), config.get("workdir"), config.get("edits") or []
        weights = config.get("weights") or {}
        uses_repo = ("{repo}" in cmd or bool(workdir) or bool(edits)
                     or any("{repo}" in str(v) for v in weights.values()))
        if uses_repo and _missing(config.get("repo")):
            name = config.get("name", "external")
            return [f"method {name!r} needs method.repo=<clone of the official repository> (which repository and "
                    f"commit: conf/method/{name}.yaml)"]
        return []

    @classmethod
    def weight_files(cls, **config: Any) -> list[WeightFile]:
        name = config.get("name", "external")
        repo = None if _missing(config.get("repo")) else Path(str(config["repo"])).expanduser()
        if config.get("sources"):  # the preset declares where its files come from (benchmark/sources.py)
            weights = config.get("weights") or {}
            paths = {f"weights.{k}": None if _missing(v) or ("{repo}" in str(v) and repo is None)
                     else _resolve_weight(str(v), repo) for k, v in weights.items()}
            declared = from_sources(config, paths)
            covered = {w.planned.entry.key for w in declared}
            rest = {k: v for k, v in weights.items() if f"weights.{k}" not in covered}
            return declared + cls.weight_files(**{**config, "sources": None, "weights": rest})
        out = []
        for key, value in (config.get("weights") or {}).items():
            path = Path(f"<method.weights.{key}>") if _missing(value) else _resolve_weight(str(value), repo)
            out.append(WeightFile(name=f"{name} {key}", url=config.get("weights_url") or "see conf/method/"
                                  f"{name}.yaml", path=path, needed_by=f"method {name}"))
        return out

    def load(self, device: torch.device) -> None:
        """Check the repository, its required local edits and the weight files before any command runs."""
        uses_repo = ("{repo}" in self.cmd or self.workdir or self.edits
                     or any("{repo}" in v for v in self.weights.values()))
        if self.repo is not None or uses_repo:
            if self.repo is None:
                raise MissingFilesError(f"method {self.name!r} needs method.repo=<clone of the official repository> "
                                        f"(see conf/method/{self.name}.yaml for which repository and commit)")
            if not self.repo.is_dir():
                raise MissingFilesError(f"method.repo={self.repo} of method {self.name!r} is not a directory: clone "
                                        f"the official repository there (see conf/method/{self.name}.yaml)")
        self._check_edits()
        missing = [f"method.weights.{k}" for k, v in self.weights.items() if _missing(v)]
        missing += [f"{p} (method.weights.{k})" for k, p in self._weight_paths().items() if not p.exists()]
        if missing:
            raise MissingFilesError(f"method {self.name!r} is missing weight files: " + ", ".join(missing)
                                    + f"; download them as conf/method/{self.name}.yaml describes")
        self.device = device

    def _check_edits(self) -> None:
        """Each local edit the preset requires: the file exists and no longer holds the pinned text."""
        problems = []
        for e in self.edits:
            path = self.repo / e["file"]
            where = f"{e['file']}" + (f" line {e['line']}" if e.get("line") else "")
            if not path.is_file():
                problems.append(f"{where}: {path} does not exist (is method.repo the right clone and commit?)")
                continue
            if str(e["pinned"]) in path.read_text(errors="replace"):
                problems.append(f"{where} still holds {str(e['pinned'])!r}: " + str(e.get("why") or "edit it"))
        if problems:
            raise MissingFilesError(f"method {self.name!r} needs local edits of {self.repo} before it can run "
                                    f"(see conf/method/{self.name}.yaml):\n  - " + "\n  - ".join(problems))

    def num_parameters(self) -> int | None:
        return self._num_params

    # ------------------------------------------------------------------ one command

    def _values(self, input_dir: Path, output_dir: Path, work_dir: Path, seed: int, n_samples: int,
                run: int) -> dict[str, Any]:
        q = lambda p: shlex.quote(str(p))
        values: dict[str, Any] = {
            "python": q(self.python), "repo": q(self.repo) if self.repo else "''", "input_dir": q(input_dir),
            "output_dir": q(output_dir), "work_dir": q(work_dir), "seed": int(seed),
            "steps": "" if self.steps is None else q(self.steps), "scale": int(self.scale),
            "n_samples": int(n_samples), "run": int(run),
            "seeded": f"{q(self.python)} {q(SEED_WRAPPER)} --seed {int(seed)}",
        }
        values.update({k: q(p) for k, p in self._weight_paths().items()})
        return values

    def _format(self, template: str, values: Mapping[str, Any], what: str) -> str:
        try:
            return template.format_map(_Placeholders(values, what))
        except (IndexError, KeyError) as err:  # positional {} or a malformed field
            raise UserError(f"{what} of {self.name!r} is not a valid template ({err!r}): use named "
                             f"placeholders and write literal braces as {{{{ and }}}}") from None
        except ValueError as err:
            raise UserError(f"method {self.name!r}: {err}") from None

    def _pattern(self, stem: str, index: int, run: int, seed: int) -> str:
        """``output_pattern`` with glob-escaped values: substituted text always matches literally."""
        return self._format(self.output_pattern, {"id": glob.escape(stem), "index": index, "index1": index + 1,
                                                  "run": run, "sample": run, "seed": seed}, "method.output_pattern")

    def _environment(self) -> dict[str, str]:
        env = {**os.environ, **self.env}
        device = getattr(self, "device", None)
        if device is not None and device.type == "cuda":
            index = device.index or 0
            visible = [v for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
            if self.single_gpu:
                # scripts that assert one visible GPU (SinSR) or go distributed with several (ResShift)
                env["CUDA_VISIBLE_DEVICES"] = visible[index] if index < len(visible) else str(index)
            elif device.index is not None:
                env.setdefault("CUDA_VISIBLE_DEVICES", str(device.index))
        return env

    def _run_command(self, command: str, log_path: Path, what: str, expected: int = 0,
                     out_dir: Path | None = None) -> float:
        """Run ``command`` through bash in its own process group under the guard; return seconds.

        The group is killed on a timeout and on any exit of this function other than the
        command's own end (an exception, KeyboardInterrupt, SystemExit).
        """
        cwd = self.workdir.format(repo=str(self.repo)) if self.workdir else (str(self.repo) if self.repo else None)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "a") as logf:
            stamp = _dt.datetime.now().isoformat(timespec="seconds")
            logf.write(f"\n===== {stamp} {what}\n$ {command}\n")
            logf.flush()
            t0 = time.perf_counter()
            proc = subprocess.Popen([sys.executable, str(GUARD), str(os.getpid()), "bash", "-c", command], cwd=cwd,
                                    env=self._environment(), stdout=logf, stderr=subprocess.STDOUT,
                                    start_new_session=True)
            finished = False
            try:
                try:
                    rc = proc.wait(timeout=self.timeout)
                    finished = True
                except subprocess.TimeoutExpired:
                    logf.write(f"===== killed after the timeout of {self.timeout:g} s\n")
                    raise CommandTimeout(f"method {self.name!r}, {what}: the command ran past method.timeout="
                                       f"{self.timeout:g} s and was stopped; its output is in {log_path}") from None
            finally:
                if not finished:  # timeout, Ctrl-C, SIGTERM turned into an exception: no orphan keeps writing
                    _kill_group(proc)
            seconds = time.perf_counter() - t0
            logf.write(f"===== exit code {rc} after {seconds:.2f} s\n")
        if rc != 0:
            tail = _tail(log_path)
            written = sum(1 for p in out_dir.rglob("*") if p.is_file()) if out_dir is not None else 0
            after = (f" It had written {written} file(s) for {expected} expected output(s): a step after inference "
                     f"failed (an evaluation step that needs the network?); its outputs are not stored. Make the "
                     f"command end after the last output (see conf/method/sinsr.yaml for a stubbed step)."
                     if expected and written >= expected else "")
            raise CommandFailed(f"method {self.name!r}, {what}: the command failed with exit code {rc}.{after} "
                               f"Last lines of {log_path}:\n{tail}")
        return seconds

    # ------------------------------------------------------------------ the sample-source contract

    def produce(self, todo: Todo, sink: SampleSink) -> None:
        """Produce every missing (image, run) of ``todo`` by the resume rule of the module docstring.

        Run ``r`` uses ``sink.seed(r)``; outputs go through ``sink.put_array`` (size check, atomic
        write, timing), replacing the kept samples of a regenerated run without counting them again;
        the staging folders and ``external.log`` live in the result folder ``sink.root``.
        """
        self.load(todo.device)
        sink.timing["includes_model_loading"] = True  # an external process loads its model per command
        missing = {r: {s.id for s in v} for r, v in todo.by_run().items()}
        if not missing:
            return
        everything = sorted(todo.samples, key=lambda s: s.id)
        index = {s.id: i for i, s in enumerate(everything)}
        width = max(6, len(str(len(everything) - 1)))
        staging = sink.root / "staging"
        self._clear_stale(staging)
        log_path = sink.root / "external.log"
        if self.all_runs:
            n = todo.runs
            stage = staging / f"all_runs-{os.getpid()}"
            dirs = self._stage(stage, everything, index, width)
            what = f"all {n} runs (seed {sink.seed(0)}, n_samples {n}, {len(everything)} image(s))"
            seconds = self._run_command(self._format(self.cmd, self._values(*dirs, sink.seed(0), n, 0), "method.cmd"),
                                        log_path, what, len(everything) * n, dirs[1])
            errors: list[str] = []
            found = {r: self._collect(dirs[1], stage / "input", everything, index, width, r, sink.seed(r), log_path,
                                      errors) for r in range(n)}
            self._check_seed_effect(found, sink, errors)
            self._store_all(found, missing, sink, seconds, len(everything) * n, errors, stage)
        elif self.per_image:
            for r in sorted(missing):
                for smp in [s for s in everything if s.id in missing[r]]:
                    stage = staging / f"run{r:02d}-{index[smp.id]:0{width}d}-{os.getpid()}"
                    dirs = self._stage(stage, [smp], index, width)
                    what = f"run {r} (seed {sink.seed(r)}), image {smp.id!r} alone"
                    seconds = self._run_command(self._format(self.cmd, self._values(*dirs, sink.seed(r), 1, r),
                                                             "method.cmd"), log_path, what, 1, dirs[1])
                    errors = []
                    found = {r: self._collect(dirs[1], stage / "input", [smp], index, width, r, sink.seed(r), log_path,
                                              errors)}
                    self._check_seed_effect(found, sink, errors)
                    self._store_all(found, missing, sink, seconds, 1, errors, stage)
        else:
            for r in sorted(missing):
                stage = staging / f"run{r:02d}-{os.getpid()}"
                dirs = self._stage(stage, everything, index, width)
                what = (f"run {r} (seed {sink.seed(r)}, {len(everything)} image(s), {len(missing[r])} of them missing: "
                        f"the whole run is regenerated)")
                seconds = self._run_command(self._format(self.cmd, self._values(*dirs, sink.seed(r), 1, r),
                                                         "method.cmd"), log_path, what, len(everything), dirs[1])
                errors = []
                found = {r: self._collect(dirs[1], stage / "input", everything, index, width, r, sink.seed(r),
                                          log_path, errors)}
                self._check_seed_effect(found, sink, errors)
                self._store_all(found, missing, sink, seconds, len(everything), errors, stage)
        if not self.keep_staging:
            try:
                staging.rmdir()  # only when empty
            except OSError:
                pass

    def _clear_stale(self, staging: Path) -> None:
        """Remove staging folders of earlier, dead runs (this result folder's lock is held by us)."""
        if not staging.is_dir():
            return
        for child in staging.iterdir():
            if child.name.endswith(f"-{os.getpid()}"):
                continue
            log.info("removing staging folder %s left by an earlier run", child)
            shutil.rmtree(child, ignore_errors=True)

    def _stage(self, stage: Path, samples: Sequence[Sample], index: Mapping[str, int],
               width: int) -> tuple[Path, Path, Path]:
        """Write ``samples`` as numbered PNGs into ``stage/input``; return (input, output, work) folders."""
        if stage.exists():
            shutil.rmtree(stage)
        in_dir, out_dir, work_dir = stage / "input", stage / "output", stage / "work"
        for d in (in_dir, out_dir, work_dir):
            d.mkdir(parents=True)
        names = {}
        for smp in samples:
            src = smp.lr_path if self.inputs == "lr" else smp.hr_path
            if src is None:
                raise UserError(f"method {self.name!r} reads HR images (method.inputs=hr) but image {smp.id!r} has none")
            stem = f"{index[smp.id]:0{width}d}"
            write_png_atomic(in_dir / f"{stem}.png", read_image(src))
            names[stem] = smp.id
        (stage / "index.json").write_text(json.dumps(names, indent=1, ensure_ascii=False))
        with open(stage.parent.parent / "external.log", "a") as logf:
            logf.write(f"\n===== staged {len(names)} image(s) in {in_dir}: "
                       + ", ".join(f"{k}.png={v!r}" for k, v in list(names.items())[:20])
                       + (" ..." if len(names) > 20 else "") + f" (full map: {stage / 'index.json'})\n")
        return in_dir, out_dir, work_dir

    def _collect(self, out_dir: Path, in_dir: Path, samples: Sequence[Sample], index: Mapping[str, int], width: int,
                 run: int, seed: int, log_path: Path, errors: list[str]) -> dict[str, np.ndarray]:
        """Find, decode and size-check the outputs of one run; append a message per bad image."""
        found: dict[str, np.ndarray] = {}
        expected: set[Path] = set()
        base = glob.escape(str(out_dir))
        for smp in samples:
            stem = f"{index[smp.id]:0{width}d}"
            pattern = self._pattern(stem, index[smp.id], run, seed)
            matches = sorted(Path(p) for p in glob.glob(os.path.join(base, pattern), recursive=True))
            where = f"image {smp.id!r} (staged as {stem}.png), seed {seed} (run {run})"
            if not matches:
                errors.append(f"{where}: no output matches {out_dir / pattern}")
                continue
            if len(matches) > 1:
                errors.append(f"{where}: {len(matches)} outputs match {out_dir / pattern}: "
                              + ", ".join(p.name for p in matches[:5]) + "; make method.output_pattern specific")
                continue
            expected.add(matches[0])
            want = (smp.lr_size[0] * self.scale, smp.lr_size[1] * self.scale)
            arr, problem = read_output(matches[0], want,
                                       f" (x{self.scale} of the {smp.lr_size[1]}x{smp.lr_size[0]} LR image)")
            if arr is None:
                errors.append(f"{where}: {matches[0].name} {problem}")  # an unreadable file's error names its path
                continue
            found[smp.id] = arr
        if errors:
            others = sorted(p.relative_to(out_dir).as_posix() for p in out_dir.rglob("*")
                            if p.is_file() and p not in expected)
            if others:
                errors.append("other files the command wrote (misnamed or misnumbered outputs?): " + ", ".join(others[:10])
                              + (" ..." if len(others) > 10 else "") + f"; expected names follow method.output_pattern="
                              f"{self.output_pattern!r}; log: {log_path}")
        elif self.check_correspondence and len(found) > 1:
            self._check_correspondence(found, in_dir, index, width, run, seed, errors)
        return found

    def _check_correspondence(self, found: Mapping[str, np.ndarray], in_dir: Path, index: Mapping[str, int],
                              width: int, run: int, seed: int, errors: list[str]) -> None:
        """Each output must look like its own input more than like any other (catches permuted numbering).

        Output and staged input are reduced to THUMB x THUMB grey thumbnails (box filter), which an SR
        output and its LR (or HR) input share up to noise; an output whose thumbnail is less than half as
        far from another input's as from its own was almost surely matched to the wrong image.
        """
        ids = list(found)
        outs = np.stack([_thumb(found[i]) for i in ids])
        ins = np.stack([_thumb(read_image(in_dir / f"{index[i]:0{width}d}.png")) for i in ids])
        dist = np.abs(outs[:, None] - ins[None, :]).mean(axis=(2, 3))  # [output, input], 8-bit units
        for k, i in enumerate(ids):
            own = dist[k, k]
            others = dist[k].copy()
            others[k] = np.inf
            j = int(np.argmin(others))
            if own > 2.0 and others[j] < 0.5 * own:
                errors.append(f"image {i!r}, seed {seed} (run {run}): its output looks like the input of image "
                              f"{ids[j]!r} (thumbnail distance {others[j]:.1f} vs {own:.1f} to its own input): the "
                              f"repository numbers or orders its outputs differently from method.output_pattern="
                              f"{self.output_pattern!r} (shuffled or 1-based numbering?); nothing of this run is "
                              f"stored. Set method.check_correspondence=false only if outputs legitimately differ "
                              f"from their inputs at {THUMB}x{THUMB}")

    def _check_seed_effect(self, found: Mapping[int, Mapping[str, np.ndarray]], sink: SampleSink,
                           errors: list[str]) -> None:
        """A stochastic method whose outputs for two seeds are bit-identical ignores its seed."""
        if not self.stochastic or errors:
            return
        stored_dir = sink.root / "samples"
        stored = sorted(int(d.name[6:]) for d in stored_dir.glob("sample[0-9]*") if d.name[6:].isdigit()) \
            if stored_dir.is_dir() else []
        for r, arrays_r in found.items():
            if not arrays_r:
                continue
            for other in [o for o in found if o != r] + [o for o in stored if o != r and o not in found]:
                if other in found:
                    arrays = found[other]
                else:
                    try:
                        arrays = {i: read_image(sink.sample_path(i, other)) for i in arrays_r
                                  if sink.sample_path(i, other).is_file()}
                    except ValueError:
                        continue
                if set(arrays) < set(arrays_r):
                    continue
                if all(np.array_equal(arrays_r[i], arrays[i]) for i in arrays_r):
                    errors.append(f"seeds {sink.seed(r)} and {sink.seed(other)} gave bit-identical outputs for all "
                                  f"{len(arrays_r)} image(s): the command ignores the seed (a --seed flag that is "
                                  f"parsed but never used?). Run the script through {{seeded}} (see "
                                  f"conf/method/osediff.yaml), or set method.stochastic=false if the method is "
                                  f"deterministic")
                    return
                break  # one comparison per run is enough

    def _store_all(self, found: Mapping[int, Mapping[str, np.ndarray]], missing: Mapping[int, set[str]],
                   sink: SampleSink, seconds: float, staged: int, errors: list[str], stage: Path) -> None:
        """Store every output of the unit of work through the sink, or nothing of it.

        The command's seconds are shared by the ``staged`` image-runs it made; only those that were
        missing count (``counted``), so the timing kept across resumes counts each stored image-run once.
        """
        if errors:
            raise UserError(f"method {self.name!r} wrote unusable outputs; nothing of this unit of work was stored "
                            f"(the command's outputs are kept in {stage / 'output'}):\n  - " + "\n  - ".join(errors))
        for r, arrays in found.items():
            for i, arr in arrays.items():
                sink.put_array(i, r, arr, seconds / staged if staged else 0.0, source=f"output of {self.name!r}",
                               counted=i in missing.get(r, ()))
        if not self.keep_staging:
            shutil.rmtree(stage, ignore_errors=True)


def _resolve_weight(value: str, repo: Path | None) -> Path:
    """A weight entry: ``{repo}`` filled in; a glob (``*``) resolves to its first match, if any."""
    path = Path(value.format_map({"repo": str(repo) if repo else ""})).expanduser()
    if glob.has_magic(str(path)):
        matches = sorted(glob.glob(str(path)))
        return Path(matches[0]) if matches else path
    return path


def _thumb(arr: np.ndarray) -> np.ndarray:
    grey = Image.fromarray(arr).convert("L")
    return np.asarray(grey.resize((THUMB, THUMB), Image.Resampling.BOX), dtype=np.float64)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def _tail(path: Path, lines: int = 20) -> str:
    text = path.read_text(errors="replace").splitlines()
    return "\n".join("    " + line for line in text[-lines:])

