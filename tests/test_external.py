"""The external method against fake official repositories (small scripts with real CLI contracts).

Each fake imitates one way a real repository's script behaves (see conf/method/*.yaml and issue
#19): it seeds once and draws noise image after image in sorted order (StableSR, DiffBIR, PASD,
SeeSR, CCSR, ...), numbers its outputs (DDRM, DDNM from 0, SR3 from 1), shuffles them with a
seeded permutation (DDRM/DDNM's data loader), parses --seed and ignores it (OSEDiff), or fails
after writing everything (SinSR's evaluation step).
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, compose, folder_dir, make_pairs, run_bench
from hydra.utils import get_class
from omegaconf import OmegaConf
from PIL import Image

from benchmark import errors
from benchmark.images import read_image
from methods import METHODS
from methods.external import External, normalise_template

FAKE_SCRIPT = r'''
import os, sys, time
if "sleep" in sys.argv:  # for the orphan tests: say who we are (before slow imports), then keep running
    out = sys.argv[sys.argv.index("--output") + 1]
    os.makedirs(out, exist_ok=True)
    open(os.path.join(out, "..", "..", "..", "pid"), "w").write(str(os.getpid()))
    time.sleep(60)
import argparse
import numpy as np
from PIL import Image

p = argparse.ArgumentParser()
p.add_argument("--input", required=True)
p.add_argument("--output", required=True)
p.add_argument("--seed", type=int, default=0)
p.add_argument("--upscale", type=int, default=4)
p.add_argument("--n_samples", type=int, default=1)
p.add_argument("--ckpt", default=None)
p.add_argument("--mode", default="ok")
a = p.parse_args()
if a.mode == "fail":
    print("Traceback: CUDA out of memory (fake)", file=sys.stderr)
    sys.exit(3)
if a.ckpt is not None:
    assert os.path.isfile(a.ckpt), a.ckpt
os.makedirs(a.output, exist_ok=True)
names = sorted(n for n in os.listdir(a.input) if n.endswith(".png"))  # PNG only, like OSEDiff
if a.mode == "shuffled":  # DDRM/DDNM: data loader shuffled by a generator seeded with --seed
    order = np.random.default_rng(a.seed + 1000).permutation(len(names))
    names = [names[i] for i in order]
if a.mode == "ignore_seed":  # parses --seed, never uses it, seeds itself with a constant
    rngs = [np.random.default_rng([0, k]) for k in range(a.n_samples)]
elif a.mode == "unseeded":  # parses --seed, never uses it, draws from the global generator (OSEDiff, SR3)
    rngs = [np.random for k in range(a.n_samples)]
else:  # seeded ONCE, then noise drawn image after image: an image's noise depends on the images before it
    rngs = [np.random.default_rng([a.seed + k]) for k in range(a.n_samples)]
for pos, name in enumerate(names):
    stem = os.path.splitext(name)[0]
    img = Image.open(os.path.join(a.input, name)).convert("RGB")
    for k in range(a.n_samples):
        s = a.upscale if not (a.mode == "wrong_size" and pos == 1) else a.upscale - 1
        up = np.asarray(img.resize((img.width * s, img.height * s), Image.BICUBIC)).astype(np.float64)
        out = np.clip(up + rngs[k].normal(0, 8, up.shape), 0, 255).astype(np.uint8)
        name_out = stem + ("_out" if a.mode == "misnamed" and pos == 2 else "") + ".png"
        if a.mode in ("numbered", "shuffled"):  # outputs numbered in data-loader order from 0
            name_out = "%d_-1.png" % pos
        if a.mode == "numbered1":  # SR3: numbered from 1
            name_out = "0_%d_sr.png" % (pos + 1)
        folder = a.output if a.n_samples == 1 else os.path.join(a.output, "sample%02d" % k)
        os.makedirs(folder, exist_ok=True)
        Image.fromarray(out).save(os.path.join(folder, name_out))
        print("wrote", name_out, "seed", a.seed + k)
if a.mode == "trailing_fail":  # SinSR: an evaluation step after all outputs, which needs the network
    import evaluate
    evaluate.evaluate(a.output)
'''

EVALUATE = 'def evaluate(path):\n    raise RuntimeError("cannot download the CLIPIQA weights (no network)")\n'

CMD = "{python} {repo}/inference.py --input {input_dir} --output {output_dir} --seed {seed} --upscale {scale}"
IDS = ["img_a", "img_b", "img_c"]


@pytest.fixture
def fake_repo(tmp_path) -> Path:
    repo = tmp_path / "FakeSR"
    repo.mkdir()
    (repo / "inference.py").write_text(FAKE_SCRIPT)
    (repo / "evaluate.py").write_text(EVALUATE)
    return repo


def bench(tmp_path, repo, *extra, cmd=CMD, runs=2, out="out", ids=IDS):
    lr, hr = make_pairs(tmp_path / "data", ids)
    return ["method=external", f"method.cmd='{cmd}'", f"method.repo={repo}", "dataset=folder",
            f"dataset.lr_dir={lr}", f"dataset.hr_dir={hr}", f"output_dir='{tmp_path / out}'", f"runs={runs}",
            "metrics=[psnr]", *extra]


def results_dir(tmp_path: Path, out: str = "out") -> Path:
    """``<output_dir>/<data set name>`` of a run on the data of :func:`bench` (tmp_path/data/LR, HR)."""
    return folder_dir(tmp_path / out, tmp_path / "data" / "LR", tmp_path / "data" / "HR")


def stage_by_hand(lr_dir: Path, dest: Path, ids=IDS) -> Path:
    """The staged folder srbench documents: ids in sorted order as 000000.png, 000001.png, ..."""
    dest.mkdir(parents=True)
    for k, i in enumerate(sorted(ids)):
        Image.open(lr_dir / f"{i}.png").convert("RGB").save(dest / f"{k:06d}.png")
    return dest


def reference(repo: Path, in_dir: Path, out: Path, seed: int, *extra: str) -> Path:
    """Run the fake repository by hand, outside the adapter."""
    subprocess.run([sys.executable, str(repo / "inference.py"), "--input", str(in_dir), "--output", str(out),
                    "--seed", str(seed), *extra], check=True, capture_output=True)
    return out


def samples(root: Path, run: int, ids=IDS) -> dict[str, np.ndarray]:
    return {i: read_image(root / "samples" / f"sample{run:02d}" / f"{i}.png") for i in ids}


def test_external_runs_once_per_seed_and_stores_validated_outputs(tmp_path, fake_repo):
    res = run_bench(bench(tmp_path, fake_repo))
    root = results_dir(tmp_path) / "external"
    staged = stage_by_hand(tmp_path / "data" / "LR", tmp_path / "staged")
    for r in (0, 1):
        ref = reference(fake_repo, staged, tmp_path / f"ref{r}", seed=r)
        for k, i in enumerate(IDS):
            assert np.array_equal(samples(root, r)[i], read_image(ref / f"{k:06d}.png"))
    assert res["runs"] == 2 and res["lstd"] > 0
    t = res["timing"]
    assert t["image_runs_timed"] == 6 and t["seconds_per_image_run"] > 0 and t["includes_model_loading"] is True
    log = (root / "external.log").read_text()
    assert log.count("$ ") == 2 and "wrote 000002.png seed 1" in log and "exit code 0" in log
    assert "000001.png='img_b'" in log  # the number <-> id map
    assert not (root / "staging").exists()  # staging cleaned


def test_resume_equals_uninterrupted_with_order_dependent_noise(tmp_path, fake_repo):
    """The fake seeds once and draws per image: staging only the missing image would change its noise."""
    run_bench(bench(tmp_path, fake_repo, out="full"))
    full = results_dir(tmp_path, "full") / "external"
    run_bench(bench(tmp_path, fake_repo, out="resumed"))
    root = results_dir(tmp_path, "resumed") / "external"
    (root / "samples" / "sample01" / "img_b.png").unlink()
    (root / "samples" / "sample01" / "img_c.png").unlink()
    again = run_bench(bench(tmp_path, fake_repo, out="resumed"))
    for r in (0, 1):
        for i in IDS:
            assert np.array_equal(samples(root, r)[i], samples(full, r)[i]), (r, i)
    log = (root / "external.log").read_text()
    assert log.count("$ ") == 3 and "seed 1, 3 image(s), 2 of them missing: the whole run is regenerated" in log
    assert again["timing"]["image_runs_timed"] == 8  # 6 + the 2 that were missing, not the 3 regenerated
    # the rule matters: the fake run on img_c alone (what staging only the missing image did) differs
    alone = tmp_path / "alone"
    alone.mkdir()
    (tmp_path / "staged_full").mkdir()
    Image.open(tmp_path / "data" / "LR" / "img_c.png").save(alone / "000002.png")
    ref = reference(fake_repo, alone, tmp_path / "ref_alone", seed=1)
    assert not np.array_equal(read_image(ref / "000002.png"), samples(full, 1)["img_c"])


def test_per_image_mode_resumes_any_subset_exactly(tmp_path, fake_repo):
    run_bench(bench(tmp_path, fake_repo, "method.per_image=true", out="full"))
    full = results_dir(tmp_path, "full") / "external"
    assert (full / "external.log").read_text().count("$ ") == 6  # one process per image-run
    # each image-run is the fake run on that image alone with seed + run
    alone = tmp_path / "alone"
    alone.mkdir()
    Image.open(tmp_path / "data" / "LR" / "img_b.png").save(alone / "000001.png")
    ref = reference(fake_repo, alone, tmp_path / "ref", seed=1)
    assert np.array_equal(read_image(ref / "000001.png"), samples(full, 1)["img_b"])
    (full / "samples" / "sample00" / "img_a.png").rename(tmp_path / "kept.png")
    run_bench(bench(tmp_path, fake_repo, "method.per_image=true", out="full"))
    assert (full / "external.log").read_text().count("$ ") == 7
    assert np.array_equal(read_image(tmp_path / "kept.png"), samples(full, 0)["img_a"])


def test_failing_command_names_exit_code_and_log(tmp_path, fake_repo):
    from benchmark.errors import is_user_error

    with pytest.raises(RuntimeError, match=r"(?s)run 0 \(seed 0.*exit code 3.*external\.log.*CUDA out of memory") as err:
        run_bench(bench(tmp_path, fake_repo, cmd=CMD + " --mode fail"))
    assert is_user_error(err.value)  # reported as "error: ..." without a traceback


def test_trailing_failing_step_is_detected_and_stubbed(tmp_path, fake_repo):
    """SinSR-like: every output written, then an evaluation step fails. srbench names it and stores
    nothing; the {seeded} wrapper's --stub makes the step a no-op and the run then succeeds."""
    with pytest.raises(RuntimeError, match=r"(?s)exit code 1\. It had written 3 file\(s\) for 3 expected output"
                                           r".*a step after inference failed.*cannot download"):
        run_bench(bench(tmp_path, fake_repo, cmd=CMD + " --mode trailing_fail", runs=1))
    assert not (results_dir(tmp_path) / "external" / "samples" / "sample00").exists()
    cmd = ("{seeded} --stub evaluate -- {repo}/inference.py --input {input_dir} --output {output_dir} --seed {seed} "
           "--upscale {scale} --mode trailing_fail")
    res = run_bench(bench(tmp_path, fake_repo, cmd=cmd, runs=1))
    assert res["timing"]["image_runs_timed"] == 3


