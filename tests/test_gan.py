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


def _official_dasr_shapes(nf: int, blocks: int, k: int, num_params: int) -> tuple[dict, dict]:
    """Parameter names and shapes of DASR's networks for x4, typed from the official code at commit c667910
    (basicsr/archs/srresnetdynamic_arch.py ``MSRResNetDynamic``, arch_util.py ``Dynamic_conv2d`` with
    ``weight [K, out, in, 3, 3]`` and ``bias [K, out]``, degradation_prediction_arch.py
    ``Degradation_Predictor``: six 5x5 convs at indices 0, 2, ..., 10 and ``MappingNet`` 0, 1)."""
    def dyn(name: str, cin: int, cout: int) -> dict:
        return {f"{name}.weight": (k, cout, cin, 3, 3), f"{name}.bias": (k, cout)}

    g = {**dyn("conv_first", 3, nf)}
    for i in range(blocks):
        g |= dyn(f"body.{i}.conv1", nf, nf) | dyn(f"body.{i}.conv2", nf, nf)
    g |= dyn("upconv1", nf, 4 * nf) | dyn("upconv2", nf, 4 * nf) | dyn("conv_hr", nf, nf) | dyn("conv_last", nf, 3)
    chans = [3, nf, nf, nf, nf, nf, num_params]
    p = {}
    for j in range(6):
        p[f"ConvNet.{2 * j}.weight"] = (chans[j + 1], chans[j], 5, 5)
        p[f"ConvNet.{2 * j}.bias"] = (chans[j + 1],)
    p |= {"MappingNet.0.weight": (15, num_params), "MappingNet.0.bias": (15,),
          "MappingNet.1.weight": (k, 15), "MappingNet.1.bias": (k,)}
    return g, p


def _official_dasr_forward(g: dict, p: dict, x: torch.Tensor, blocks: int) -> torch.Tensor:
    """DASR's forward for one image written from the official code's equations (not from methods/dasr.py):
    predictor convs + LeakyReLU(0.2) (4th conv stride 2), global average pool, two linears -> K weights;
    generator convs mix their K kernels by those weights; LeakyReLU(0.1); ReLU inside the residual blocks;
    two (conv, pixel shuffle 2) stages; bilinear x4 of the input added at the end."""
    f = x
    for j in range(6):
        f = F.leaky_relu(F.conv2d(f, p[f"ConvNet.{2 * j}.weight"], p[f"ConvNet.{2 * j}.bias"],
                                  stride=2 if j == 3 else 1, padding=2), 0.2)
    w = f.mean(dim=(2, 3))
    w = (w @ p["MappingNet.0.weight"].T + p["MappingNet.0.bias"]) @ p["MappingNet.1.weight"].T + p["MappingNet.1.bias"]

    def conv(name: str, t: torch.Tensor) -> torch.Tensor:
        kern = torch.einsum("k,koihw->oihw", w[0], g[f"{name}.weight"])
        return F.conv2d(t, kern, w[0] @ g[f"{name}.bias"], padding=1)

    lrelu = lambda t: F.leaky_relu(t, 0.1)  # noqa: E731
    out = lrelu(conv("conv_first", x))
    for i in range(blocks):
        out = out + conv(f"body.{i}.conv2", F.relu(conv(f"body.{i}.conv1", out)))
    out = lrelu(F.pixel_shuffle(conv("upconv1", out), 2))
    out = lrelu(F.pixel_shuffle(conv("upconv2", out), 2))
    out = conv("conv_last", lrelu(conv("conv_hr", out)))
    return out + F.interpolate(x, scale_factor=4, mode="bilinear", align_corners=False)


def test_dasr_preset_loads_official_key_layout(tmp_path):
    """Files written from the official key list load strictly, and the adapter's forward equals the
    official equations evaluated independently on a tiny configuration (nf=8, 2 blocks, K=5)."""
    g_shapes, p_shapes = _official_dasr_shapes(nf=8, blocks=2, k=5, num_params=33)
    rng = torch.Generator().manual_seed(3)
    g = {n: torch.randn(s, generator=rng) * 0.05 for n, s in g_shapes.items()}
    p = {n: torch.randn(s, generator=rng) * 0.1 for n, s in p_shapes.items()}
    torch.save({"params": g}, tmp_path / "net_g.pth")  # BasicSR's save_network layout
    torch.save({"params": p}, tmp_path / "net_p.pth")
    m = preset("dasr", model_path=tmp_path / "net_g.pth", predictor_path=tmp_path / "net_p.pth")
    assert m.scale == 4 and not m.stochastic
    assert {k: tuple(v.shape) for k, v in m.generator.state_dict().items()} == g_shapes
    assert {k: tuple(v.shape) for k, v in m.predictor.state_dict().items()} == p_shapes
    assert m.num_parameters() == sum(v.numel() for v in g.values()) + sum(v.numel() for v in p.values())
    x = lr_image(20)
    out = m.upscale(x, [torch.Generator()])
    assert out.shape == (1, 3, 80, 80)
    with torch.no_grad():
        ref = _official_dasr_forward(g, p, x, blocks=2).clamp(0.0, 1.0)
    assert torch.allclose(out, ref, atol=1e-5), float((out - ref).abs().max())
    tiled = preset("dasr", model_path=tmp_path / "net_g.pth", predictor_path=tmp_path / "net_p.pth", tile=8,
                   tile_overlap=16)
    assert torch.allclose(tiled.upscale(x, [torch.Generator()]), out, atol=1e-5)
    with pytest.raises(ValueError, match="not a DASR generator"):
        DASR(model_path=str(tmp_path / "net_p.pth"), predictor_path=str(tmp_path / "net_p.pth"))


def test_realesrgan_end_to_end_writes_timing(tmp_path):
    make_rrdb(tmp_path / "r.pth")
    res = run_bench(["method=realesrgan", f"method.model_path={tmp_path / 'r.pth'}", "dataset=demo",
                     f"output_dir={tmp_path / 'out'}", "metrics=[psnr]"])
    assert res["runs"] == 1 and res["timing"]["seconds_per_image_run"] > 0
    assert res["timing"]["parameters"] == sum(v.numel() for v in torch.load(tmp_path / "r.pth")["params_ema"].values())
    saved = json.loads((tmp_path / "out" / "demo" / "realesrgan" / "results.json").read_text())
    assert saved["timing"]["image_runs_timed"] == saved["num_images"]
