"""GAN checkpoints through spandrel (RRDB, SwinIR) and the DASR port, loaded through the presets."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from hydra.utils import get_class, instantiate
from omegaconf import OmegaConf

from baseline_models import make_dasr, make_rrdb, make_swinir
from conftest import compose, run_bench
from methods.dasr import DASR, DynamicConv2d
from methods.gan import GANCheckpoint
from methods.tiling import tiled_upscale

CPU = torch.device("cpu")


def build(overrides: list[str]):
    """Instantiate ``cfg.method`` by calling its class, so the adapter's own exception types reach the test
    (Hydra's ``instantiate`` wraps them in an InstantiationException)."""
    cfg = OmegaConf.to_container(compose(overrides).method, resolve=True)
    return get_class(cfg.pop("_target_"))(**cfg)


def preset(name: str, **values) -> object:
    method = build([f"method={name}"] + [f"method.{k}={v}" for k, v in values.items()])
    assert type(method) is type(instantiate(compose([f"method={name}"] + [f"method.{k}={v}" for k, v in values.items()]).method))
    method.load(CPU)
    return method


def lr_image(size: int = 24, seed: int = 1) -> torch.Tensor:
    return torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(seed))


def test_realesrgan_preset_loads_released_layout_and_matches_the_network(tmp_path):
    net = make_rrdb(tmp_path / "RealESRGAN_x4plus.pth")
    m = preset("realesrgan", model_path=tmp_path / "RealESRGAN_x4plus.pth")
    assert isinstance(m, GANCheckpoint) and m.architecture == "ESRGAN" and m.scale == 4 and not m.stochastic
    assert m.num_parameters() == sum(p.numel() for p in net.parameters())
    x = lr_image()
    with torch.no_grad():
        ref = net(x).clamp(0, 1)
    out = m.upscale(x, [torch.Generator()])
    assert out.shape == (1, 3, 96, 96)
    assert torch.allclose(out, ref, atol=1e-6)


def test_scale_comes_from_the_checkpoint(tmp_path):
    make_rrdb(tmp_path / "x2.pth", scale=2)
    cfg = compose(["method=bsrgan", f"method.model_path={tmp_path / 'x2.pth'}", "dataset.scale=2"])
    assert instantiate(cfg.method).scale == 2
    # the data set is x4 by default: a x2 checkpoint is refused before any image is generated
    with pytest.raises(ValueError, match=r"x2 but the data set is x4.*dataset.scale=2"):
        build(["method=bsrgan", f"method.model_path={tmp_path / 'x2.pth'}"])


def test_swinir_preset(tmp_path):
    net = make_swinir(tmp_path / "swinir.pth")
    m = preset("swinir", model_path=tmp_path / "swinir.pth")
    assert m.architecture == "SwinIR" and m.scale == 4
    x = lr_image(16)  # a multiple of the window size: spandrel does not pad, so the network output is exact
    with torch.no_grad():
        ref = net(x).clamp(0, 1)
    assert torch.allclose(m.upscale(x, [torch.Generator()]), ref, atol=1e-5)
    # sizes that are not a multiple of the window are padded by spandrel and cropped back
    assert m.upscale(lr_image(13), [torch.Generator()]).shape == (1, 3, 52, 52)


def test_tiled_equals_untiled(tmp_path):
    make_rrdb(tmp_path / "r.pth")
    whole = preset("realesrgan", model_path=tmp_path / "r.pth", tile=0)
    x = lr_image(30)
    ref = whole.upscale(x, [torch.Generator()])
    # one tile covers the image: bit-identical
    one = preset("realesrgan", model_path=tmp_path / "r.pth", tile=64)
    assert torch.equal(one.upscale(x, [torch.Generator()]), ref)
    # 2x2 tiles with context wider than the receptive field (17 LR convs): equal within float error
    tiled = preset("realesrgan", model_path=tmp_path / "r.pth", tile=16, tile_overlap=18)
    assert torch.allclose(tiled.upscale(x, [torch.Generator()]), ref, atol=1e-5)
    # without context the tile borders differ: the tiles really are run separately
    seams = preset("realesrgan", model_path=tmp_path / "r.pth", tile=16, tile_overlap=0)
    assert (seams.upscale(x, [torch.Generator()]) - ref).abs().max() > 1e-4


