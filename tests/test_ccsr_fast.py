"""CCSR-v2 fast path (issue 17): every switch checked against the default eager path on tiny random
models (CPU), the default path against an independent re-computation of the official sampler, and
bad values refused before any work.

Differences are reported in 8-bit grey levels (0..255) of the finished SR images, the unit a
user sees; the tolerances here are the figures recorded in docs/benchmarks.md.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from benchmarks.make_tiny_ccsr import build_tiny_ccsr
from ccsr_helpers import gens, lr_image, make
from conftest import ROOT, compose, make_pairs
from methods.ccsr import CCSR
from methods.ccsr_sampler import FastPath, inductor_problem



@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_tiny_ccsr(tmp_path_factory.mktemp("tiny_ccsr_fast"))


@pytest.fixture(scope="module")
def eager(tiny) -> CCSR:
    return make(tiny)


SEEDS = (0, 1, 2)


def outputs(m: CCSR, image_seed: int = 0) -> torch.Tensor:
    """The finished 8-bit SR images (as [0,1] floats) of three runs of one image."""
    return m.upscale(lr_image(image_seed).expand(len(SEEDS), -1, -1, -1), gens(*SEEDS))


def grey_levels(a: torch.Tensor, b: torch.Tensor) -> tuple[int, float]:
    """(max, mean) absolute difference in 8-bit grey levels."""
    d = (a - b).abs().mul(255).round()
    return int(d.max()), float(d.mean())


@pytest.fixture(scope="module")
def eager_out(eager) -> torch.Tensor:
    return outputs(eager)


# ----------------------------------------------------------------------------- the default path


@torch.no_grad()
def official_reference(m: CCSR, image: torch.Tensor, g: torch.Generator, swap: bool = False) -> torch.Tensor:
    """One run of the official multi-step command (6 DDPM steps, t_max 0.6667, t_min 0.5, guidance
    4.5, start from the LR latent at t=999), written out step by step from csslc/CCSR@CCSR-v2.0
    ``pipelines/pipeline_ccsr.py`` with every guidance half evaluated on its own:

    - start latent: LR latent sample ``z_a`` noised to t=999;
    - ``_initial_step``: under guidance it takes ``prompt_embeds.chunk(2)[0]`` (the negative
      prompt) and ``vae_conditions.chunk(2)[0]`` (``z_a``), predicts x0 and noises it to t_tao=499;
    - the loop (one step, t=499): ``noise_pred_uncond`` from [negative prompt, ``z_a``],
      ``noise_pred_text`` from [prompt, ``z_b``], ``uncond + 4.5 * (text - uncond)``;
    - t_min > 0: the output is the x0 prediction of that step, decoded by the VAE.

    Random draws of the run, in the adapter's documented order: start noise, the two posterior
    samples, the re-noising noise. ``swap=True`` exchanges the two guidance halves (a wrong sampler).
    """
    s = m._sampler
    unet, cn, vae = s.unet, s.controlnet, s.vae
    ac = s.scheduler.alphas_cumprod
    sf = vae.config.scaling_factor
    post = vae.encode(image * 2 - 1).latent_dist
    shape = tuple(post.mean.shape[1:])
    noise, e_a, e_b, noise_tao = (torch.randn(shape, generator=g)[None] for _ in range(4))
    z_a = (post.mean + post.std * e_a) * sf
    z_b = (post.mean + post.std * e_b) * sf
    pos, neg = s.prompt_embeds, s.negative_embeds

    def eps(x, t, emb, cond):
        tt = torch.tensor(t)
        down, mid = cn(x, tt, encoder_hidden_states=emb, vae_encode_condition_hidden_states=cond, return_dict=False)
        return unet(x, tt, encoder_hidden_states=emb, down_block_additional_residuals=down,
                    mid_block_additional_residual=mid, return_dict=False)[0]

    a = ac[999]
    x = a.sqrt() * z_a + (1 - a).sqrt() * noise
    x0 = (x - (1 - a).sqrt() * eps(x, 999, neg, z_a)) / a.sqrt()
    a = ac[499]
    lat = a.sqrt() * x0 + (1 - a).sqrt() * noise_tao
    uncond, text = eps(lat, 499, neg, z_a), eps(lat, 499, pos, z_b)
    if swap:
        uncond, text = text, uncond
    x0 = (lat - (1 - a).sqrt() * (uncond + 4.5 * (text - uncond))) / a.sqrt()
    return (vae.decode(x0 / sf, return_dict=False)[0] / 2 + 0.5).clamp(0, 1)


@pytest.mark.parametrize("guidance_batch", ["fused", "split"])
def test_sampler_equals_the_official_steps_written_out(tiny, eager, guidance_batch):
    m = eager if guidance_batch == "fused" else make(tiny, guidance_batch=guidance_batch)
    assert m._sampler.schedule().visited == [999, 499]  # the schedule the reference writes out
    image = torch.nn.functional.interpolate(lr_image(3), scale_factor=4, mode="bicubic").clamp(0, 1)
    got = m._sampler.sample(image, gens(*SEEDS))
    want = torch.cat([official_reference(m, image, g) for g in gens(*SEEDS)])
    err = float((got - want).abs().max())
    print(f"guidance_batch={guidance_batch}: max |sampler - official steps| = {err:.2e}")
    assert err < 1e-5
    # the halves matter on these models: a sampler that swapped them would be far from the reference
    swapped = torch.cat([official_reference(m, image, g, swap=True) for g in gens(*SEEDS)])
    assert float((swapped - want).abs().max()) > 1e-3  # 100x the tolerance above
    assert float((got[0] - got[1]).abs().mean()) > 0.01  # and the runs differ from each other


def test_default_leaves_the_networks_as_diffusers_loads_them(tiny, eager):
    import diffusers

    fresh = diffusers.UNet2DConditionModel.from_pretrained(str(tiny[0] / "unet"))
    s = eager._sampler
    assert eager.fast == FastPath() and eager.fast.is_default and eager.fast.changes() == []
    assert {type(p) for p in s.unet.attn_processors.values()} == {type(p) for p in fresh.attn_processors.values()}
    for mod in (s.unet, s.controlnet, s.vae):
        assert getattr(mod, "_compiled_call_impl", None) is None  # nn.Module.compile() sets it
        assert all(p.is_contiguous() for p in mod.parameters())   # not channels_last
        assert all(p.dtype == torch.float32 for p in mod.parameters())
    assert s.vae_dtype == s.dtype == torch.float32 and s.fast.guidance_batch == "fused"


# ----------------------------------------------------------------------------- each switch vs eager

# (switch, max grey levels allowed, mean grey levels allowed): fp32 switches only reorder float
# arithmetic (an 8-bit rounding flip at most); bf16 VAE keeps 8 bits of mantissa.
SWITCHES = [
    (dict(channels_last=True), 1, 0.01),
    (dict(attention="plain"), 1, 0.01),
    (dict(attention="sdpa"), 1, 0.01),
    (dict(guidance_batch="split"), 1, 0.01),
    (dict(channels_last=True, attention="sdpa", guidance_batch="split"), 1, 0.01),
]


@pytest.mark.parametrize("kw,max_levels,mean_levels", SWITCHES, ids=lambda v: str(v) if isinstance(v, dict) else "")
def test_switch_gives_the_eager_outputs(tiny, eager_out, kw, max_levels, mean_levels):
    m = make(tiny, **kw)
    got = outputs(m)
    mx, mean = grey_levels(got, eager_out)
    print(f"{kw}: max {mx} grey levels, mean {mean:.4f}")
    assert mx <= max_levels and mean <= mean_levels, (mx, mean)
    if kw.get("channels_last"):
        conv = m._sampler.unet.conv_in.weight
        assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    if "attention" in kw:
        from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

        want = AttnProcessor if kw["attention"] == "plain" else AttnProcessor2_0
        for mod in (m._sampler.unet, m._sampler.controlnet, m._sampler.vae):
            assert {type(p) for p in mod.attn_processors.values()} == {want}


def test_split_guidance_runs_two_batches_of_n(tiny):
    m = make(tiny, guidance_batch="split")
    seen = []
    h = m._sampler.unet.register_forward_pre_hook(lambda mod, args: seen.append(args[0].shape[0]))
    try:
        outputs(m)
    finally:
        h.remove()
    assert seen == [3, 3, 3]  # initial step (negative prompt), then the loop step as 3 + 3 instead of 6


def test_bf16_vae_is_close_to_fp32(tiny, eager_out):
    """vae_dtype applies on CUDA; here the loaded VAE is cast by hand to check the sampler's bf16 path."""
    m = make(tiny)
    m._sampler.vae.to(torch.bfloat16)
    m._sampler.vae_dtype = torch.bfloat16
    got = outputs(m)
    mx, mean = grey_levels(got, eager_out)
    print(f"vae bf16: max {mx} grey levels, mean {mean:.4f}")
    assert mean < 1.5 and mx <= 12, (mx, mean)
    assert mx > 0  # the bf16 path really ran (bf16 cannot reproduce fp32 to the last bit)


