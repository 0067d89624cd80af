"""diffusers baselines on tiny random pipelines saved with save_pretrained (no download)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from baseline_models import make_ldm_sr, make_sd_upscaler
from conftest import compose, make_pairs, run_bench
from methods.diffusers_sr import LDMSR, SDUpscaler

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def pipes(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipes")
    return {"ldm_sr": make_ldm_sr(root / "ldm"), "sd_upscaler": make_sd_upscaler(root / "sdup")}


def method(pipes, name, *extra):
    m = instantiate(compose([f"method={name}", f"method.model_path={pipes[name]}", "method.steps=3", *extra]).method)
    m.load(CPU)
    return m


def gens(seeds):
    return [torch.Generator().manual_seed(s) for s in seeds]


def lr(n, h=8, w=12):
    return torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(7)).expand(n, -1, -1, -1).contiguous()


@pytest.mark.parametrize("name", ["ldm_sr", "sd_upscaler"])
def test_batch_equals_one_by_one_and_seeds(pipes, name):
    m = method(pipes, name)
    state = torch.get_rng_state()
    batch = m.upscale(lr(3), gens([4, 5, 6]))
    assert torch.equal(state, torch.get_rng_state())  # only the runs' generators were used
    assert batch.shape == (3, 3, 32, 48) and 0 <= batch.min() and batch.max() <= 1
    alone = torch.cat([m.upscale(lr(1), gens([s])) for s in (4, 5, 6)])
    assert torch.allclose(batch, alone, atol=1e-5)
    assert torch.equal(m.upscale(lr(1), gens([5])), m.upscale(lr(1), gens([5])))  # same seed reproduces
    assert (batch[0] - batch[1]).abs().max() > 1e-3  # different seeds differ


def test_ldm_loop_equals_the_pipeline_call_with_eta_zero(pipes):
    m = method(pipes, "ldm_sr", "method.eta=0")
    x = lr(2, 8, 8)
    ours = m.upscale(x, gens([1, 2]))
    ref = m.pipe(image=2 * x - 1, generator=gens([1, 2]), num_inference_steps=3, eta=0.0, output_type="np").images
    assert np.allclose(ours.permute(0, 2, 3, 1).numpy(), ref, atol=1e-5)


def test_ldm_eta_draws_step_noise_from_the_generators(pipes):
    m = method(pipes, "ldm_sr", "method.eta=1")
    a = m.upscale(lr(1), gens([3]))
    torch.manual_seed(123)  # the global RNG must not matter
    b = m.upscale(lr(1), gens([3]))
    assert torch.equal(a, b)
    assert not torch.equal(a, method(pipes, "ldm_sr", "method.eta=0").upscale(lr(1), gens([3])))


@pytest.mark.parametrize("name", ["ldm_sr", "sd_upscaler"])
def test_odd_sizes_are_padded_and_cropped(pipes, name):
    """A 7x9 LR image equals the same network run on the image reflect-padded (by numpy, as documented) to
    the networks' multiple, cropped back to 4x the LR size."""
    m = method(pipes, name)
    x = lr(1, 7, 9)
    out = m.upscale(x, gens([0]))
    assert out.shape == (1, 3, 28, 36)
    mult = m._multiple()
    ph, pw = -7 % mult, -9 % mult
    assert ph and pw  # the case really needs padding
    padded = torch.from_numpy(np.pad(x.numpy(), ((0, 0), (0, 0), (0, ph), (0, pw)), mode="reflect"))
    ref = m.upscale(padded, gens([0]))[..., :28, :36]
    assert torch.allclose(out, ref, atol=1e-5)
    zero = torch.from_numpy(np.pad(x.numpy(), ((0, 0), (0, 0), (0, ph), (0, pw)), mode="constant"))
    assert not torch.allclose(out, m.upscale(zero, gens([0]))[..., :28, :36], atol=1e-4)


def test_sd_upscaler_equals_diffusers_pipeline(pipes):
    """The adapter equals diffusers' own StableDiffusionUpscalePipeline called as its documentation shows
    (PIL image, prompt, noise_level, guidance_scale, one generator per image) with the same generators."""
    from diffusers import StableDiffusionUpscalePipeline
    from PIL import Image

    m = method(pipes, "sd_upscaler", "method.noise_level=30", "method.guidance_scale=3.0", "method.prompt=a cat")
    x8 = (lr(1, 8, 8) * 255).round().to(torch.uint8)  # 8-bit, so the PIL route sees the same pixels
    x = (x8.float() / 255).expand(2, -1, -1, -1).contiguous()
    ours = m.upscale(x, gens([11, 12]))
    pipe = StableDiffusionUpscalePipeline.from_pretrained(str(pipes["sd_upscaler"]))
    pipe.set_progress_bar_config(disable=True)
    img = Image.fromarray(x8[0].permute(1, 2, 0).numpy())
    ref = pipe(prompt=["a cat"] * 2, image=[img, img], num_inference_steps=3, guidance_scale=3.0, noise_level=30,
               negative_prompt=[""] * 2, generator=gens([11, 12]), output_type="np").images
    assert np.allclose(ours.permute(0, 2, 3, 1).numpy(), ref, atol=1e-4)


def test_parameters_and_errors(pipes, tmp_path):
    m = method(pipes, "sd_upscaler")
    p = m.pipe
    expected = sum(x.numel() for mod in (p.unet, p.vae, p.text_encoder) for x in mod.parameters())
    assert m.num_parameters() == expected
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no model_index.json"):
        LDMSR(str(tmp_path / "empty")).load(CPU)
    with pytest.raises(ValueError, match="model_path"):
        SDUpscaler("???")
    (w,) = LDMSR.weight_files(name="ldm_sr", model_path=str(pipes["ldm_sr"]))
    assert w.present and w.path.name == "model_index.json"
    (w,) = LDMSR.weight_files(name="ldm_sr", model_path="CompVis/ldm-super-resolution-4x-openimages")
    assert w.url.endswith("CompVis/ldm-super-resolution-4x-openimages")


def test_ldm_end_to_end_with_timing(pipes, tmp_path):
    lr_dir, hr_dir = make_pairs(tmp_path / "d", ["a", "b"], lr_size=(8, 8))
    res = run_bench(["method=ldm_sr", f"method.model_path={pipes['ldm_sr']}", "method.steps=2", "dataset=folder",
                     f"dataset.lr_dir={lr_dir}", f"dataset.hr_dir={hr_dir}", "runs=2", "metrics=[psnr]",
                     "crop_border=0", f"output_dir={tmp_path / 'out'}"])
    t = res["timing"]
    assert t["image_runs_timed"] == 4 and t["seconds_per_image_run"] > 0 and t["parameters"] > 0
    assert res["lstd"] > 0