def test_tiling_helper_covers_every_pixel_once():
    # with an identity-like "network" (nearest x2), tiling must reproduce it exactly, odd sizes included
    fn = lambda t: F.interpolate(t, scale_factor=2, mode="nearest")  # noqa: E731
    x = torch.rand(2, 3, 23, 17)
    assert torch.equal(tiled_upscale(fn, x, 2, tile=5, overlap=3), fn(x))


def test_gan_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.pth.*releases/download"):
        build(["method=realesrgan", f"method.model_path={tmp_path / 'nope.pth'}"])
    with pytest.raises(ValueError, match="needs method.model_path"):
        GANCheckpoint("???", name="realesrgan")
    torch.save({"foo.weight": torch.zeros(3, 3)}, tmp_path / "odd.pth")
    with pytest.raises(ValueError, match=r"spandrel cannot detect the architecture of .*odd\.pth"):
        GANCheckpoint(str(tmp_path / "odd.pth"))
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"cannot read checkpoint .*junk\.pth"):
        GANCheckpoint(str(tmp_path / "junk.pth"))
    make_rrdb(tmp_path / "rrdb.pth")
    with pytest.raises(ValueError, match=r"expects a SwinIR checkpoint but .* holds ESRGAN"):
        build(["method=swinir", f"method.model_path={tmp_path / 'rrdb.pth'}"])


def test_weight_files_declared(tmp_path):
    make_rrdb(tmp_path / "r.pth")
    (w,) = GANCheckpoint.weight_files(name="realesrgan", model_path=str(tmp_path / "r.pth"), url="http://x")
    assert w.present and w.url == "http://x" and w.needed_by == "method realesrgan"
    assert [f.present for f in DASR.weight_files(model_path="???", predictor_path=None)] == [False, False]


def test_dynamic_conv_with_one_hot_mix_is_that_kernel():
    torch.manual_seed(0)
    conv = DynamicConv2d(4, 6, 3, num_models=5)
    with torch.no_grad():
        conv.weight.normal_()
        conv.bias.normal_()
    x = torch.randn(2, 4, 9, 9)
    mix = torch.zeros(2, 5)
    mix[0, 1] = 1.0
    mix[1, 3] = 1.0
    out = conv(x, mix)
    for b, k in ((0, 1), (1, 3)):
        ref = F.conv2d(x[b:b + 1], conv.weight[k], conv.bias[k], padding=1)
        assert torch.allclose(out[b:b + 1], ref, atol=1e-5)


def test_dasr_preset_loads_official_key_layout(tmp_path):
    g, p = make_dasr(tmp_path)
    sd = torch.load(g)["params"]
    # names and shapes of the official MSRResNetDynamic (K=5 kernels per conv)
    assert sd["conv_first.weight"].shape == (5, 8, 3, 3, 3) and sd["body.1.conv2.bias"].shape == (5, 8)
    assert sd["upconv2.weight"].shape == (5, 32, 8, 3, 3) and sd["conv_last.weight"].shape == (5, 3, 8, 3, 3)
    m = preset("dasr", model_path=g, predictor_path=p)
    assert m.scale == 4 and not m.stochastic
    assert m.num_parameters() == sum(v.numel() for v in sd.values()) + sum(v.numel() for v in torch.load(p).values())
    x = lr_image(20)
    out = m.upscale(x, [torch.Generator()])
    assert out.shape == (1, 3, 80, 80)
    tiled = preset("dasr", model_path=g, predictor_path=p, tile=8, tile_overlap=16)
    assert torch.allclose(tiled.upscale(x, [torch.Generator()]), out, atol=1e-5)
    with pytest.raises(ValueError, match="not a DASR generator"):
        DASR(model_path=str(p), predictor_path=str(p))


def test_realesrgan_end_to_end_writes_timing(tmp_path):
    make_rrdb(tmp_path / "r.pth")
    res = run_bench(["method=realesrgan", f"method.model_path={tmp_path / 'r.pth'}", "dataset=demo",
                     f"output_dir={tmp_path / 'out'}", "metrics=[psnr]"])
    assert res["runs"] == 1 and res["timing"]["seconds_per_image_run"] > 0
    assert res["timing"]["parameters"] == sum(v.numel() for v in torch.load(tmp_path / "r.pth")["params_ema"].values())
    saved = json.loads((tmp_path / "out" / "demo" / "realesrgan" / "results.json").read_text())
    assert saved["timing"]["image_runs_timed"] == saved["num_images"]
