"""The paper's published test sets: where they come from, how they are fetched and verified.

Table 1 of the CCSR paper uses StableSR's crops of RealSR and DRealSR and StableSR's synthetic
DIV2K validation set (128 px LR, 512 px HR). All three are published together in one archive,
``StableSR_testsets.zip`` in the Hugging Face data set ``Iceclear/StableSR-TestSets``, under the
**S-Lab License 1.0** (non-commercial; https://github.com/IceClear/StableSR/blob/main/LICENSE.txt).
srbench does not redistribute them: ``python -m benchmark data fetch <name>`` downloads the archive
(pinned to commit a4a8b2a of that repository, SHA-256 and size checked), unpacks only the chosen
set into ``<cache>/datasets/<name>`` atomically, checks it against :data:`SETS`, and writes a
verified marker listing every file with its size and SHA-256.

Where each number in :data:`SETS` comes from (docs/datasets.md repeats this):

* archive SHA-256 ``32a6344e...b803`` and size 3,055,396,861 bytes: the Git LFS pointer of
  ``StableSR_testsets.zip`` in commit a1acb40 ("Upload data") of the Hub repository; the README
  commit a4a8b2a is the repository's latest and does not change the archive.
* folder names ``RealSRVal_crop128``, ``DrealSRVal_crop128``, ``DIV2K_V2_val``: StableSR's README.
* RealSR 100 pairs: the RealSR v3 test split (50 Canon + 50 Nikon images), which StableSR
  centre-crops; DRealSR 93 pairs: the number the CCSR paper and StableSR report for their crop;
  DIV2K 3,000 pairs: the data set card ("3000 synthetic data pairs on the validation of DIV2K").
  None of these counts could be checked against the archive's own listing here (the archive was
  not downloadable when srbench was written), so ``count_verified`` is False: a different count
  in the authentic archive (its SHA-256 matched) is reported as a warning in the marker, not an error.
* LR 128 x 128 and HR 512 x 512: StableSR's README and paper (``crop128``; x4). Checked on every
  image at fetch time.
* the inner layout of each set folder (``test_LR``/``test_HR``): the layout of the 20 RealSR pairs
  in ../shared; other names (``lq``/``gt``, ``LR``/``HR``) are accepted because the archive's own
  listing could not be checked.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmark import fetch as F
from benchmark.data import DATASETS, DatasetError, FolderDataset
from benchmark.errors import MissingFilesError
from benchmark.images import IMAGE_EXTS
from benchmark.synthetic import DIV2K_VALID_HR, div2k_valid_hr

log = logging.getLogger("srbench")

STABLESR_ZIP = F.Source(
    "StableSR_testsets.zip", hf_repo="Iceclear/StableSR-TestSets", hf_repo_type="dataset",
    hf_revision="a4a8b2a3594da51ea05b391d7698409747586b9b",
    sha256="32a6344e2a0d394ffcaa7a9245df14105c590dab3ef0d3540e940add1ef9b803", size=3055396861,
    license="S-Lab License 1.0 (non-commercial), https://github.com/IceClear/StableSR/blob/main/LICENSE.txt",
    note="SHA-256 and size from the Git LFS pointer in commit a1acb40 of the Hub repository")

LR_DIRS = ("test_LR", "lq", "LR", "LQ", "lr")
HR_DIRS = ("test_HR", "gt", "HR", "GT", "hr")


@dataclass(frozen=True)
class PublishedSet:
    """A test set inside a published archive.

    Attributes:
        name: srbench's name (``dataset=<name>``).
        folder: the set's folder name inside the archive (found at any depth).
        source: the archive.
        pairs: expected number of LR/HR pairs; ``count_verified`` says whether it was checked
            against the archive's listing.
        lr_size, hr_size: side of every (square) LR / HR image in pixels.
        env: environment variable that points at an unpacked copy (offline use).
        description: one line for ``data list``.
    """

    name: str
    folder: str
    source: F.Source
    pairs: int
    count_verified: bool
    lr_size: int
    hr_size: int
    env: str
    description: str
    title: str = ""  # display name in messages

    def label(self) -> str:
        return self.title or self.name

    def default_root(self) -> Path:
        return F.cache_dir() / "datasets" / self.name

    def root(self, override: str | os.PathLike | None = None) -> tuple[Path, bool]:
        """(folder, managed): ``override``, else ``$<env>``, else srbench's cache (managed=True)."""
        if override not in (None, "", "???"):
            return Path(override).expanduser(), False
        if os.environ.get(self.env):
            return Path(os.environ[self.env]).expanduser(), False
        return self.default_root(), True

    def fetch_command(self) -> str:
        return f"python -m benchmark data fetch {self.name}"


