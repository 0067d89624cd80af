"""One preflight (issue 16): everything a run lacks, in one message, before any work."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark import errors, preflight
from benchmark.doctor import missing_advice
from benchmark.weights import WeightFile
from conftest import ROOT, compose, make_pairs

TESTS = Path(__file__).resolve().parent


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR" and not k.startswith("SRB_")}
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), str(ROOT), env.get("PYTHONPATH", "")])
    env.update(extra)
    return env


def test_first_contact_lists_everything_in_one_message(tmp_path):
    """The done-when of issue 16: method=ccsr dataset=realsr with nothing downloaded."""
    out = tmp_path / "reports"
    p = subprocess.run([sys.executable, str(ROOT / "run_bench.py"), "method=ccsr", "dataset=realsr",
                        f"dataset.root={tmp_path / 'RealSRVal_crop128'}", f"output_dir={out}"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=300,
                       env=_env(HF_HUB_OFFLINE="1", TORCH_HOME=str(tmp_path / "torch")))
    assert p.returncode == 2, p.stdout + p.stderr
    err = p.stderr
    assert err.startswith("error: this run cannot start") and "Traceback" not in err
    assert err.count("error:") == 1  # one message, not one per attempt
    assert "data set: RealSR test set not found" in err and "dataset.root=" in err
    # every weight file of the method, with where it goes and the command that fetches it
    for part in ("scheduler/scheduler_config.json", "text_encoder/model.safetensors", "tokenizer/vocab.json",
                 "tokenizer/merges.txt", "unet/diffusion_pytorch_model.safetensors",
                 "controlnet/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.safetensors"):
        assert part in err, part
    assert "python -m benchmark weights method=ccsr" in err and "--download" in err
    # the fetch command keeps only what decides the files (not dataset=, dataset.root=, output_dir=)
    assert "`python -m benchmark weights method=ccsr --download`" in err
    assert "method.sd_path=<path>, method.ccsr_path=<path>" in err
    assert not out.exists()  # found before Hydra created any folder


def test_required_keys_say_what_they_are_and_how_to_set_them(tmp_path):
    # method=gan: its model_path is required (the named presets default to the method cache, issue 15)
    cfg = compose(["method=gan", "dataset=folder", "metrics=[psnr]", f"output_dir={tmp_path}"])
    with pytest.raises(preflight.PreflightError) as info:
        preflight.check(cfg)
    text = str(info.value)
    assert "dataset.lr_dir is required" in text and "set it: dataset.lr_dir=<value>" in text
    assert "method.model_path is required" in text
    assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, ValueError)


def test_key_help_reads_the_line_comment_and_notes(tmp_path):
    f = tmp_path / "m.yaml"
    f.write_text("# A method.\n# Weights: download w.pth from x and pass\n#   method.model_path=/path/w.pth\n"
                 "# Unrelated line.\n_target_: a.B\nrepo: ???   # the clone of github.com/x/y\nmodel_path: ???\n")
    assert preflight.key_help(f, "repo") == ["the clone of github.com/x/y", "Weights: download w.pth from x and pass",
                                             "method.model_path=/path/w.pth"]
    assert preflight.key_help(f, "model_path") == ["Weights: download w.pth from x and pass",
                                                   "method.model_path=/path/w.pth"]


def test_checks_are_pluggable_and_every_problem_is_collected(tmp_path):
    lr, hr = make_pairs(tmp_path / "d", ["a", "b"], lr_size=(8, 8))
    (hr / "b.png").unlink()
    (hr / "c.png").write_bytes(b"not a png")  # an HR image without LR partner, unreadable

    def extra(cfg, found):
        assert "dataset" not in found  # the data set failed, so checks that need it see nothing
        raise errors.UserError("the extra check's problem")

    preflight.register("extra")(extra)
    try:
        cfg = compose(["dataset=folder", f"dataset.lr_dir={lr}", f"dataset.hr_dir={hr}", "metrics=[psnr]",
                       f"output_dir={tmp_path / 'o'}"])
        with pytest.raises(preflight.PreflightError) as info:
            preflight.check(cfg)
    finally:
        preflight.CHECKS[:] = [(t, f) for t, f in preflight.CHECKS if t != "extra"]
    text = str(info.value)
    assert "2 problem(s)" in text and "1. data set:" in text and "2. extra: the extra check's problem" in text
    assert "c.png" in text


def test_doctor_offers_strict_false_only_for_metric_files(tmp_path):
    method_file = WeightFile("unet.safetensors", "https://x", tmp_path / "u", "method ccsr")
    metric_file = WeightFile("lpips.pth", "https://y", tmp_path / "l", "lpips")
    optional_file = WeightFile("niqe.mat", "https://z", tmp_path / "n", "niqe (optional)")
    assert "strict=false" not in missing_advice([method_file, optional_file], [], False)
    assert "point the method's path keys" in missing_advice([method_file], [], False)
    assert "strict=false" in missing_advice([method_file, metric_file], [], False)


def test_doctor_for_ccsr_does_not_suggest_strict_false(tmp_path):
    # runs= and output_dir= decide no file: they stay out of the suggested fetch command
    p = subprocess.run([sys.executable, "-m", "benchmark", "weights", "method=ccsr", "runs=3",
                        f"output_dir={tmp_path / 'o'}", "metrics=[psnr]"], cwd=ROOT,
                       capture_output=True, text=True, timeout=300,
                       env=_env(HF_HUB_OFFLINE="1", TORCH_HOME=str(tmp_path / "torch"),
                                SRBENCH_CACHE=str(tmp_path / "cache")))
    assert p.returncode == 2, p.stdout + p.stderr  # a missing file: the same status as the run that lacks it
    assert "MISSING" in p.stdout and "strict=false" not in p.stdout + p.stderr
    assert "Fetch them with `python -m benchmark weights method=ccsr 'metrics=[psnr]' --download`" in p.stdout
    # ccsr's own path keys (from its preset's sources), not another method's model_path
    assert "point method.sd_path=<path>, method.ccsr_path=<path> at where they are" in p.stdout
    assert "model_path" not in p.stdout


@pytest.mark.parametrize("preset", ["stablesr", "ddrm", "osediff"])
def test_official_repository_preset_without_repo_is_named_before_work(tmp_path, preset):
    """An official-repository preset needs method.repo: the preflight says so (with the preset file that
    names the repository and commit) instead of the run failing once generation has started."""
    lr, hr = make_pairs(tmp_path / "d", ["a"], lr_size=(128, 128))
    cfg = compose([f"method={preset}", "dataset=folder", f"dataset.lr_dir={lr}", f"dataset.hr_dir={hr}",
                   f"output_dir={tmp_path / 'out'}", "metrics=[psnr]"])
    with pytest.raises(errors.UserError) as err:
        preflight.check(cfg)
    msg = str(err.value)
    assert f"method {preset!r} needs method.repo=" in msg and f"conf/method/{preset}.yaml" in msg
    assert not (tmp_path / "out").exists()
    # with the repository given, that problem is gone (others, e.g. its weight files, may remain)
    cfg = compose([f"method={preset}", f"method.repo={tmp_path}", "dataset=folder", f"dataset.lr_dir={lr}",
                   f"dataset.hr_dir={hr}", f"output_dir={tmp_path / 'out'}", "metrics=[psnr]"])
    try:
        preflight.check(cfg)
    except errors.UserError as e:
        assert "needs method.repo=" not in str(e)
