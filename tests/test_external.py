"""The external method against a fake official repository (a small script with a real CLI contract)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hydra.utils import get_class
from omegaconf import OmegaConf

from benchmark.images import read_image
from conftest import compose, make_pairs, run_bench
from methods.external import External

# The fake repository: like the official scripts, it reads every image of --input, writes
# <stem>.png to --output, seeds its noise with --seed and prints a line per image.
FAKE_SCRIPT = r'''
import argparse, os, sys, time
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
if a.mode == "sleep":
    time.sleep(60)
if a.ckpt is not None:
    assert os.path.isfile(a.ckpt), a.ckpt
os.makedirs(a.output, exist_ok=True)
for name in sorted(os.listdir(a.input)):
    stem = os.path.splitext(name)[0]
    img = Image.open(os.path.join(a.input, name)).convert("RGB")
    for k in range(a.n_samples):
        s = a.upscale if not (a.mode == "wrong_size" and stem == "img_b") else a.upscale - 1
        up = np.asarray(img.resize((img.width * s, img.height * s), Image.BICUBIC)).astype(np.float64)
        rng = np.random.default_rng([a.seed + k, sum(map(ord, stem))])
        out = np.clip(up + rng.normal(0, 8, up.shape), 0, 255).astype(np.uint8)
        name_out = stem + ("_out" if a.mode == "misnamed" and stem == "img_c" else "") + ".png"
        if a.mode == "numbered":  # like DDRM/DDNM: outputs numbered in sorted input order
            name_out = "%d_-1.png" % sorted(os.listdir(a.input)).index(name)
        folder = a.output if a.n_samples == 1 else os.path.join(a.output, "sample%02d" % k)
        os.makedirs(folder, exist_ok=True)
        Image.fromarray(out).save(os.path.join(folder, name_out))
        print("wrote", name_out, "seed", a.seed + k)
'''

CMD = "{python} {repo}/inference.py --input {input_dir} --output {output_dir} --seed {seed} --upscale {scale}"


@pytest.fixture
def fake_repo(tmp_path) -> Path:
    repo = tmp_path / "FakeSR"
    repo.mkdir()
    (repo / "inference.py").write_text(FAKE_SCRIPT)
    return repo


def bench(tmp_path, repo, *extra, cmd=CMD, runs=2):
    lr, hr = make_pairs(tmp_path / "data", ["img_a", "img_b", "img_c"])
    return ["method=external", f"method.cmd='{cmd}'", f"method.repo={repo}", "dataset=folder",
            f"dataset.lr_dir={lr}", f"dataset.hr_dir={hr}", f"output_dir={tmp_path / 'out'}", f"runs={runs}",
            "metrics=[psnr]", *extra]


def reference(repo: Path, lr_dir: Path, out: Path, seed: int) -> Path:
    """Run the fake repository by hand, outside the adapter."""
    subprocess.run([sys.executable, str(repo / "inference.py"), "--input", str(lr_dir), "--output", str(out),
                    "--seed", str(seed)], check=True, capture_output=True)
    return out


def test_external_runs_once_per_seed_and_stores_validated_outputs(tmp_path, fake_repo):
    res = run_bench(bench(tmp_path, fake_repo))
    root = tmp_path / "out" / "folder" / "external"
    for r in (0, 1):
        ref = reference(fake_repo, tmp_path / "data" / "LR", tmp_path / f"ref{r}", seed=r)
        for i in ("img_a", "img_b", "img_c"):
            assert np.array_equal(read_image(root / "samples" / f"sample{r:02d}" / f"{i}.png"), read_image(ref / f"{i}.png"))
    assert res["runs"] == 2 and res["lstd"] > 0
    t = res["timing"]
    assert t["image_runs_timed"] == 6 and t["seconds_per_image_run"] > 0 and t["includes_model_loading"] is True
    log = (root / "external.log").read_text()
    assert log.count("$ ") == 2 and "wrote img_c.png seed 1" in log and "exit code 0" in log
    assert not (root / "staging").exists() or not any((root / "staging").iterdir())  # staging cleaned

    # resume: one missing output -> only that run's command runs again, only for that image
    (root / "samples" / "sample01" / "img_b.png").unlink()
    again = run_bench(bench(tmp_path, fake_repo))
    log = (root / "external.log").read_text()
    assert log.count("$ ") == 3 and "seed 1, 1 image(s)" in log
    assert again["timing"]["image_runs_timed"] == 7  # the 6 timed before (timing.json) + 1 regenerated
    ref = reference(fake_repo, tmp_path / "data" / "LR", tmp_path / "ref1b", seed=1)
    assert np.array_equal(read_image(root / "samples" / "sample01" / "img_b.png"), read_image(ref / "img_b.png"))


def test_failing_command_names_exit_code_and_log(tmp_path, fake_repo):
    with pytest.raises(RuntimeError, match=r"(?s)run 0 \(seed 0.*exit code 3.*external\.log.*CUDA out of memory"):
        run_bench(bench(tmp_path, fake_repo, cmd=CMD + " --mode fail"))


def test_timeout_stops_the_command(tmp_path, fake_repo):
    import time

    t0 = time.perf_counter()
    with pytest.raises(TimeoutError, match=r"method.timeout=1 s"):
        run_bench(bench(tmp_path, fake_repo, "method.timeout=1", cmd=CMD + " --mode sleep"))
    assert time.perf_counter() - t0 < 30  # the sleeping python child was killed with its shell


def test_wrong_size_output_names_image_and_seed_and_keeps_valid_ones(tmp_path, fake_repo):
    with pytest.raises(ValueError, match=r"image 'img_b', seed 0 \(run 0\): img_b.png is 48x48, expected 64x64"):
        run_bench(bench(tmp_path, fake_repo, cmd=CMD + " --mode wrong_size"))
    samples = tmp_path / "out" / "folder" / "external" / "samples" / "sample00"
    assert sorted(p.name for p in samples.iterdir()) == ["img_a.png", "img_c.png"]


def test_misnamed_output_lists_what_was_written(tmp_path, fake_repo):
    with pytest.raises(ValueError, match=r"image 'img_c', seed 0 \(run 0\): no output matches(.|\n)*img_c_out\.png"):
        run_bench(bench(tmp_path, fake_repo, cmd=CMD + " --mode misnamed"))


def test_all_runs_mode_uses_n_samples(tmp_path, fake_repo):
    cmd = CMD + " --n_samples {n_samples}"
    res = run_bench(bench(tmp_path, fake_repo, "method.all_runs=true", "method.output_pattern='sample{run:02d}/{id}.png'",
                          cmd=cmd, runs=3))
    assert res["runs"] == 3 and res["timing"]["image_runs_timed"] == 9
    root = tmp_path / "out" / "folder" / "external"
    assert (root / "external.log").read_text().count("$ ") == 1
    # sample k of the script used seed + k: identical to a per-seed run with that seed
    ref = reference(fake_repo, tmp_path / "data" / "LR", tmp_path / "ref2", seed=2)
    assert np.array_equal(read_image(root / "samples" / "sample02" / "img_a.png"), read_image(ref / "img_a.png"))


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
    with pytest.raises(ValueError, match="cmd"):
        External(cmd="???")
    with pytest.raises(ValueError, match="output_pattern must tell runs apart"):
        External(cmd="{python}", all_runs=True)


def test_checkpoint_is_passed_and_checked(tmp_path, fake_repo):
    (fake_repo / "weights").mkdir()
    (fake_repo / "weights" / "model.ckpt").write_bytes(b"w")
    res = run_bench(bench(tmp_path, fake_repo, "+method.weights.ckpt='{repo}/weights/model.ckpt'", runs=1,
                          cmd=CMD + " --ckpt {ckpt}"))
    assert res["timing"]["image_runs_timed"] == 3
    assert json.loads((tmp_path / "out" / "folder" / "external" / "results.json").read_text())["runs"] == 1


def test_hr_inputs_and_numbered_outputs(tmp_path, fake_repo):
    """inputs=hr stages the HR images (x4 of them: the fake script then upscales HR); {index} maps numbers."""
    res = run_bench(bench(tmp_path, fake_repo, "method.inputs=hr", "method.output_pattern='{index}_-1.png'",
                          "method.scale=4", runs=1, cmd=CMD.replace("--upscale {scale}", "--upscale 1") + " --mode numbered"))
    root = tmp_path / "out" / "folder" / "external"
    ref = reference(fake_repo, tmp_path / "data" / "HR", tmp_path / "refhr", seed=0)
    # the fake upscales by 1 with --upscale 1; the reference run used 4, so compare against a run with 1
    subprocess.run([sys.executable, str(fake_repo / "inference.py"), "--input", str(tmp_path / "data" / "HR"),
                    "--output", str(tmp_path / "ref1"), "--seed", "0", "--upscale", "1"], check=True)
    assert np.array_equal(read_image(root / "samples" / "sample00" / "img_b.png"), read_image(tmp_path / "ref1" / "img_b.png"))
    assert res["timing"]["image_runs_timed"] == 3 and ref.exists()


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