def test_timeout_stops_the_command(tmp_path, fake_repo):
    t0 = time.perf_counter()
    with pytest.raises(TimeoutError, match=r"method.timeout=4 s"):
        run_bench(bench(tmp_path, fake_repo, "method.timeout=4", cmd=CMD + " --mode sleep"))
    assert time.perf_counter() - t0 < 30  # the sleeping python child was killed with its shell
    pid = int((results_dir(tmp_path) / "external" / "pid").read_text())
    assert not _alive(pid)


def test_wrong_size_output_names_image_and_seed_and_stores_nothing_of_the_run(tmp_path, fake_repo):
    with pytest.raises(ValueError, match=r"image 'img_b' \(staged as 000001.png\), seed 0 \(run 0\): 000001.png is "
                                         r"48x48, expected 64x64"):
        run_bench(bench(tmp_path, fake_repo, cmd=CMD + " --mode wrong_size"))
    assert not (results_dir(tmp_path) / "external" / "samples" / "sample00").exists()


def test_misnamed_output_lists_what_was_written(tmp_path, fake_repo):
    with pytest.raises(ValueError, match=r"image 'img_c' \(staged as 000002.png\), seed 0 \(run 0\): no output matches"
                                         r"(.|\n)*000002_out\.png"):
        run_bench(bench(tmp_path, fake_repo, cmd=CMD + " --mode misnamed"))