SETS: dict[str, PublishedSet] = {s.name: s for s in (
    PublishedSet("realsr", "RealSRVal_crop128", STABLESR_ZIP, 100, False, 128, 512, "SRBENCH_REALSR",
                 "RealSR v3 test, centre-cropped by StableSR (RealSRVal_crop128)", "RealSR"),
    PublishedSet("drealsr", "DrealSRVal_crop128", STABLESR_ZIP, 93, False, 128, 512, "SRBENCH_DREALSR",
                 "DRealSR test, centre-cropped by StableSR (DrealSRVal_crop128)", "DRealSR"),
    PublishedSet("div2k_stablesr", "DIV2K_V2_val", STABLESR_ZIP, 3000, False, 128, 512, "SRBENCH_DIV2K_STABLESR",
                 "DIV2K valid crops with StableSR's Real-ESRGAN degradation (DIV2K_V2_val)", "DIV2K_V2_val"),
)}


def get(name: str) -> PublishedSet:
    if name not in SETS:
        raise ValueError(f"unknown published set {name!r}; available: {', '.join(SETS)}")
    return SETS[name]


def find_pair_dirs(root: Path) -> tuple[Path | None, Path | None]:
    """The LR and HR sub-folders of a set folder (first existing name of :data:`LR_DIRS` / :data:`HR_DIRS`)."""
    lr = next((root / d for d in LR_DIRS if (root / d).is_dir()), None)
    hr = next((root / d for d in HR_DIRS if (root / d).is_dir()), None)
    return lr, hr


def check_set(spec: PublishedSet, root: Path, strict: bool) -> tuple[list[str], list[str]]:
    """(errors, warnings) of the set at ``root`` against ``spec``: layout, pairing, image sizes, count.

    Image sizes are read from the file headers (PIL), so this is fast. With ``strict`` a count
    different from a *verified* expected count is an error; an unverified count only warns.
    """
    from PIL import Image

    errors: list[str] = []
    warnings: list[str] = []
    lr_dir, hr_dir = find_pair_dirs(root)
    if lr_dir is None or hr_dir is None:
        have = sorted(p.name for p in root.iterdir()) if root.is_dir() else []
        return [f"{root} has no LR/HR folders (expected one of {', '.join(LR_DIRS)} and one of "
                f"{', '.join(HR_DIRS)}; found {', '.join(have) or 'nothing'})"], []

    def images(d: Path) -> dict[str, Path]:
        out = {}
        for p in sorted(d.iterdir()):
            if p.name.startswith("."):
                continue
            if p.suffix.lower() not in IMAGE_EXTS:
                errors.append(f"odd file {p} (not an image)")
                continue
            out[p.stem] = p
        return out

    lr, hr = images(lr_dir), images(hr_dir)
    errors += [f"missing HR partner of {lr[s]} (expected {hr_dir}/{s}.*)" for s in sorted(set(lr) - set(hr))]
    errors += [f"missing LR partner of {hr[s]} (expected {lr_dir}/{s}.*)" for s in sorted(set(hr) - set(lr))]
    for files, side, role in ((lr, spec.lr_size, "LR"), (hr, spec.hr_size, "HR")):
        for stem, p in files.items():
            try:
                with Image.open(p) as im:
                    size = im.size
            except OSError as err:
                errors.append(f"unreadable {role} image {p} ({err})")
                continue
            if size != (side, side):
                errors.append(f"odd {role} image {p}: {size[0]}x{size[1]}, expected {side}x{side}")
    n = len(set(lr) & set(hr))
    if n != spec.pairs:
        msg = (f"{root} holds {n} pairs; the published {spec.name} set has {spec.pairs}"
               + ("" if spec.count_verified else " (an unverified count, see docs/datasets.md)"))
        (errors if strict and spec.count_verified else warnings).append(msg)
    return errors, warnings


