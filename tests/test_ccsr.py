"""CCSR-v2 adapter on tiny random components saved in the official layout (CPU, seconds)."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmarks.make_tiny_ccsr import build_tiny_ccsr
from ccsr_helpers import SMALL, gens, lr_image, make
from conftest import folder_dir, make_pairs, run_bench
from methods.ccsr import CCSR, finish, prepare_lr
from methods.ccsr_sampler import (
    SamplerSettings,
    adain_color_fix,
    gaussian_weights,
    sliding_windows,
    truncate,
    wavelet_color_fix,
)



@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> tuple[Path, Path]:
    """(sd_path, ccsr_path): tiny random models in the official layout, written once per session."""
    return build_tiny_ccsr(tmp_path_factory.mktemp("tiny_ccsr"))


@pytest.fixture(scope="module")
def ccsr(tiny) -> CCSR:
    return make(tiny)


def copy_tree(tiny, tmp_path) -> tuple[Path, Path]:
    sd, cc = tmp_path / "sd", tmp_path / "cc"
    shutil.copytree(tiny[0], sd)
    shutil.copytree(tiny[1], cc)
    return sd, cc


# ----------------------------------------------------------------------------- loading


def test_controlnet_keys_are_diffusers_controlnet_with_the_latent_condition(ccsr, tiny):
    """The state dict is diffusers' ControlNetModel's for the same config, with the RGB conditioning
    embedding replaced by ``condition_conv_in`` (the keys of the official CCSR-v2 release)."""
    from diffusers import ControlNetModel
    from safetensors.torch import load_file

    cfg = json.loads((tiny[1] / "controlnet" / "config.json").read_text())
    assert cfg["_class_name"] == "ControlNetModel" and cfg["use_vae_encode_condition"] is True
    plain = {k: v for k, v in cfg.items() if not k.startswith("_") and k != "use_vae_encode_condition"}
    ref = set(ControlNetModel(**plain).state_dict())
    want = {k for k in ref if not k.startswith("controlnet_cond_embedding.")} | {"condition_conv_in.weight",
                                                                               "condition_conv_in.bias"}
    on_disk = set(load_file(tiny[1] / "controlnet" / "diffusion_pytorch_model.safetensors"))
    loaded = set(ccsr._sampler.controlnet.state_dict())
    assert on_disk == want and loaded == want
    assert tuple(ccsr._sampler.controlnet.condition_conv_in.weight.shape) == (32, 4, 3, 3)
    # the loaded weights are the file's, bit for bit
    sd = load_file(tiny[1] / "controlnet" / "diffusion_pytorch_model.safetensors")
    assert torch.equal(ccsr._sampler.controlnet.condition_conv_in.weight, sd["condition_conv_in.weight"])
    assert ccsr.num_parameters() == sum(
        t.numel() for f in (tiny[0] / "unet" / "diffusion_pytorch_model.safetensors",
                            tiny[0] / "text_encoder" / "model.safetensors",
                            tiny[1] / "controlnet" / "diffusion_pytorch_model.safetensors",
                            tiny[1] / "vae" / "diffusion_pytorch_model.safetensors")
        for t in load_file(f).values())


@pytest.mark.parametrize("edit,words", [
    ("drop", ["missing keys", "condition_conv_in.bias"]),
    ("extra", ["unexpected keys", "controlnet_cond_embedding.conv_in.weight"]),
    ("shape", ["condition_conv_in.weight"]),
])
def test_weights_that_do_not_match_the_config_are_rejected(tiny, tmp_path, edit, words):
    from safetensors.torch import load_file, save_file

    sd, cc = copy_tree(tiny, tmp_path)
    f = cc / "controlnet" / "diffusion_pytorch_model.safetensors"
    state = load_file(f)
    if edit == "drop":
        del state["condition_conv_in.bias"]
    elif edit == "extra":
        state["controlnet_cond_embedding.conv_in.weight"] = torch.zeros(16, 3, 3, 3)
    else:
        state["condition_conv_in.weight"] = torch.zeros(32, 3, 3, 3)
    save_file(state, f)
    with pytest.raises(ValueError) as err:
        CCSR(str(sd), str(cc), **SMALL).load(torch.device("cpu"))
    msg = str(err.value)
    assert str(cc / "controlnet") in msg and all(w in msg for w in words), msg


@pytest.mark.parametrize("remove", ["ccsr:vae", "ccsr:controlnet", "sd:unet", "sd:tokenizer", "sd:scheduler",
                                    "ccsr:controlnet/diffusion_pytorch_model.safetensors"])
def test_missing_part_names_the_folder(tiny, tmp_path, remove):
    sd, cc = copy_tree(tiny, tmp_path)
    root, part = remove.split(":")
    target = (cc if root == "ccsr" else sd) / part
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    with pytest.raises(FileNotFoundError) as err:
        CCSR(str(sd), str(cc), **SMALL).load(torch.device("cpu"))
    assert str(target.parent if target.suffix else target) in str(err.value), str(err.value)


def test_unset_paths_are_reported_at_load_not_at_construction():
    m = CCSR("???", "???")  # what test_configs instantiates: construction reads nothing
    with pytest.raises(FileNotFoundError, match="method.sd_path is not set.*\n.*method.ccsr_path is not set"):
        m.load(torch.device("cpu"))


@pytest.mark.parametrize("key,value,words", [
    ("use_vae_encode_condition", False, ["use_vae_encode_condition", "expected true"]),
    ("cross_attention_dim", 64, ["cross_attention_dim=64", "cross_attention_dim=32", "unet"]),
    ("block_out_channels", [32, 32], ["block_out_channels"]),
    ("_class_name", "UNet2DConditionModel", ["_class_name", "ControlNetModel"]),
])
def test_controlnet_config_that_does_not_fit_is_rejected(tiny, tmp_path, key, value, words):
    sd, cc = copy_tree(tiny, tmp_path)
    f = cc / "controlnet" / "config.json"
    cfg = json.loads(f.read_text())
    cfg[key] = value
    f.write_text(json.dumps(cfg))
    with pytest.raises(ValueError) as err:
        CCSR(str(sd), str(cc), **SMALL).load(torch.device("cpu"))
    msg = str(err.value)
    assert str(f) in msg and all(w in msg for w in words), msg


def test_weight_files_list_the_official_layout(tiny, tmp_path):
    files = CCSR.weight_files(sd_path=str(tiny[0]), ccsr_path=str(tiny[1]), name="ccsr")
    names = sorted(w.name for w in files)
    assert names == sorted(["scheduler/scheduler_config.json", "text_encoder/config.json",
                            "text_encoder/model.safetensors", "tokenizer/vocab.json", "tokenizer/merges.txt",
                            "unet/config.json", "unet/diffusion_pytorch_model.safetensors", "controlnet/config.json",
                            "controlnet/diffusion_pytorch_model.safetensors", "vae/config.json",
                            "vae/diffusion_pytorch_model.safetensors"])
    assert all(w.present and w.needed_by == "method ccsr" for w in files)
    absent = CCSR.weight_files(sd_path="???", ccsr_path=str(tmp_path))
    assert not any(w.present for w in absent) and any("method.sd_path is not set" in str(w.path) for w in absent)


# ----------------------------------------------------------------------------- schedule


def _ddpm_timesteps(tiny, steps: int) -> list[int]:
    from diffusers import DDPMScheduler

    s = DDPMScheduler.from_pretrained(str(tiny[0]), subfolder="scheduler")
    s.set_timesteps(steps)
    return s.timesteps.tolist()


def test_scheduler_timesteps_are_sd21_leading_spacing(tiny):
    # SD-2.1 config: 1000 train steps, "leading" spacing, steps_offset 1 -> k * (1000 // steps) + 1
    assert _ddpm_timesteps(tiny, 6) == [831, 665, 499, 333, 167, 1]
    assert _ddpm_timesteps(tiny, 45) == [22 * k + 1 for k in range(44, -1, -1)]


@pytest.mark.parametrize("steps,t_max,t_min,t_tao,loop,final", [
    # official multi-step: last round(4.0002)=4 of [831..1] is [499,333,167,1], minus round(3)=3 -> [499]
    (6, 0.6667, 0.5, 499, [499], 499),
    # paper: last 30 of 45 start at 22*29+1=639, minus the last 15 -> 639, 617, ..., 331 (15 steps)
    (45, 0.6667, 0.3333, 639, list(range(639, 330, -22)), 331),
    # one-step: only the x0 prediction at 999
    (1, 0.6666, 0.0, 1, [], None),
    # no t_min: the schedule runs to its end (t=1)
    (10, 0.5, 0.0, 401, [401, 301, 201, 101, 1], None),
])
def test_truncated_schedule_matches_hand_computation(tiny, steps, t_max, t_min, t_tao, loop, final):
    st = SamplerSettings(steps=steps, t_max=t_max, t_min=t_min)
    sch = truncate(_ddpm_timesteps(tiny, steps), st)
    assert (sch.initial, sch.t_tao, list(sch.loop), sch.final_x0) == (999, t_tao, loop, final)
    assert len(sch.loop) == {6: 1, 45: 15, 1: 0, 10: 5}[steps]


@pytest.mark.parametrize("kw,visited,batches", [
    (dict(), [999, 499], [2, 4]),                                      # guided: loop batch is 2 x runs
    (dict(steps=10, t_max=0.5, t_min=0.0, guidance_scale=1.0), [999, 401, 301, 201, 101, 1], [2] * 6),
    (dict(steps=1, t_max=0.6666, t_min=0.0, guidance_scale=1.0), [999], [2]),
])
def test_networks_run_at_exactly_the_visited_timesteps(tiny, kw, visited, batches):
    m = make(tiny, **kw)
    seen: list[tuple[int, int]] = []

    def hook(_mod, args, kwargs):
        t = args[1] if len(args) > 1 else kwargs["timestep"]
        seen.append((int(t), args[0].shape[0]))

    handle = m._sampler.unet.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        m.upscale(lr_image().expand(2, -1, -1, -1), gens(0, 1))
    finally:
        handle.remove()
    assert [t for t, _ in seen] == visited and [b for _, b in seen] == batches


def test_invalid_settings_are_rejected():
    for kw, word in [(dict(steps=1, t_min=0.5), "one-step"), (dict(color_fix="histogram"), "color_fix"),
                     (dict(t_min=0.7, t_max=0.6), "t_min"), (dict(steps=6, t_max=0.6667, t_min=0.05), "t_min=0.05"),
                     (dict(sampler="euler"), "sampler"), (dict(dtype="int8"), "dtype")]:
        with pytest.raises(ValueError, match=word):
            CCSR("a", "b", **kw)


# ----------------------------------------------------------------------------- randomness


def test_same_seed_same_output_different_seed_different_output(ccsr):
    lr = lr_image()
    a = ccsr.upscale(lr, gens(7))
    b = ccsr.upscale(lr, gens(7))
    c = ccsr.upscale(lr, gens(8))
    assert a.shape == (1, 3, 64, 64) and 0 <= float(a.min()) and float(a.max()) <= 1
    assert torch.equal(a, b)
    assert float((a - c).abs().mean()) > 0.01


def test_global_rng_is_neither_used_nor_changed(ccsr):
    lr = lr_image()
    state = torch.random.get_rng_state()
    torch.manual_seed(123)
    a = ccsr.upscale(lr, gens(3))
    after = torch.random.get_rng_state()
    torch.manual_seed(999)
    b = ccsr.upscale(lr, gens(3))
    torch.random.set_rng_state(state)
    assert torch.equal(a, b)
    torch.manual_seed(123)
    assert torch.equal(after, torch.random.get_rng_state())


def assert_same_8bit(a: torch.Tensor, b: torch.Tensor) -> None:
    """Equal up to rare 8-bit rounding flips (float reassociation, then the colour fix's gain)."""
    diff = (a - b).abs()
    assert float((diff > 1e-6).float().mean()) < 0.01 and float(diff.mean()) < 1e-3, (
        float((diff > 1e-6).float().mean()), float(diff.mean()))


@pytest.mark.parametrize("kw", [dict(), dict(steps=4, t_max=0.5, t_min=0.0, guidance_scale=1.0)])
def test_batch_of_runs_equals_runs_one_by_one(tiny, kw):
    m = make(tiny, **kw)
    lr = lr_image(1)
    seeds = (0, 1, 2)
    # the sampler: same math in a different batch shape, so equal to float precision
    img = torch.nn.functional.interpolate(lr, scale_factor=4)
    batch = m._sampler.sample(img, gens(*seeds))
    single = torch.cat([m._sampler.sample(img, gens(s)) for s in seeds])
    assert torch.allclose(batch, single, atol=1e-5)
    assert float((batch[0] - batch[1]).abs().mean()) > 0.01  # and the runs differ from each other
    # the whole method, 8-bit outputs included
    out = m.upscale(lr.expand(3, -1, -1, -1), gens(*seeds))
    assert_same_8bit(out, torch.cat([m.upscale(lr, gens(s)) for s in seeds]))


def test_vae_encoder_runs_once_per_image(ccsr):
    calls = []
    handle = ccsr._sampler.vae.encoder.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    try:
        ccsr.upscale(torch.cat([lr_image(0).expand(3, -1, -1, -1), lr_image(1).expand(2, -1, -1, -1)]),
                     gens(0, 1, 2, 0, 1))
    finally:
        handle.remove()
    assert calls == [1, 1]


# ----------------------------------------------------------------------------- tiling


def test_sliding_windows_by_hand():
    assert sliding_windows(8, 8, 8, 4) == [(0, 8, 0, 8)]
    assert sliding_windows(12, 8, 8, 4) == [(0, 8, 0, 8), (4, 12, 0, 8)]
    # 10 - 8 = 2 is not a multiple of the stride: a last tile flush with the border
    assert sliding_windows(10, 8, 8, 4) == [(0, 8, 0, 8), (2, 10, 0, 8)]
    # a tile larger than the latent is clipped to it
    assert sliding_windows(6, 8, 16, 8) == [(0, 6, 0, 8)]


def test_gaussian_weights_by_hand():
    w = gaussian_weights(4, 4)

    def f(d: float, n: int) -> float:  # exp(-d^2 / n^2 / (2 var)) / sqrt(2 pi var), var = 0.01
        return np.exp(-d * d / (n * n) / 0.02) / np.sqrt(2 * np.pi * 0.01)

    # x midpoint (4-1)/2 = 1.5, y midpoint 4/2 = 2 (the official asymmetry)
    assert np.allclose(w.numpy()[2, 0], f(0.0, 4) * f(1.5, 4), rtol=1e-6)
    assert np.allclose(w.numpy()[0, 1], f(2.0, 4) * f(0.5, 4), rtol=1e-6)
    assert torch.equal(w[:, 0], w[:, 3]) and not torch.equal(w[0], w[3])


def test_tiled_equals_untiled_when_the_image_fits_one_tile(tiny):
    lr = lr_image(2)
    plain = make(tiny)._sampler
    tiled = make(tiny, tile_diffusion=True, tile_size=64, tile_stride=32)._sampler
    img = torch.nn.functional.interpolate(lr, scale_factor=4)
    a = plain.sample(img, gens(5, 6))
    b = tiled.sample(img, gens(5, 6))
    assert torch.allclose(a, b, atol=1e-5)


def test_tiled_diffusion_covers_a_larger_image(tiny):
    m = make(tiny, tile_diffusion=True, tile_size=64, tile_stride=32, tile_vae=True, vae_tile_size=64)
    seen = []
    handle = m._sampler.unet.register_forward_pre_hook(lambda mod, args: seen.append(tuple(args[0].shape[-2:])))
    try:
        out = m.upscale(lr_image(3, size=24), gens(0))
    finally:
        handle.remove()
    # 96 px -> 12x12 latent, 8x8 tiles at stride 4: 2 x 2 tiles per network evaluation (2 evaluations)
    assert seen == [(8, 8)] * 4 + [(8, 8)] * 4
    assert out.shape == (1, 3, 96, 96) and torch.isfinite(out).all()


# ----------------------------------------------------------------------------- pre/post-processing


def test_input_sizing_follows_the_official_script():
    lr = np.zeros((100, 130, 3), np.uint8)  # H x W
    # short side 100 < 512 // 4 = 128: enlarged by 1.28 to (166, 128), x4 -> (664, 512), multiple of 8 already
    assert prepare_lr(lr, 4, 512).size == (664, 512)
    assert prepare_lr(np.zeros((64, 64, 3), np.uint8), 4, 512).size == (512, 512)
    # large enough: x4 only, then resized down to a multiple of 8 (130*4 = 520, 129*4 = 516 -> 512)
    assert prepare_lr(np.zeros((130, 129, 3), np.uint8), 4, 512).size == (512, 520)


def test_colour_fixes_keep_their_defining_property():
    g = torch.Generator().manual_seed(0)
    src = torch.rand(1, 3, 32, 32, generator=g)
    tgt = torch.rand(2, 3, 32, 32, generator=g) * 0.3 + 0.5
    out = adain_color_fix(tgt, src.expand(2, -1, -1, -1))
    for i in range(2):  # per-channel mean and (unbiased) std become the source's
        assert torch.allclose(out[i].mean((1, 2)), src[0].mean((1, 2)), atol=1e-5)
        assert torch.allclose(out[i].flatten(1).std(1), src[0].flatten(1).std(1), atol=1e-3)
    # wavelet: high + low of the same image rebuild it; a constant shift of the target is removed
    assert torch.allclose(wavelet_color_fix(src, src), src, atol=1e-6)
    assert torch.allclose(wavelet_color_fix(src + 0.1, src), src, atol=1e-5)


def test_finish_rounds_then_truncates_like_pil():
    sr = torch.full((1, 3, 8, 8), 0.5)            # 127.5 -> 128 (round half to even gives 128)
    out = finish(sr, sr, "nofix", (8, 8))
    assert torch.equal(out, torch.full_like(sr, 128 / 255))
    resized = finish(sr, sr, "nofix", (4, 4))
    assert resized.shape == (1, 3, 4, 4) and torch.equal(resized, torch.full((1, 3, 4, 4), 128 / 255))


# ----------------------------------------------------------------------------- memory fallback


def test_cuda_oom_halves_the_batch_then_tiles_and_keeps_the_outputs(tiny, caplog):
    m = make(tiny)
    lr = lr_image(4)
    want = torch.cat([m.upscale(lr, gens(s)) for s in (0, 1, 2, 3)])
    real = m._sampler.sample

    def flaky(image, generators):
        if len(generators) > 1 or not m._sampler.tile_diffusion:
            for g in generators:  # a failed try has drawn noise: the retry must start from the saved state
                torch.randn(5, generator=g)
            raise torch.cuda.OutOfMemoryError("fake")
        return real(image, generators)

    m._sampler.sample = flaky
    with caplog.at_level(logging.WARNING, logger="srbench.ccsr"):
        got = m.upscale(lr.expand(4, -1, -1, -1), gens(0, 1, 2, 3))
    text = caplog.text
    assert "4 runs in one batch; retrying with batches of 2" in text
    assert "2 runs in one batch; retrying with batches of 1" in text
    assert "switching to tiled diffusion" in text
    # one 8x8 latent tile (tile_size 512 > 64 px): tiling does not change the result here
    assert_same_8bit(got, want)

    def always(image, generators):
        raise torch.cuda.OutOfMemoryError("fake")

    m._sampler.sample = always
    with pytest.raises(torch.cuda.OutOfMemoryError, match="even with one run per batch and tiling"):
        m.upscale(lr, gens(0))


# ----------------------------------------------------------------------------- end to end


def test_run_bench_with_tiny_weights_writes_lstd(tiny, tmp_path):
    lr, hr = make_pairs(tmp_path / "data", ["a", "b"], lr_size=(16, 16))
    res = run_bench(["method=ccsr", f"method.sd_path={tiny[0]}", f"method.ccsr_path={tiny[1]}",
                     "method.process_size=64", "dataset=folder", f"dataset.lr_dir={lr}", f"dataset.hr_dir={hr}",
                     "runs=3", "metrics=[psnr,ssim]", "device=cpu", f"output_dir={tmp_path / 'out'}"])
    assert res["runs"] == 3 and res["lstd"] > 0 and res["metrics"]["psnr"]["gstd"] > 0
    assert res["timing"]["parameters"] > 0
    for r in range(3):
        assert (folder_dir(tmp_path / "out", lr, hr) / "ccsr" / "samples" / f"sample{r:02d}" / "a.png").is_file()