def test_all_runs_mode_uses_n_samples(tmp_path, fake_repo):
    cmd = CMD + " --n_samples {n_samples}"
    res = run_bench(bench(tmp_path, fake_repo, "method.all_runs=true", "method.output_pattern='sample{run:02d}/{id}.png'",
                          cmd=cmd, runs=3))
    assert res["runs"] == 3 and res["timing"]["image_runs_timed"] == 9
    root = results_dir(tmp_path) / "external"
    assert (root / "external.log").read_text().count("$ ") == 1
    # sample k of the script used seed + k: identical to a per-seed run with that seed
    staged = stage_by_hand(tmp_path / "data" / "LR", tmp_path / "staged")
    ref = reference(fake_repo, staged, tmp_path / "ref2", seed=2)
    assert np.array_equal(samples(root, 2)["img_a"], read_image(ref / "000000.png"))
    # resume: the unit of work is the whole result, so one missing sample reruns the one command
    before = {r: samples(root, r) for r in range(3)}
    (root / "samples" / "sample01" / "img_c.png").unlink()
    again = run_bench(bench(tmp_path, fake_repo, "method.all_runs=true", "method.output_pattern='sample{run:02d}/{id}.png'",
                            cmd=cmd, runs=3))
    assert (root / "external.log").read_text().count("$ ") == 2 and again["timing"]["image_runs_timed"] == 10
    assert all(np.array_equal(before[r][i], samples(root, r)[i]) for r in range(3) for i in IDS)


def build(overrides):
    cfg = OmegaConf.to_container(compose(overrides).method, resolve=True)
    return get_class(cfg.pop("_target_"))(**cfg)


def test_repo_weights_and_template_errors(tmp_path, fake_repo):
    import torch

    m = build(["method=external", f"method.cmd='{CMD}'", f"method.repo={tmp_path / 'absent'}"])
    with pytest.raises(FileNotFoundError, match=r"method.repo=.*absent .*clone"):
        m.load(torch.device("cpu"))
    m = build(["method=external", f"method.cmd='{CMD} --ckpt {{ckpt}}'", f"method.repo={fake_repo}",
               "+method.weights.ckpt='{repo}/weights/model.ckpt'"])
    with pytest.raises(FileNotFoundError, match=r"weights/model\.ckpt \(method.weights.ckpt\)"):
        m.load(torch.device("cpu"))
    (w,) = External.weight_files(name="x", repo=str(fake_repo), weights={"ckpt": "{repo}/weights/model.ckpt"})
    assert w.path == fake_repo / "weights" / "model.ckpt" and not w.present
    with pytest.raises(ValueError, match=r"unknown placeholder \{input\}"):
        External(cmd="{python} x.py --in {input}")
    with pytest.raises(ValueError, match=r"unknown placeholder \{name\} in method.output_pattern"):
        External(cmd="{python}", output_pattern="{name}.png")
    with pytest.raises(ValueError, match="cmd"):
        External(cmd="???")
    with pytest.raises(ValueError, match="output_pattern must tell runs apart"):
        External(cmd="{python}", all_runs=True)
    with pytest.raises(ValueError, match="positional placeholder"):
        External(cmd="{python} {}")