def status(spec: PublishedSet, root: Path | None = None) -> str:
    """``verified``, ``MODIFIED (...)``, ``present (not verified by srbench)`` or ``missing``."""
    root = root or spec.root()[0]
    if not root.is_dir():
        return "missing"
    if F.read_marker(root) is None:
        return "present (not verified by srbench)"
    problems = F.check_against_marker(root)
    return "verified" if not problems else f"MODIFIED ({len(problems)} problem(s); run `python -m benchmark data verify {spec.name}`)"


def fetch_set(name: str, progress: bool | None = None) -> Path:
    """Download the archive of set ``name`` (cached, resumed, checked), unpack the set atomically
    into its cache folder, verify it, and return the folder.

    Raises:
        OfflineError: no network (the message says what to fetch where and how to point at a copy).
        ChecksumError: the archive is not the published one.
        ValueError: the archive does not hold the set, or the set fails its checks (each file named).
    """
    spec = get(name)
    dest = spec.default_root()
    archive = F.fetch(spec.source, progress=progress)
    token = spec.folder

    def members(member: str) -> str | None:
        parts = member.replace("\\", "/").split("/")
        if "__MACOSX" in parts or parts[-1].startswith("."):
            return None
        if token not in parts[:-1]:
            return None
        return "/".join(parts[parts.index(token) + 1:])

    def check(folder: Path) -> dict[str, Any]:
        errors, warnings = check_set(spec, folder, strict=True)
        if errors:
            raise ValueError(f"{spec.name} from {archive.name} failed its checks:\n  - " + "\n  - ".join(errors))
        for w in warnings:
            log.warning("%s", w)
        return {"warnings": warnings}

    try:
        F.unpack(archive, dest, members=members, check=check,
                 marker={"set": spec.name, "folder": spec.folder, "source": spec.source.to_dict()})
    except ValueError as err:
        if "no member matched" in str(err):
            import zipfile

            with zipfile.ZipFile(archive) as z:
                tops = sorted({n.split("/")[0] for n in z.namelist()})[:20]
            raise ValueError(f"{archive} has no folder named {token}/ (top-level entries: {', '.join(tops)}); "
                             "the archive's layout changed: please report it") from err
        raise
    return dest


def verify_set(name: str, root: str | os.PathLike | None = None, hashes: bool = True) -> list[str]:
    """Problems of the set on disk: against its verified marker when it has one (with ``hashes``,
    every file's SHA-256 is recomputed), else against :data:`SETS` (layout, pairing, sizes)."""
    spec = get(name)
    path, _ = spec.root(root)
    if not path.is_dir():
        return [f"{spec.name} is not at {path}"]
    if F.read_marker(path) is not None:
        return F.check_against_marker(path, hashes=hashes)
    errors, warnings = check_set(spec, path, strict=False)
    return errors + [f"warning: {w}" for w in warnings]