def test_vae_dtype_is_ignored_on_cpu_as_dtype_is(tiny, caplog):
    import logging

    with caplog.at_level(logging.INFO, logger="srbench.ccsr"):
        m = make(tiny, vae_dtype="bf16")
    assert m._sampler.vae_dtype == torch.float32
    assert all(p.dtype == torch.float32 for p in m._sampler.vae.parameters())
    assert "vae_dtype=bf16 applies to CUDA" in caplog.text


ONESTEP = dict(steps=1, t_max=0.6666, t_min=0.0, guidance_scale=1.0)


@pytest.mark.slow
def test_torch_compile_gives_the_eager_outputs(tiny):
    """Inductor on the CPU (C++ kernels). The one-step preset keeps it to one graph per network (one
    batch shape), because every kernel is a g++ run; the switch itself does not depend on the preset."""
    why = inductor_problem(torch.device("cpu"))
    if why:
        pytest.skip(why)
    import torch._inductor.config as inductor_config

    inductor_config.compile_threads = 1  # no worker pool: on 2 shared cores it only adds start-up time
    want = outputs(make(tiny, **ONESTEP))
    m = make(tiny, compile=True, **ONESTEP)
    assert all(getattr(mod, "_compiled_call_impl", None) is not None
               for mod in (m._sampler.unet, m._sampler.controlnet, m._sampler.vae.decoder))
    got = outputs(m)
    mx, mean = grey_levels(got, want)
    print(f"torch.compile (inductor, CPU): max {mx} grey levels, mean {mean:.4f}")
    # measured: max 2, mean 0.0001 (one rounding flip amplified by the colour fix's gain)
    assert mx <= 2 and mean <= 0.01, (mx, mean)
    torch._dynamo.reset()