def test_glob_weights_resolve_to_a_real_file(tmp_path):
    """Config-only folders (committed in PASD/AddSR) must not pass as weights: entries name files."""
    (tmp_path / "unet").mkdir()
    (tmp_path / "unet" / "config.json").write_text("{}")
    (w,) = External.weight_files(name="x", repo=str(tmp_path), weights={"u": "{repo}/unet/diffusion_pytorch_model.*"})
    assert not w.present
    (tmp_path / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(b"w")
    (w,) = External.weight_files(name="x", repo=str(tmp_path), weights={"u": "{repo}/unet/diffusion_pytorch_model.*"})
    assert w.present and w.path.name == "diffusion_pytorch_model.safetensors"


def test_checkpoint_is_passed_and_checked(tmp_path, fake_repo):
    (fake_repo / "weights").mkdir()
    (fake_repo / "weights" / "model.ckpt").write_bytes(b"w")
    res = run_bench(bench(tmp_path, fake_repo, "+method.weights.ckpt='{repo}/weights/model.ckpt'", runs=1,
                          cmd=CMD + " --ckpt {ckpt}"))
    assert res["timing"]["image_runs_timed"] == 3
    assert json.loads((results_dir(tmp_path) / "external" / "results.json").read_text())["runs"] == 1


# ----------------------------------------------------------------------------- #13 item 2: quoting


def test_quoted_placeholders_are_normalised_or_refused():
    assert normalise_template('x "{output_dir}" \'{input_dir}\' {seed}') == "x {output_dir} {input_dir} {seed}"
    assert normalise_template("echo '{{a}}' {seed}") == "echo '{{a}}' {seed}"  # literal braces stay literal
    assert normalise_template('echo "it\'s" {seed}') == 'echo "it\'s" {seed}'
    with pytest.raises(ValueError, match=r'placeholder \{output_dir\} inside a quoted string.*\{output_dir\}/file'):
        normalise_template('cp x "{output_dir}/a.png"')
    with pytest.raises(ValueError, match=r"placeholder \{seed\} inside a quoted string"):
        normalise_template("python -c 'print({seed})'")


def test_command_substitution_in_a_path_never_runs(tmp_path, fake_repo):
    """A result folder named with $(...) and a template that double-quotes the placeholder."""
    marker = tmp_path / "pwned"
    cmd = CMD.replace("{output_dir}", '"{output_dir}"')
    out = f"out$(touch {marker})"
    res = run_bench(bench(tmp_path, fake_repo, cmd=cmd, runs=1, out=out))
    assert res["timing"]["image_runs_timed"] == 3 and not marker.exists()


def test_readme_external_example_parses_through_hydra(tmp_path):
    """The README's own `external` command line, taken verbatim and split as bash splits it."""
    readme = (ROOT / "README.md").read_text()
    (line,) = [ln for ln in readme.splitlines() if ln.startswith("python run_bench.py method=external ")]
    args = shlex.split(line)[2:]
    repo = tmp_path / "MySR"
    repo.mkdir()
    args = [a.replace("~/src/MySR", str(repo)) for a in args]
    m = build(args)
    assert m.cmd == "{python} {repo}/infer.py -i {input_dir} -o {output_dir} --seed {seed}"
    assert m.repo == repo


# ----------------------------------------------------------------------------- #13 item 4: matching


def test_numbering_by_sorted_file_name_agrees_with_sorted_ids(tmp_path, fake_repo):
    """'img' < 'img-2' as ids but 'img-2.png' < 'img.png' as file names: staged numbers agree with both."""
    ids = ["img", "img-2", "img_3"]
    run_bench(bench(tmp_path, fake_repo, "method.output_pattern='{index}_-1.png'", runs=1, ids=ids,
                    cmd=CMD + " --mode numbered"))
    root = results_dir(tmp_path) / "external"
    staged = stage_by_hand(tmp_path / "data" / "LR", tmp_path / "staged", ids)
    ref = reference(fake_repo, staged, tmp_path / "ref", 0, "--mode", "numbered")
    for k, i in enumerate(sorted(ids)):
        assert np.array_equal(samples(root, 0, ids)[i], read_image(ref / f"{k}_-1.png")), i


def test_glob_characters_in_ids_and_output_dir_match_literally(tmp_path, fake_repo):
    ids = ["a[1]", "a1", "b*"]
    run_bench(bench(tmp_path, fake_repo, runs=1, ids=ids, out="res[1]"))
    root = results_dir(tmp_path, "res[1]") / "external"
    staged = stage_by_hand(tmp_path / "data" / "LR", tmp_path / "staged", ids)
    ref = reference(fake_repo, staged, tmp_path / "ref", 0)
    for k, i in enumerate(sorted(ids)):
        assert np.array_equal(samples(root, 0, ids)[i], read_image(ref / f"{k:06d}.png")), i
    assert not np.array_equal(samples(root, 0, ids)["a[1]"], samples(root, 0, ids)["a1"])


def test_one_based_numbering_is_detected_and_index1_fixes_it(tmp_path, fake_repo):
    with pytest.raises(ValueError, match=r"(?s)image 'img_a' \(staged as 000000.png\).*no output matches.*0_0_sr\.png"
                                         r".*other files the command wrote.*0_3_sr\.png"):
        run_bench(bench(tmp_path, fake_repo, "method.output_pattern='0_{index}_sr.png'", runs=1,
                        cmd=CMD + " --mode numbered1"))
    run_bench(bench(tmp_path, fake_repo, "method.output_pattern='0_{index1}_sr.png'", runs=1, out="ok",
                    cmd=CMD + " --mode numbered1"))
    staged = stage_by_hand(tmp_path / "data" / "LR", tmp_path / "staged")
    ref = reference(fake_repo, staged, tmp_path / "ref", 0, "--mode", "numbered1")
    assert np.array_equal(samples(results_dir(tmp_path, "ok") / "external", 0)["img_c"], read_image(ref / "0_3_sr.png"))


def test_shuffled_numbering_is_detected(tmp_path, fake_repo):
    """DDRM/DDNM-like: outputs numbered in a seed-dependent permutation; every file exists, sizes agree."""
    with pytest.raises(ValueError, match=r"its output looks like the input of image .*shuffled or 1-based"):
        run_bench(bench(tmp_path, fake_repo, "method.output_pattern='{index}_-1.png'", runs=1,
                        cmd=CMD + " --mode shuffled"))
    assert not (results_dir(tmp_path) / "external" / "samples" / "sample00").exists()


# ----------------------------------------------------------------------------- #19: seeds


def test_unused_seed_flag_is_detected(tmp_path, fake_repo):
    with pytest.raises(ValueError, match=r"seeds 1 and 0 gave bit-identical outputs for all 3 image\(s\): the command "
                                         r"ignores the seed"):
        run_bench(bench(tmp_path, fake_repo, cmd=CMD + " --mode ignore_seed"))
    assert not (results_dir(tmp_path) / "external" / "samples" / "sample01").exists()


def test_seeded_wrapper_makes_an_unseeded_script_reproducible(tmp_path, fake_repo):
    """OSEDiff/SR3-like: noise from the global generator, never seeded. Through {seeded} two separate
    benchmark runs are identical and the two runs of one benchmark differ."""
    cmd = ("{seeded} -- {repo}/inference.py --input {input_dir} --output {output_dir} --seed {seed} --upscale {scale} "
           "--mode unseeded")
    run_bench(bench(tmp_path, fake_repo, cmd=cmd, out="a"))
    run_bench(bench(tmp_path, fake_repo, cmd=cmd, out="b"))
    a, b = results_dir(tmp_path, "a") / "external", results_dir(tmp_path, "b") / "external"
    for r in (0, 1):
        for i in IDS:
            assert np.array_equal(samples(a, r)[i], samples(b, r)[i])
    assert not np.array_equal(samples(a, 0)["img_a"], samples(a, 1)["img_a"])
    # without the wrapper the same script is not reproducible
    run_bench(bench(tmp_path, fake_repo, cmd=CMD + " --mode unseeded", out="c", runs=1))
    assert not np.array_equal(samples(results_dir(tmp_path, "c") / "external", 0)["img_a"], samples(a, 0)["img_a"])


def test_seed_wrapper_sorts_listings_and_stubs_modules(tmp_path):
    script = tmp_path / "s.py"
    script.write_text("import os, sys, random, evaluate, numpy\n"
                      "print(os.listdir(sys.argv[1]), [e.name for e in os.scandir(sys.argv[1])],\n"
                      "      [f for _, _, fs in os.walk(sys.argv[1]) for f in fs], evaluate.evaluate(1), random.random(),\n"
                      "      numpy.random.rand(), 'torch' in sys.modules)\n")
    d = tmp_path / "d"
    d.mkdir()
    for n in ("b", "c", "a"):
        (d / n).write_text("")
    wrapper = ROOT / "methods" / "external_seed.py"
    run = lambda seed: subprocess.run([sys.executable, str(wrapper), "--seed", str(seed), "--sorted-listdir",
                                       "--stub", "evaluate", "--", str(script), str(d)],
                                      check=True, capture_output=True, text=True).stdout
    import random
    random.seed(5)
    np.random.seed(5)
    expected = f"['a', 'b', 'c'] ['a', 'b', 'c'] ['a', 'b', 'c'] None {random.random()} {np.random.rand()} False"
    assert run(5).strip() == expected and run(6).strip() != expected


# ----------------------------------------------------------------------------- #13 item 10: orphans


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in state  # a zombie no one reaped yet has stopped running


@pytest.mark.parametrize("sig", [signal.SIGKILL, pytest.param(signal.SIGTERM, marks=pytest.mark.slow),
                                 pytest.param(signal.SIGINT, marks=pytest.mark.slow)])
def test_no_orphan_survives_srbench(tmp_path, fake_repo, sig):
    args = bench(tmp_path, fake_repo, cmd=CMD + " --mode sleep", runs=1)
    # without --debug/HYDRA_FULL_ERROR: Ctrl-C is srbench's one-line "interrupted" exit
    env = {**{k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}, "PYTHONPATH": str(ROOT)}
    with open(tmp_path / "stderr.txt", "w") as err:
        proc = subprocess.Popen([sys.executable, str(ROOT / "run_bench.py"), *args], cwd=tmp_path, env=env,
                                stdout=subprocess.DEVNULL, stderr=err)
    pid_file = results_dir(tmp_path) / "external" / "pid"
    deadline = time.time() + 60
    while not pid_file.is_file() or not pid_file.read_text():
        assert proc.poll() is None and time.time() < deadline, "srbench ended before the command started"
        time.sleep(0.1)
    child = int(pid_file.read_text())
    assert _alive(child)
    proc.send_signal(sig)
    # srbench ended because of the signal, not because the 60 s command finished: Ctrl-C is its
    # "interrupted" exit (130, one line, no traceback); SIGTERM/SIGKILL end it (no handler of its own)
    assert proc.wait(timeout=30) == (errors.EXIT_INTERRUPTED if sig == signal.SIGINT else -sig)
    if sig == signal.SIGINT:
        stderr = (tmp_path / "stderr.txt").read_text()
        assert "Traceback" not in stderr and "\ninterrupted: 0 sample(s) are stored in " in stderr, stderr
    deadline = time.time() + 10
    while _alive(child) and time.time() < deadline:
        time.sleep(0.1)
    assert not _alive(child), f"the command (pid {child}) outlived srbench killed by {sig.name}"


def test_resume_ignores_staging_left_by_a_dead_run(tmp_path, fake_repo):
    root = results_dir(tmp_path) / "external"
    stale = root / "staging" / "run00-999999999"
    (stale / "output").mkdir(parents=True)
    Image.new("RGB", (64, 64)).save(stale / "output" / "000000.png")  # a dead run's half-written output
    run_bench(bench(tmp_path, fake_repo, runs=1))
    assert not stale.exists()
    staged = stage_by_hand(tmp_path / "data" / "LR", tmp_path / "staged")
    ref = reference(fake_repo, staged, tmp_path / "ref", 0)
    assert np.array_equal(samples(root, 0)["img_a"], read_image(ref / "000000.png"))


# ----------------------------------------------------------------------------- presets


def test_inputs_are_staged_as_png_whatever_the_format(tmp_path, fake_repo):
    """The fake reads *.png only (like OSEDiff); a data set of .bmp/.webp still runs."""
    lr, hr = make_pairs(tmp_path / "data", IDS)
    for k, i in enumerate(IDS):
        ext = (".bmp", ".webp", ".tif")[k]
        Image.open(lr / f"{i}.png").save(lr / f"{i}{ext}", lossless=True) if ext == ".webp" else \
            Image.open(lr / f"{i}.png").save(lr / f"{i}{ext}")
        (lr / f"{i}.png").unlink()
        Image.open(hr / f"{i}.png").save(hr / f"{i}{ext}", lossless=True) if ext == ".webp" else \
            Image.open(hr / f"{i}.png").save(hr / f"{i}{ext}")
        (hr / f"{i}.png").unlink()
    res = run_bench(["method=external", f"method.cmd='{CMD}'", f"method.repo={fake_repo}", "dataset=folder",
                     f"dataset.lr_dir={lr}", f"dataset.hr_dir={hr}", f"output_dir={tmp_path / 'out'}", "runs=1",
                     "metrics=[psnr]"])
    assert res["timing"]["image_runs_timed"] == 3


def test_hr_inputs_and_numbered_outputs(tmp_path, fake_repo):
    """inputs=hr stages the HR images; the fake then runs at x1 and numbers its outputs from 0."""
    res = run_bench(bench(tmp_path, fake_repo, "method.inputs=hr", "method.output_pattern='{index}_-1.png'",
                          "method.scale=4", runs=1, cmd=CMD.replace("--upscale {scale}", "--upscale 1") + " --mode numbered"))
    root = results_dir(tmp_path) / "external"
    staged = stage_by_hand(tmp_path / "data" / "HR", tmp_path / "staged")
    ref = reference(fake_repo, staged, tmp_path / "ref", 0, "--upscale", "1", "--mode", "numbered")
    assert np.array_equal(samples(root, 0)["img_b"], read_image(ref / "1_-1.png"))
    assert res["timing"]["image_runs_timed"] == 3


def test_required_local_edits_are_checked_before_running(tmp_path, fake_repo):
    import torch

    (fake_repo / "utils.py").write_text("x = 1\ntok = load('/home/notebook/bert', local_files_only=True)\n")
    edit = "+method.edits=[{file: utils.py, line: 2, pinned: /home/notebook/bert, why: 'point it at your BERT'}]"
    m = build(["method=external", f"method.cmd='{CMD}'", f"method.repo={fake_repo}", edit])
    with pytest.raises(FileNotFoundError, match=r"(?s)local edits.*utils.py line 2 still holds '/home/notebook/bert'"
                                                r": point it at your BERT"):
        m.load(torch.device("cpu"))
    (fake_repo / "utils.py").write_text("x = 1\ntok = load('/data/bert-base-uncased', local_files_only=True)\n")
    m.load(torch.device("cpu"))


# the presets are the files of conf/method/ whose class is External (nothing else lists them)
PRESETS = [n for n in METHODS.names() if n != "external" and METHODS.get(n) is External]


def test_the_official_repository_presets_are_found_in_the_config_group():
    assert {"stablesr", "diffbir", "pasd", "resshift", "seesr", "supir", "osediff", "sinsr", "addsr", "ddrm", "ddnm",
            "sr3", "ccsr_v1"} <= set(PRESETS)


@pytest.mark.parametrize("preset", PRESETS)
def test_presets_inherit_external_and_compose(tmp_path, preset):
    raw = OmegaConf.load(ROOT / "conf" / "method" / f"{preset}.yaml")
    assert list(raw.defaults) == ["external", "_self_"] and "_target_" not in raw  # only what differs
    m = build([f"method={preset}", f"method.repo={tmp_path}"])
    assert m.name == preset and m.repo == tmp_path
    m._format(m.cmd, m._values(Path("i"), Path("o"), Path("w"), 0, 1, 0), "method.cmd")
    m._pattern("000000", 0, 0, 0)
    text = (ROOT / "conf" / "method" / f"{preset}.yaml").read_text()
    assert "Verified at the pinned commit" in text and "Not verified" in text


def test_ccsr_v1_preset_names_missing_repo_and_checkpoint(tmp_path):
    import torch

    cfg_over = ["method=ccsr_v1", f"method.repo={tmp_path / 'CCSR'}"]
    m = build(cfg_over)
    assert m.steps == 45 and "--t_max 0.6667" in m.cmd and "--repeat_times 1" in m.cmd
    with pytest.raises(FileNotFoundError, match=r"CCSR of method .ccsr_v1. is not a directory: clone"):
        m.load(torch.device("cpu"))
    (tmp_path / "CCSR").mkdir()
    with pytest.raises(FileNotFoundError, match=r"CCSR/weights/real-world_ccsr\.ckpt \(method.weights.ckpt\)"):
        build(cfg_over).load(torch.device("cpu"))


# ----------------------------------------------------------------------------- presets against fakes of their repositories

# DDRM/DDNM as their main.py behaves at the pinned commits (see conf/method/ddrm.yaml): the config is
# read from os.path.join("configs", --config); its out_of_dist branch reads <exp>/datasets/ood as an
# ImageFolder (sorted, symlinks followed); the loader shuffles with --seed; outputs are named by loader
# position into os.path.join(<exp>, "image_samples", -i), emptied first with --ni.
FAKE_DDRM = r'''
import argparse, os, shutil, sys
import numpy as np, yaml
from PIL import Image

KIND = "__KIND__"
p = argparse.ArgumentParser()
p.add_argument("--config", required=True)
p.add_argument("--seed", type=int, default=1234)
p.add_argument("--exp", default="exp")
p.add_argument("-i", "--image_folder", default="images")
p.add_argument("--ni", action="store_true")
p.add_argument("--eta", type=float)
p.add_argument("--deg", type=str)
if KIND == "ddrm":
    p.add_argument("--doc"); p.add_argument("--timesteps", type=int); p.add_argument("--etaB", type=float)
    p.add_argument("--sigma_0", type=float)
else:
    p.add_argument("--deg_scale", type=float); p.add_argument("--sigma_y", type=float)
a = p.parse_args()
cfg = yaml.safe_load(open(os.path.join("configs", a.config)))
if cfg["data"]["subset_1k"] or not cfg["data"]["out_of_dist"]:
    sys.exit("would read the ImageNet 1k subset list")
assert os.path.isfile(os.path.join(a.exp, "logs/imagenet/256x256_diffusion_uncond.pt"))
assert a.deg == ("sr_bicubic4" if KIND == "ddrm" else "sr_bicubic")
folder = os.path.join(a.exp, "image_samples", a.image_folder)
if os.path.exists(folder):
    shutil.rmtree(folder)
os.makedirs(folder)
root = os.path.join(a.exp, "datasets", "ood")
files = sorted(os.path.join(r, f) for r, _, fs in os.walk(root, followlinks=True) for f in fs)
order = np.random.default_rng(a.seed).permutation(len(files))
rng = np.random.default_rng([a.seed, 7])
for pos, k in enumerate(order):
    hr = np.asarray(Image.open(files[k]).convert("RGB")).astype(np.float64)
    out = np.clip(hr + rng.normal(0, 8, hr.shape), 0, 255).astype(np.uint8)
    Image.fromarray(out).save(os.path.join(folder, ("%d_-1.png" if KIND == "ddrm" else "%d_0.png") % pos))
    Image.fromarray(hr.astype(np.uint8)).save(os.path.join(folder, "orig_%d.png" % pos))
'''


@pytest.mark.parametrize("preset", ["ddrm", pytest.param("ddnm", marks=pytest.mark.slow)])
def test_ddrm_ddnm_presets_run_one_image_per_process_against_a_fake_repository(tmp_path, preset):
    repo = tmp_path / preset
    (repo / "configs").mkdir(parents=True)
    (repo / "configs" / "imagenet_256.yml").write_text(
        "data:\n    dataset: \"ImageNet\"\n    image_size: 256\n    subset_1k: True\n    out_of_dist: False\n")
    (repo / "main.py").write_text(FAKE_DDRM.replace("__KIND__", preset))
    (repo / "exp" / "logs" / "imagenet").mkdir(parents=True)
    (repo / "exp" / "logs" / "imagenet" / "256x256_diffusion_uncond.pt").write_bytes(b"w")
    lr, hr = make_pairs(tmp_path / "data", IDS)
    res = run_bench([f"method={preset}", f"method.repo={repo}", "dataset=folder", f"dataset.lr_dir={lr}",
                     f"dataset.hr_dir={hr}", f"output_dir={tmp_path / 'out'}", "runs=2", "metrics=[psnr]"])
    assert res["timing"]["image_runs_timed"] == 6
    root = results_dir(tmp_path) / preset
    assert (root / "external.log").read_text().count("$ ") == 6  # one process per image-run
    # each stored sample is the fake run by hand on that HR image alone (ImageFolder class "x"), seed + run
    for r in (0, 1):
        exp = tmp_path / f"exp{r}"
        (exp / "datasets" / "ood" / "x").mkdir(parents=True)
        Image.open(hr / "img_b.png").save(exp / "datasets" / "ood" / "x" / "000001.png")
        (exp / "logs").mkdir()
        (exp / "logs" / "imagenet").symlink_to(repo / "exp" / "logs" / "imagenet")
        (tmp_path / "ood.yml").write_text("data:\n    subset_1k: False\n    out_of_dist: True\n")
        extra = ["--deg", "sr_bicubic4"] if preset == "ddrm" else ["--deg", "sr_bicubic"]
        subprocess.run([sys.executable, "main.py", "--ni", "--config", str(tmp_path / "ood.yml"), "--exp", str(exp),
                        "--seed", str(r), "-i", "ref", *extra], cwd=repo, check=True, capture_output=True)
        name = "0_-1.png" if preset == "ddrm" else "0_0.png"
        assert np.array_equal(samples(root, r)["img_b"], read_image(exp / "image_samples" / "ref" / name))


# SR3 as Janspiry's repository behaves at the pinned commit (see conf/method/sr3.yaml): prepare_data.py
# appends _<l>_<r> to --out and zero-fills stems to 5 digits; infer.py reads the JSON config, numbers
# outputs from 1 in sorted order under experiments/<name>_<timestamp>/results of the working directory,
# and seeds nothing (noise from the global generators).
FAKE_SR3_PREPARE = r'''
import argparse, os
from pathlib import Path
from PIL import Image
p = argparse.ArgumentParser()
p.add_argument("--path"); p.add_argument("--out"); p.add_argument("--size"); p.add_argument("--n_worker", type=int)
a = p.parse_args()
s0, s1 = [int(s) for s in a.size.split(",")]
out = "{}_{}_{}".format(a.out, s0, s1)
for d in ("lr_%d" % s0, "hr_%d" % s1, "sr_%d_%d" % (s0, s1)):
    os.makedirs(os.path.join(out, d), exist_ok=True)
for f in Path(a.path).glob("**/*"):
    i = f.name.split(".")[0].zfill(5)
    img = Image.open(f).convert("RGB")
    lr = img.resize((s0, s0), Image.BICUBIC)
    lr.save("{}/lr_{}/{}.png".format(out, s0, i))
    lr.resize((s1, s1), Image.BICUBIC).save("{}/sr_{}_{}/{}.png".format(out, s0, s1, i))
    lr.resize((s1, s1), Image.BICUBIC).save("{}/hr_{}/{}.png".format(out, s1, i))
'''

FAKE_SR3_INFER = r'''
import argparse, json, os, time
import numpy as np
from PIL import Image
p = argparse.ArgumentParser()
p.add_argument("-c", "--config")
a = p.parse_args()
opt = json.load(open(a.config))
val = opt["datasets"]["val"]
root = "{}/sr_{}_{}".format(val["dataroot"], val["l_resolution"], val["r_resolution"])
results = os.path.join("experiments", "{}_{}".format(opt["name"], time.strftime("%y%m%d_%H%M%S")), "results")
os.makedirs(results)
idx = 0
for f in sorted(os.listdir(root)):
    idx += 1
    sr = np.asarray(Image.open(os.path.join(root, f))).astype(np.float64)
    out = np.clip(sr + np.random.normal(0, 8, sr.shape), 0, 255).astype(np.uint8)
    Image.fromarray(out).save("{}/{}_{}_sr.png".format(results, 0, idx))
    Image.fromarray(out).save("{}/{}_{}_sr_process.png".format(results, 0, idx))
    Image.fromarray(sr.astype(np.uint8)).save("{}/{}_{}_hr.png".format(results, 0, idx))
'''


def test_sr3_preset_against_a_fake_repository(tmp_path):
    repo = tmp_path / "SR3"
    (repo / "data").mkdir(parents=True)
    (repo / "data" / "prepare_data.py").write_text(FAKE_SR3_PREPARE)
    (repo / "infer.py").write_text(FAKE_SR3_INFER)
    (repo / "config").mkdir()
    (repo / "config" / "srbench_sr3.json").write_text(json.dumps(
        {"name": "sr3", "datasets": {"val": {"dataroot": "srbench_64_256", "l_resolution": 64, "r_resolution": 256}}}))
    lr, hr = make_pairs(tmp_path / "data", ["img_a", "img_b"], lr_size=(64, 64))
    args = ["method=sr3", f"method.repo={repo}", "dataset=folder", f"dataset.lr_dir={lr}", f"dataset.hr_dir={hr}",
            "runs=2", "metrics=[psnr]"]
    run_bench(args + [f"output_dir={tmp_path / 'a'}"])
    run_bench(args + [f"output_dir={tmp_path / 'b'}"])
    a, b = results_dir(tmp_path, "a") / "sr3", results_dir(tmp_path, "b") / "sr3"
    for r in (0, 1):
        for i in ("img_a", "img_b"):  # seeded by the wrapper: two benchmark runs agree
            assert np.array_equal(samples(a, r, ["img_a", "img_b"])[i], samples(b, r, ["img_a", "img_b"])[i])
    # the output numbered 2 (1-based) is img_b's: the fake's SR input of img_b plus noise of the second draw
    np.random.seed(1)
    np.random.normal(0, 8, (256, 256, 3))
    noise = np.random.normal(0, 8, (256, 256, 3))
    lr_b = Image.open(lr / "img_b.png").convert("RGB").resize((64, 64), Image.BICUBIC)
    sr_b = np.asarray(lr_b.resize((256, 256), Image.BICUBIC)).astype(np.float64)
    assert np.array_equal(samples(a, 1, ["img_b"])["img_b"], np.clip(sr_b + noise, 0, 255).astype(np.uint8))