def ensure(spec: PublishedSet, root: str | os.PathLike | None) -> Path:
    """The folder of a set for a run: a given or env-var folder as it is (checked, warnings only
    for count); srbench's cache folder, fetched when missing and the network is reachable.

    Raises before any work:
        FileNotFoundError: missing and offline (exact command, expected folder, how to point at a copy),
            or a given folder that does not exist.
        DatasetError (ValueError): a fetched set that was altered since it was verified (each file named).
    """
    path, managed = spec.root(root)
    how = (f"point at an unpacked copy with dataset.root=<folder holding the LR and HR folders> or "
           f"{spec.env}=<that folder>")
    if not managed:
        if not path.is_dir():
            raise FileNotFoundError(f"{spec.label()} test set not found at {path} (dataset={spec.name}). Fetch the set ({spec.folder} of "
                                    f"{spec.source.filename}, huggingface.co/datasets/{spec.source.hf_repo}) with "
                                    f"`{spec.fetch_command()}` (it goes to {spec.default_root()}), or {how}.")
        if F.read_marker(path) is not None:
            problems = F.check_against_marker(path)
            if problems:
                raise DatasetError(f"{spec.name} at {path} differs from the copy srbench verified:\n  - "
                                   + "\n  - ".join(problems) + f"\nFetch it again with `{spec.fetch_command()}`.")
        else:
            errors, warnings = check_set(spec, path, strict=False)
            for w in warnings + errors:  # sizes/pairing are checked again, as errors, by the folder data set
                log.warning("%s: %s", spec.name, w)
        return path
    if path.is_dir() and F.read_marker(path) is not None:
        problems = F.check_against_marker(path)
        if problems:
            raise DatasetError(f"{spec.name} at {path} differs from the copy srbench verified:\n  - "
                               + "\n  - ".join(problems)
                               + f"\nDelete {path} and fetch it again with `{spec.fetch_command()}`.")
        return path
    if path.is_dir() and any(path.iterdir()):  # unpacked there by hand: used as a given copy, not refetched
        errors, warnings = check_set(spec, path, strict=False)
        for w in [f"{path} was not fetched by srbench (no {F.MARKER})"] + warnings + errors:
            log.warning("%s: %s", spec.name, w)
        return path
    reason = F.offline_reason([spec.source])
    if reason is not None:
        raise MissingFilesError(
            f"dataset {spec.name} is not at {path} and cannot be downloaded ({reason}); nothing was run.\n"
            f"On a machine with network run `{spec.fetch_command()}` (downloads {spec.source.filename}, "
            f"{spec.source.size / 1e9:.1f} GB, {spec.source.license}) and copy {path} here, or {how}.")
    log.info("dataset %s is missing: fetching it into %s", spec.name, path)
    return fetch_set(spec.name)


class StableSRTestSet(FolderDataset):
    """A StableSR test set (128 px LR, 512 px HR, x4), fetched on first use when online."""

    set_name = ""

    def __init__(self, root: str | None = None, scale: int = 4, name: str | None = None) -> None:
        spec = get(self.set_name)
        path = ensure(spec, root)
        lr, hr = find_pair_dirs(path)
        if lr is None:
            raise FileNotFoundError(f"{spec.name}: {path} has no LR folder (one of {', '.join(LR_DIRS)}); "
                                    f"fetch the set with `{spec.fetch_command()}`")
        super().__init__(str(lr), str(hr) if hr else None, scale, name or spec.name)


@DATASETS.register("realsr")
class RealSRDataset(StableSRTestSet):
    """StableSR-cropped RealSR (``RealSRVal_crop128``): 128 px LR, 512 px HR."""

    set_name = "realsr"


@DATASETS.register("drealsr")
class DRealSRDataset(StableSRTestSet):
    """StableSR-cropped DRealSR (``DrealSRVal_crop128``): 128 px LR, 512 px HR."""

    set_name = "drealsr"


@DATASETS.register("div2k_stablesr")
class DIV2KStableSRDataset(StableSRTestSet):
    """StableSR's DIV2K_V2_val: DIV2K valid crops degraded with Real-ESRGAN's pipeline (128 / 512 px)."""

    set_name = "div2k_stablesr"


# ----------------------------------------------------------------------------- python -m benchmark data

DATA_USAGE = """usage: python -m benchmark data list
       python -m benchmark data fetch <name> [<name> ...]
       python -m benchmark data verify <name> [<folder>]

list    every data set: where it comes from, where it is (or would be), whether it is present/verified
fetch   download (resumable, cached in $SRBENCH_CACHE/downloads), unpack atomically, verify, mark verified
verify  re-hash a fetched set against its verified marker (or check a copy's layout and image sizes)"""


