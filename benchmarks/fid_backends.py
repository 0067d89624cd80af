"""Which FID backend reproduces pyiqa's ``fid`` on the same folders? Prints one line per backend.

    python benchmarks/fid_backends.py [--hr DIR --sr DIR]

Default folders: the RealSR subset of ../shared (512 px HR against bicubic x4 of its LR) when
present, else the demo set. Every backend gets the SAME Inception weights: the real
``pt_inception-2015-12-05-6726825d.pth`` from $TORCH_HOME/hub/pyiqa when it is there,
otherwise a random Inception written to a temporary TORCH_HOME (same architecture and keys;
the numbers then only show whether the pipelines agree, not real FID values).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def bicubic_sr(lr_dir: Path, out: Path, scale: int = 4) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    for p in sorted(lr_dir.glob("*.png")):
        im = Image.open(p).convert("RGB")
        im.resize((im.width * scale, im.height * scale), Image.BICUBIC).save(out / p.name)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hr", type=Path)
    ap.add_argument("--sr", type=Path)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="fid_backends_"))

    from benchmark.metrics.fid import inception_file

    real = inception_file().present
    if not real:
        import random_weights

        os.environ["TORCH_HOME"] = str(tmp / "torch")
        random_weights.write_all(tmp / "torch")
    weights = inception_file().path

    if args.hr and args.sr:
        hr_dir, sr_dir = args.hr, args.sr
    else:
        realsr = ROOT.parent / "shared" / "data" / "realsr_subset"
        if realsr.is_dir():
            hr_dir, sr_dir = realsr / "test_HR", bicubic_sr(realsr / "test_LR", tmp / "sr")
        else:
            from benchmark.data import DemoDataset

            ds = DemoDataset()
            s = ds.samples()
            hr_dir, sr_dir = s[0].hr_path.parent, bicubic_sr(s[0].lr_path.parent, tmp / "sr")
    # same stems in both folders, in the same order
    names = sorted(p.name for p in sr_dir.iterdir() if (hr_dir / p.name).is_file() or
                   any(hr_dir.glob(p.stem.replace("_LR4", "_HR") + ".*")))
    hr_files = sorted(hr_dir.iterdir())
    sr_files = sorted(sr_dir.iterdir())
    size = Image.open(hr_files[0]).size
    print(f"weights: {'REAL' if real else 'RANDOM'} {weights}")
    print(f"folders: SR {sr_dir} ({len(sr_files)} images), HR {hr_dir} ({len(hr_files)} images, {size[0]}x{size[1]})")
    del names

    import pyiqa
    import pyiqa.utils.download_util as du

    du.DEFAULT_CACHE_DIR = str(weights.parent)  # pyiqa fixed it at import; point it at the same file
    cpu = torch.device("cpu")
    results = {}
    fid = pyiqa.create_metric("fid", device=cpu)
    results["pyiqa fid (clean)"] = float(fid(str(sr_dir), str(hr_dir), mode="clean", num_workers=0, verbose=False))
    results["pyiqa fid (legacy_tensorflow)"] = float(fid(str(sr_dir), str(hr_dir), mode="legacy_tensorflow",
                                                         num_workers=0, verbose=False))

    from benchmark.metrics import METRICS

    for mode in ("clean", "legacy_tensorflow"):
        scorer = METRICS.get("fid").factory({"mode": mode}, cpu)
        results[f"srbench fid (mode={mode})"] = scorer.score_set(sr_files, hr_files)

    import torch_fidelity

    out = torch_fidelity.calculate_metrics(input1=str(sr_dir), input2=str(hr_dir), fid=True, verbose=False,
                                           feature_extractor_weights_path=str(weights), cuda=False,
                                           save_cpu_ram=True, cache=False)
    results["torch-fidelity fid"] = float(out["frechet_inception_distance"])

    from torchmetrics.image.fid import FrechetInceptionDistance

    def load(files):
        return torch.stack([torch.from_numpy(np.asarray(Image.open(f).convert("RGB"))).permute(2, 0, 1)
                            for f in files])

    for antialias in (True, False):
        tm = FrechetInceptionDistance(feature=2048, feature_extractor_weights_path=str(weights), antialias=antialias)
        tm.update(load(hr_files), real=True)
        tm.update(load(sr_files), real=False)
        results[f"torchmetrics fid (antialias={antialias})"] = float(tm.compute())

    ref = results["pyiqa fid (clean)"]
    for k, v in results.items():
        print(f"{k:<38} {v:14.6f}   rel. diff to pyiqa clean {abs(v - ref) / abs(ref):.2e}")


if __name__ == "__main__":
    main()
