"""First contact (issue 16): user errors print ``error: ...`` and exit 2 without a traceback at
every stage; ``--debug`` / ``HYDRA_FULL_ERROR=1`` show it; Ctrl-C prints one resumable line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from benchmark import errors
from benchmark.config import check_nested_keys
from conftest import ROOT, folder_dir, make_pairs

TESTS = Path(__file__).resolve().parent
CONF = ROOT / "conf"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR" and not k.startswith("SRB_")}
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), str(ROOT), env.get("PYTHONPATH", "")])
    env.update(extra)
    return env


def bench(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "run_bench.py"), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300, env=_env(**env))


# ----------------------------------------------------------------------------- nested-key typos


def test_nested_typo_suggests_declared_key(tmp_path):
    p = bench("method=noise_control", "method.sigm=0.1", f"output_dir={tmp_path}/o", cwd=tmp_path)
    assert p.returncode == 2, p.stderr
    assert "did you mean 'sigma'" in p.stderr and p.stderr.startswith("error: ")
    assert "Traceback" not in p.stderr and not (tmp_path / "o").exists()


def test_plus_typo_is_refused_before_the_constructor(tmp_path):
    # Hydra's own hint for the typo is +method.sigm=0.1, which used to end in a TypeError from __init__
    p = bench("+method.sigm=0.1", f"output_dir={tmp_path}/o", cwd=tmp_path)
    assert p.returncode == 2 and "did you mean 'sigma'" in p.stderr, p.stderr
    assert "TypeError" not in p.stderr and "Traceback" not in p.stderr


def test_nested_keys_unit():
    check_nested_keys(["method=noise_control", "method.sigma=0.1"], CONF)  # declared: fine
    check_nested_keys(["dataset=folder", "dataset.lr_dir=/x"], CONF)
    with pytest.raises(errors.UserError, match="did you mean 'lr_dir'"):
        check_nested_keys(["dataset=folder", "dataset.lr_dri=/x"], CONF)
    with pytest.raises(errors.UserError, match="did you mean 'sigma'"):  # default method is noise_control
        check_nested_keys(["method.sigmaa=0.1"], CONF)
    with pytest.raises(errors.UserError, match="'bicubic' has no option 'sigma'"):  # every method of a sweep
        check_nested_keys(["method=noise_control,bicubic", "method.sigma=0.1"], CONF)
    # keys inherited through a defaults list count as declared (presets of conf/method/external.yaml)
    check_nested_keys(["method=stablesr", "method.timeout=10"], CONF)
    with pytest.raises(errors.UserError, match="did you mean 'timeout'"):
        check_nested_keys(["method=stablesr", "method.timeot=10"], CONF)



def test_an_option_of_a_metric_that_is_not_chosen_says_to_choose_it():
    """Hydra's answer is "Could not override 'metrics.lpips.net' ... use +metrics.lpips.net" (and the +
    form then runs without lpips): name the chosen metrics and the command that adds it (new-user trial)."""
    check_nested_keys(["metrics=[psnr,lpips]", "metrics.lpips.net=alex"], CONF)
    check_nested_keys(["metrics=paper", "metrics.lpips.net=alex"], CONF)  # in the preset
    with pytest.raises(errors.UserError) as err:  # the default preset, fast: psnr, ssim, niqe
        check_nested_keys(["metrics.lpips.net=alex"], CONF)
    assert str(err.value) == ("metrics.lpips.net=alex: metric 'lpips' is not among the chosen metrics (psnr, ssim, "
                              "niqe), so it has no options to set; choose it too, e.g. "
                              "metrics=[psnr,ssim,niqe,lpips] metrics.lpips.net=alex")
    with pytest.raises(errors.UserError, match=r"chosen metrics \(psnr\)"):
        check_nested_keys(["metrics=[psnr]", "metrics.ssim.downsample=true"], CONF)


# ----------------------------------------------------------------------------- wrong values, unknown names


def test_wrong_type_of_method_value_names_key_type_and_value(tmp_path):
    # used to be a Hydra InstantiationException traceback around TypeError("'>=' not supported ...") with
    # exit 1 (sigma), and "invalid literal for int() with base 10: 'abc'" without the key (scale)
    p = bench("method=noise_control", "method.sigma=abc", "method.scale=abc", f"output_dir={tmp_path}/o",
              cwd=tmp_path)
    assert p.returncode == 2, p.stderr
    assert p.stderr.startswith("error: ") and "Traceback" not in p.stderr and "Instantiation" not in p.stderr
    assert "method.sigma: expected a number (float), got 'abc'" in p.stderr
    assert "method.scale: expected an integer, got 'abc'" in p.stderr
    assert not (tmp_path / "o").exists()


def test_wrong_type_of_top_level_value_in_srbench_words(tmp_path):
    p = bench("runs=abc", f"output_dir={tmp_path}/o", cwd=tmp_path)
    assert p.returncode == 2, p.stderr
    assert p.stderr.strip() == "error: runs=abc: expected an integer, got 'abc' (a string); default runs=10"


def test_value_types_unit():
    from omegaconf import OmegaConf

    from benchmark.config import check_override_values, value_problems

    def node(**kw):
        return OmegaConf.create({"method": {"_target_": "methods.ccsr.CCSR", "sd_path": "/x", "ccsr_path": "/y",
                                            **kw}}).method

    assert value_problems(node(steps=6, t_max=1, tile_vae=False, dtype="fp16")) == []  # an int is a float
    assert value_problems(node(steps=True)) == ["method.steps: expected an integer, got True (a boolean); "
                                                "e.g. method.steps=6"]  # a bool is no count
    assert value_problems(node(steps=1.5))[0].startswith("method.steps: expected an integer, got 1.5")
    assert value_problems(node(tile_vae="yes"))[0].startswith("method.tile_vae: expected true or false")
    # an interpolation is judged where it points; a missing value is "required keys"' business
    assert value_problems(OmegaConf.create({"d": {"s": "abc"}, "method": {
        "_target_": "methods.noise_control.NoiseControl", "scale": "${d.s}", "sigma": "???"}}).method) == []
    check_override_values(["runs='5'", "weights_dir=null", "seed=${runs}", "method.sigma=abc", "-m"])  # all fine here
    check_override_values(["hydra/launcher=parallel", "hydra.launcher.n_jobs=2", "+hydra.x=y"])  # Hydra's own
    with pytest.raises(errors.UserError, match=r"^runs=1,x: expected an integer, got 'x'"):
        check_override_values(["runs=1,x"])  # each value of a sweep
    with pytest.raises(errors.UserError, match=r"stats.level=high: expected a number \(float\)"):
        check_override_values(["stats.level=high"])
    with pytest.raises(errors.UserError, match=r"max_pixels=big: expected an integer or null"):
        check_override_values(["max_pixels=big"])


def test_unknown_group_name_suggests_and_lists(tmp_path):
    from benchmark.config import check_group_choices

    p = bench("method=esrgan", f"output_dir={tmp_path}/o", cwd=tmp_path)
    assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr
    assert "unknown method 'esrgan'" in p.stderr and "did you mean 'realesrgan'" in p.stderr
    assert "available in conf/method/: addsr, bicubic," in p.stderr
    with pytest.raises(errors.UserError, match=r"did you mean 'realsr' or 'drealsr'\?.*available in conf/dataset/"):
        check_group_choices(["dataset=realsrr"], CONF)
    with pytest.raises(errors.UserError, match=r"'ssin': did you mean 'ssim'"):
        check_group_choices(["metrics=[psnr,ssin]"], CONF)
    with pytest.raises(errors.UserError, match=r"'nosie_control': did you mean 'noise_control'"):
        check_group_choices(["-m", "method=bicubic,nosie_control"], CONF)
    from benchmark.data import DATASETS

    with pytest.raises(ValueError, match=r"unknown dataset 'demo2' \(did you mean 'demo'\?\)"):
        DATASETS.get("demo2")


# ----------------------------------------------------------------------------- errors inside the run


def test_error_inside_the_run_has_no_traceback(tmp_path):
    lr, hr = make_pairs(tmp_path / "d", ["a"], lr_size=(8, 8))
    args = ("dataset=folder", f"dataset.lr_dir={lr}", f"dataset.hr_dir={hr}", "crop_border=20", "metrics=[psnr]",
            f"output_dir={tmp_path}/o")
    p = bench(*args, cwd=tmp_path)  # found by the run's size check, after the preflight
    assert p.returncode == 2, p.stderr
    assert "error: crop_border=20 removes the whole image for: a" in p.stderr and "Traceback" not in p.stderr
    assert "Error executing job" not in p.stderr  # Hydra's job-failure line is not printed either
    p = bench(*args, "--debug", cwd=tmp_path)
    assert p.returncode != 0 and "Traceback" in p.stderr and "ValueError: crop_border=20" in p.stderr


def test_debug_switches():
    assert errors.debug_requested(["--debug"])
    assert not errors.debug_requested([]) or os.environ.get("HYDRA_FULL_ERROR") not in (None, "", "0")


def test_user_error_in_a_sweep_names_the_job_and_others_finish(tmp_path):
    lr, hr = make_pairs(tmp_path / "d", ["a", "b"], lr_size=(8, 8))
    p = bench("-m", "method.sigma=-1,0.05", "dataset=folder", f"dataset.lr_dir={lr}", f"dataset.hr_dir={hr}",
              "runs=2", "crop_border=0", "metrics=[psnr]", "device=cpu", f"output_dir={tmp_path}/o", cwd=tmp_path)
    assert p.returncode == 2, p.stderr
    assert "error in job method.sigma=-1" in p.stderr and "method.sigma must be >= 0, got -1" in p.stderr
    assert "Traceback" not in p.stderr
    assert (folder_dir(tmp_path / "o", lr, hr) / "noise_control" / "results.json").is_file()  # the valid job ran


def test_python_m_benchmark_user_error(tmp_path):
    p = subprocess.run([sys.executable, "-m", "benchmark", "check", str(tmp_path / "none.json"),
                        str(tmp_path / "none2.json")], cwd=tmp_path, capture_output=True, text=True,
                       timeout=120, env=_env())
    assert p.returncode == 2, p.stdout + p.stderr
    assert "Traceback" not in p.stderr


def test_classification():
    assert errors.is_user_error(errors.UserError("x"))
    assert isinstance(errors.MissingFilesError("x"), FileNotFoundError) and str(errors.MissingFilesError("m")) == "m"
    try:
        np.zeros(3).reshape(2, 2)  # a ValueError raised inside numpy: a bug, keeps its traceback
    except ValueError as err:
        assert not errors.is_user_error(err)
    assert not errors.is_user_error(RuntimeError("bug"))


# ----------------------------------------------------------------------------- Ctrl-C


def test_ctrl_c_prints_one_line(tmp_path):
    lr, hr = make_pairs(tmp_path / "d", ["a", "b", "c"], lr_size=(8, 8))
    marker = tmp_path / "marker"
    args = ["method._target_=srb_helpers.Pausing", "method.name=pausing", "dataset=folder", f"dataset.lr_dir={lr}",
            f"dataset.hr_dir={hr}", "runs=2", "batch_size=2", "crop_border=0", "metrics=[psnr]", "device=cpu",
            f"output_dir={tmp_path}/o"]
    proc = subprocess.Popen([sys.executable, str(ROOT / "run_bench.py"), *args], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_env(SRB_PAUSE_AT="2", SRB_PAUSE_MARKER=str(marker)))
    deadline = time.monotonic() + 180
    while not marker.exists():
        assert proc.poll() is None, proc.communicate()
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("run did not reach its pause point")
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == errors.EXIT_INTERRUPTED, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("interrupted")]
    folder = folder_dir(tmp_path / "o", lr, hr) / "pausing"
    assert lines == [f"interrupted: 2 sample(s) are stored in {folder}; run the same command again to resume "
                     f"(finished image-runs are kept, scores are computed at the end)"]
    assert len(list((folder / "samples").glob("sample*/*.png"))) == 2  # the first image's two runs
    # that rerunning resumes is tested in test_reliability.py (killed runs end like uninterrupted ones)