def _list_rows() -> list[tuple[str, str, str, str]]:
    rows = []
    for name in DATASETS.names():
        if name in SETS:
            spec = SETS[name]
            path, _ = spec.root()
            rows.append((name, status(spec, path), str(path),
                         f"{spec.description}; {spec.pairs} pairs; {spec.source.filename} from "
                         f"huggingface.co/datasets/{spec.source.hf_repo} ({spec.source.license.split(',')[0]})"))
        elif name == "div2k_bicubic":
            given = os.environ.get("SRBENCH_DIV2K_VALID_HR")
            path = Path(given) if given else F.cache_dir() / "datasets" / "div2k_valid_hr"
            st = ("present (not verified by srbench)" if given and path.is_dir() else
                  "verified" if F.read_marker(path) and not F.check_against_marker(path) else
                  "missing" if not path.is_dir() else "MODIFIED")
            rows.append((name, st, str(path), f"DIV2K valid HR (100 images) from {DIV2K_VALID_HR.url}, "
                         "MATLAB-bicubic x4 LR built on first use"))
        elif name == "imagenet1k_bicubic":
            rows.append((name, "user-provided", "dataset.hr_dir=<ILSVRC2012 val>",
                         "DDRM/DDNM's 1k ImageNet val images, 256 px, x4 bicubic (list: DDRM's imagenet_val_1k.txt)"))
        elif name == "synthetic":
            built = F.cache_dir() / "synthetic"
            n = len([p for p in built.iterdir() if not p.name.startswith(".")]) if built.is_dir() else 0
            rows.append((name, f"{n} built", str(built), "any HR folder + recipe bicubic|realesrgan|bsrgan"))
        elif name == "demo":
            rows.append((name, "built on use", str(F.cache_dir()), "six 256 px crops of scikit-image photos, bicubic x4"))
        else:
            rows.append((name, "user-provided", "dataset.lr_dir=<folder>", "any folder of LR (and HR) images"))
    return rows


def cli(argv: list[str]) -> int:
    """``python -m benchmark data ...``; exit 0 ok, 1 a set is missing/altered or a fetch failed, 2 usage."""
    import sys

    if not argv or argv[0] in ("-h", "--help"):
        print(DATA_USAGE)
        return 0 if argv else 2
    cmd, args = argv[0], argv[1:]
    if cmd == "list":
        rows = [("name", "status", "location", "what")] + _list_rows()
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        for r in rows:
            print("  ".join(c.ljust(widths[i]) if i < 3 else c for i, c in enumerate(r)).rstrip())
        print(f"\ncache: {F.cache_dir()} (SRBENCH_CACHE)")
        return 0
    if cmd == "fetch":
        if not args:
            print(DATA_USAGE, file=sys.stderr)
            return 2
        rc = 0
        for name in args:
            try:
                if name in SETS:
                    path = fetch_set(name)
                    print(f"{name}: verified at {path}")
                elif name == "div2k_bicubic":
                    print(f"{name}: DIV2K valid HR verified at {div2k_valid_hr()} (LR is built on first use)")
                else:
                    print(f"{name}: nothing to fetch (fetchable: {', '.join(list(SETS) + ['div2k_bicubic'])})",
                          file=sys.stderr)
                    rc = 2
            except (OSError, ValueError, RuntimeError) as err:
                print(f"{name}: {err}", file=sys.stderr)
                rc = 1
        return rc
    if cmd == "verify":
        if not args or args[0] not in SETS:
            print(f"verify needs one of {', '.join(SETS)}\n\n{DATA_USAGE}", file=sys.stderr)
            return 2
        problems = verify_set(args[0], args[1] if len(args) > 1 else None)
        for p in problems:
            print(p)
        errors = [p for p in problems if not p.startswith("warning:")]
        print(f"{args[0]}: {'OK' if not errors else f'{len(errors)} problem(s)'}")
        return 1 if errors else 0
    print(f"unknown data command {cmd!r}\n\n{DATA_USAGE}", file=sys.stderr)
    return 2