def test_compile_without_inductor_is_a_clear_error(tiny, monkeypatch):
    import methods.ccsr as ccsr_mod

    monkeypatch.setattr(ccsr_mod, "inductor_problem", lambda device: "no C++ compiler (test)")
    with pytest.raises(ValueError, match=r"method.compile=true, but no C\+\+ compiler \(test\).*method.compile=false"):
        make(tiny, compile=True)


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize("kw,words", [
    (dict(compile="yes"), "compile='yes': expected true or false"),
    (dict(channels_last=1), "channels_last=1: expected true or false"),
    (dict(compile_mode="reduce_overhead"), "compile_mode='reduce_overhead': choose one of default, reduce-overhead"),
    (dict(attention="flash"), "attention='flash': choose one of default, sdpa, plain"),
    (dict(guidance_batch="batched"), "guidance_batch='batched': choose one of fused, split"),
    (dict(vae_dtype="bf32"), "vae_dtype='bf32': choose null"),
])
def test_bad_switch_values_are_refused(kw, words):
    with pytest.raises(ValueError, match="method 'ccsr'") as err:
        CCSR("a", "b", **kw)
    assert words in str(err.value)
    problems = CCSR.preflight_problems(name="ccsr", **kw)
    assert len(problems) == 1 and words in problems[0] and "conf/method/ccsr.yaml" in problems[0]


def test_preset_defaults_are_the_eager_path():
    for preset in ("ccsr", "ccsr_paper", "ccsr_onestep"):
        cfg = compose([f"method={preset}"])
        fast = {k: cfg.method[k] for k in FastPath.__dataclass_fields__}
        assert FastPath(**fast).is_default, (preset, fast)
        assert CCSR.preflight_problems(**fast) == []


@pytest.mark.parametrize("override,pattern", [
    ("method.attention=flsh", r"attention='flsh': choose one of default, sdpa, plain"),
    ("method.compile=maybe", r"method.compile.*expected true or false.*'maybe'"),
])
def test_bad_switch_on_the_command_line_is_an_error_before_any_work(tiny, tmp_path, override, pattern):
    import re

    lr, hr = make_pairs(tmp_path / "data", ["a"], lr_size=(16, 16))
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    env["PYTHONPATH"] = str(ROOT)
    p = subprocess.run([sys.executable, str(ROOT / "run_bench.py"), "method=ccsr", f"method.sd_path={tiny[0]}",
                        f"method.ccsr_path={tiny[1]}", override, "dataset=folder", f"dataset.lr_dir={lr}",
                        f"dataset.hr_dir={hr}", "device=cpu", f"output_dir={tmp_path / 'out'}"],
                       capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert p.returncode == 2, p.stderr[-2000:]
    assert p.stderr.startswith("error: ") and "Traceback" not in p.stderr
    assert re.search(pattern, p.stderr), p.stderr
    assert not (tmp_path / "out").exists()
