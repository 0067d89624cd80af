"""Where a method's files come from, declared as data in its preset (``sources:``), and fetching them.

A preset lists, for each method config key that holds a path (``model_path``, ``sd_path``,
``weights.ckpt`` ...), the official source of the file or folder behind it, the size and
SHA-256 where the official release (or an independent record of it, named in the preset)
lets us know them, and known mirrors, tried in order when the official source fails::

    sources:
      - key: model_path                 # a file: the key's path is the destination
        url: https://github.com/xinntao/Real-ESRGAN/releases/download/v0.1.0/RealESRGAN_x4plus.pth
        size: 67040989
        sha256: 4fa0d38905f75ac06eb49a7951b426670021be3018265fd191d2125df9d682f1
        mirrors:
          - {hf: amd/realesrgan-x4plus, revision: main, file: RealESRGAN_x4plus.pth}
      - key: ccsr_path                  # a folder: ``files`` are paths inside it
        into: controlnet                # ... inside this subfolder of it
        gdrive_folder: 1aHwgodKwKYZJBKs0QlFzanSjMDhrNyRA
        files:
          - config.json
          - {path: diffusion_pytorch_model.safetensors, or: [diffusion_pytorch_model.bin]}

Origins (one per entry, the same keys in ``mirrors``):

* ``hf: <repo>`` + ``revision`` (+ ``file`` for a single file, or ``subfolder``): the Hugging
  Face Hub, through huggingface_hub (honours ``HF_ENDPOINT``, ``HF_TOKEN``, ``HF_HUB_OFFLINE``);
* ``url: <address>``: a plain HTTPS download (GitHub release assets), resumable;
* ``gdrive: <file id>`` or ``gdrive_folder: <folder id>`` (+ ``file``: the file's name in
  the folder): Google Drive through gdown.

``mirror: true`` marks an entry whose *first* origin is itself a mirror (the official one is
gone: ``note`` says so). Every file is written to a temporary name and moved into place only
once complete and verified (size, SHA-256), so an interrupted or corrupt download never
leaves a file that looks present.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence
from urllib.parse import urlparse

from benchmark import fetch
from benchmark.files import WeightFile

log = logging.getLogger("srbench.sources")

#: sub-folder of the weights folder that holds method files (``<weights_dir>/methods/``)
METHODS_SUBDIR = "methods"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_ORIGIN_KEYS = ("hf", "url", "gdrive", "gdrive_folder")
#: how messages label a first origin marked ``mirror: true`` (README, "CCSR-v2": the same words)
ARCHIVE_LABEL = "archive; the official source is gone"


# ----------------------------------------------------------------------------- cache location


def default_weights_dir() -> Path:
    """The default cache of method files: srbench's cache folder, ``$SRBENCH_CACHE`` (default
    ``~/.cache/srbench``, the demo data set's too). Method files live under its ``methods/`` folder."""
    return Path(os.environ.get("SRBENCH_CACHE") or Path.home() / ".cache" / "srbench").expanduser().resolve()


def method_cache(weights_dir: str | os.PathLike | None) -> Path:
    """``<weights_dir>/methods`` (``weights_dir`` null: :func:`default_weights_dir`)."""
    root = default_weights_dir() if weights_dir in (None, "") else Path(str(weights_dir)).expanduser().resolve()
    return root / METHODS_SUBDIR


def weights_path_resolver(relative: str, *, _root_: Any = None) -> str:
    """OmegaConf resolver ``${srbench_weights:<relative path>}``: the path in the method cache of the
    composed config (its top-level ``weights_dir``), so presets default to where ``--download`` puts files."""
    weights_dir = None
    if _root_ is not None:
        try:
            weights_dir = _root_.get("weights_dir")
        except Exception:  # noqa: BLE001  (a config without weights_dir: the default cache)
            weights_dir = None
    return str(method_cache(weights_dir) / relative)


def register_resolver() -> None:
    """Register ``${srbench_weights:...}`` with OmegaConf (idempotent)."""
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver("srbench_weights"):
        OmegaConf.register_new_resolver("srbench_weights", weights_path_resolver, use_cache=False)


# ----------------------------------------------------------------------------- the data


@dataclass(frozen=True)
class Origin:
    """One place a file can be downloaded from."""

    kind: str  # "hf" | "url" | "gdrive" | "gdrive_folder"
    ref: str  # repo id, URL, or Drive id
    revision: str | None = None  # hf only
    file: str | None = None  # single file: its name at the origin (hf path, Drive folder entry)
    subfolder: str = ""  # hf: folder of the repo the entry's files are in
    mirror: bool = False
    note: str = ""

    def address(self, src: str | None = None) -> str:
        """A human-readable address of file ``src`` (the entry's single file when None)."""
        name = src if src is not None else self.file
        if self.kind == "hf":
            # HF_ENDPOINT read now, as the download reads it
            path = "/".join(p for p in (self.subfolder.strip("/"), name or "") if p)
            return f"{fetch._hf_endpoint()}/{self.ref}/resolve/{self.revision or 'main'}/{path}"
        if self.kind == "url":
            return self.ref if name is None or self.ref.endswith("/" + name) else self.ref.rstrip("/") + "/" + name
        if self.kind == "gdrive":
            return f"https://drive.google.com/uc?id={self.ref}"
        return f"https://drive.google.com/drive/folders/{self.ref}" + (f" (file {name})" if name else "")

    def host_url(self) -> str:
        """A URL whose host (and port) must answer for this origin to be reachable."""
        if self.kind == "hf":
            return fetch._hf_endpoint()
        if self.kind == "url":
            return self.ref
        return "https://drive.google.com"

    def label(self, first: bool = False) -> str:
        """``Hugging Face <repo>@<rev>``, ``Google Drive folder <id>`` ..., with the origin's role: a
        ``mirror: true`` first origin stands in for an official source that is gone
        (``(archive; the official source is gone)``, as the README calls sd2-community's copy of SD 2.1-base);
        later origins are ``(mirror)``."""
        kind = {"hf": "Hugging Face", "url": "URL", "gdrive": "Google Drive", "gdrive_folder": "Google Drive folder"}
        what = f"{kind[self.kind]} {self.ref}" + (f"@{self.revision}" if self.revision else "")
        if not self.mirror:
            return what
        return what + (f" ({ARCHIVE_LABEL})" if first else " (mirror)")


@dataclass(frozen=True)
class FileSpec:
    """One file of an entry: where it goes (relative to the entry's folder) and what it must be."""

    path: str  # destination, relative to the entry's folder ("" for a single-file entry)
    src: str | None = None  # name at the origin when it differs from ``path``
    alternatives: tuple[str, ...] = ()  # other names accepted (diffusers' .bin for .safetensors)
    size: int | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class Entry:
    """One ``sources:`` item: files for one method key, with their origins (official first)."""

    key: str
    origins: tuple[Origin, ...]
    files: tuple[FileSpec, ...]
    into: str = ""
    single: bool = False  # the key's path is the file itself
    note: str = ""
    checksum_from: str = ""


@dataclass(frozen=True)
class Planned:
    """A file of an entry with its destination on this machine."""

    entry: Entry
    spec: FileSpec
    dest: Path  # where the preferred name goes
    #: the key still has the preset's default (the cache path), so a present file must be the release's
    #: file: its declared size is checked. A path the user passed may hold any compatible file.
    declared: bool = True

    def found(self) -> Path | None:
        """The file present on disk (the preferred name or an accepted alternative), or None."""
        if self.dest.is_file():
            return self.dest
        for alt in self.spec.alternatives:
            p = self.dest.parent / Path(alt).name if "/" not in alt else self.dest.parent / alt
            if p.is_file():
                return p
        return None

    def problem(self, full: bool = False) -> str | None:
        """Why the file is not usable (None when it is): missing, wrong size, wrong SHA-256 (``full``)."""
        p = self.found()
        if p is None:
            return "missing"
        if not self.declared:
            return None
        if self.spec.size is not None and p == self.dest and p.stat().st_size != self.spec.size:
            return f"wrong size: {p.stat().st_size} bytes, expected {self.spec.size}"
        if full and self.spec.sha256 and p == self.dest:
            digest = sha256_file(p)
            if digest != self.spec.sha256:
                return f"wrong SHA-256: {digest}, expected {self.spec.sha256}"
        return None

    def src_name(self) -> str | None:
        return self.spec.src if self.spec.src is not None else (self.spec.path or None)

    def sources_text(self) -> str:
        """Every origin of the file, official first: 'URL ...; mirror: ...'."""
        return "; ".join(f"{o.label(first=i == 0)}: {o.address(self._src_for(o))}"
                         for i, o in enumerate(self.entry.origins))

    def _src_for(self, origin: Origin) -> str | None:
        if self.entry.single:
            return origin.file
        return self.src_name()


def _int_or_none(value: Any, where: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: size must be a number of bytes, got {value!r}") from None


def _sha_or_none(value: Any, where: str) -> str | None:
    if value in (None, ""):
        return None
    s = str(value).lower()
    if not _SHA256.match(s):
        raise ValueError(f"{where}: sha256 must be 64 hexadecimal digits, got {value!r}")
    return s


def _origin(item: Mapping[str, Any], where: str, mirror: bool) -> Origin:
    kinds = [k for k in _ORIGIN_KEYS if item.get(k) not in (None, "")]
    if len(kinds) != 1:
        raise ValueError(f"{where}: give exactly one of {', '.join(_ORIGIN_KEYS)} (found {kinds or 'none'})")
    kind = kinds[0]
    if kind == "hf" and not item.get("revision"):
        raise ValueError(f"{where}: a Hugging Face source needs a revision (a commit hash, or 'main')")
    return Origin(kind=kind, ref=str(item[kind]), revision=str(item["revision"]) if item.get("revision") else None,
                  file=str(item["file"]) if item.get("file") else None, subfolder=str(item.get("subfolder") or ""),
                  mirror=bool(item.get("mirror", mirror)), note=str(item.get("note") or ""))


def _file(item: Any, where: str) -> FileSpec:
    if isinstance(item, str):
        return FileSpec(path=item)
    if not isinstance(item, Mapping) or not item.get("path"):
        raise ValueError(f"{where}: a file is a path or {{path: ..., or: [...], size: ..., sha256: ...}}, got {item!r}")
    alts = item.get("or") or ()
    return FileSpec(path=str(item["path"]), src=str(item["src"]) if item.get("src") else None,
                    alternatives=tuple(str(a) for a in ([alts] if isinstance(alts, str) else alts)),
                    size=_int_or_none(item.get("size"), where), sha256=_sha_or_none(item.get("sha256"), where))


def parse(sources: Any, method: str = "method") -> list[Entry]:
    """The ``sources:`` list of a method preset, checked; errors name the entry and what is wrong."""
    if sources in (None, ""):
        return []
    if isinstance(sources, Mapping) or isinstance(sources, (str, bytes)):
        raise ValueError(f"method {method}: sources must be a list of entries (see benchmark/sources.py)")
    out = []
    for i, item in enumerate(sources):
        where = f"method {method}: sources[{i}]"
        if not isinstance(item, Mapping) or not item.get("key"):
            raise ValueError(f"{where}: each entry needs key: <the method config key whose path it fills>")
        where += f" (key {item['key']})"
        first = _origin(item, where, mirror=False)
        mirrors = tuple(_origin(m, f"{where} mirror {j}", mirror=True) for j, m in enumerate(item.get("mirrors") or ()))
        files = item.get("files")
        single = files in (None, ())
        if single:
            specs = (FileSpec(path="", size=_int_or_none(item.get("size"), where),
                              sha256=_sha_or_none(item.get("sha256"), where)),)
            for o in (first, *mirrors):
                if o.kind in ("hf", "gdrive_folder") and not o.file:
                    raise ValueError(f"{where}: a single file from {o.label()} needs file: <its name there>")
        else:
            specs = tuple(_file(f, f"{where} files[{j}]") for j, f in enumerate(files))
        out.append(Entry(key=str(item["key"]), origins=(first, *mirrors), files=specs, into=str(item.get("into") or ""),
                         single=single, note=str(item.get("note") or ""),
                         checksum_from=str(item.get("checksum_from") or "")))
    return out


def plan(entries: Sequence[Entry], paths: Mapping[str, Path | None],
         user_keys: Iterable[str] = ()) -> list[Planned]:
    """Destinations of every file: ``paths`` maps each entry's key to the path the method will read
    (None: unset, then the entry is skipped, the method's own error names the key); ``user_keys``
    are keys set to a path of the user's (their files are not held to the declared size)."""
    out = []
    user = set(user_keys)
    for e in entries:
        base = paths.get(e.key)
        if base is None:
            continue
        for spec in e.files:
            dest = base if e.single else base / e.into / spec.path
            out.append(Planned(e, spec, dest, declared=e.key not in user))
    return out


#: config key (added by :func:`with_user_keys`) listing the path keys a user set explicitly
USER_KEYS = "_srbench_user_paths"


def with_user_keys(method_cfg: Any) -> dict[str, Any]:
    """The resolved method config plus :data:`USER_KEYS`: the ``sources`` keys whose value is not the
    preset's ``${srbench_weights:...}`` default (explicit paths win, and are not held to the release's size)."""
    from omegaconf import DictConfig, OmegaConf

    if not isinstance(method_cfg, DictConfig):
        return dict(method_cfg)
    out = OmegaConf.to_container(method_cfg, resolve=True)
    user = []
    for e in parse(out.get("sources"), str(out.get("name", "method"))):
        parent, _, leaf = e.key.rpartition(".")
        node = OmegaConf.select(method_cfg, parent) if parent else method_cfg
        raw = OmegaConf.to_container(node, resolve=False).get(leaf) if isinstance(node, DictConfig) else None
        if not (isinstance(raw, str) and raw.startswith("${srbench_weights:")):
            user.append(e.key)
    out[USER_KEYS] = user
    return out


def lookup(config: Mapping[str, Any], key: str) -> Any:
    """``config[key]`` for a dotted key (``weights.ckpt``)."""
    node: Any = config
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


# ----------------------------------------------------------------------------- checks


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file (:func:`benchmark.fetch.sha256_file`)."""
    return fetch.sha256_file(path)


# ----------------------------------------------------------------------------- fetching


def _fetch_source(origin: Origin, name: str | None, dest: Path, spec: FileSpec) -> Any:
    """The :class:`benchmark.fetch.Source` of file ``name`` at ``origin``, to be placed at ``dest``.

    For a Hub file with no declared checksum, the Hub's own is used: its ETag of a Git LFS
    file is the file's SHA-256 (huggingface_hub's ``hf_hub_url`` documentation), read with
    ``get_hf_file_metadata`` before the download.
    """
    common = dict(filename=dest.name, sha256=spec.sha256, size=spec.size, mirror=origin.mirror, note=origin.note)
    if origin.kind == "url":
        return fetch.Source(url=origin.address(name), **common)
    if origin.kind in ("gdrive", "gdrive_folder"):
        file_id = origin.ref if origin.kind == "gdrive" else gdrive_folder_file_id(origin.ref, name or "")
        return fetch.Source(gdrive_id=file_id, **common)
    path = "/".join(p for p in (origin.subfolder.strip("/"), name or "") if p)
    src = fetch.Source(hf_repo=origin.ref, hf_path=path, hf_revision=origin.revision or "main", **common)
    if spec.sha256 is None:
        from dataclasses import replace

        from huggingface_hub import get_hf_file_metadata

        meta = get_hf_file_metadata(src.location)
        etag = (meta.etag or "").lower()
        if _SHA256.match(etag):  # a Git LFS file: the Hub publishes its SHA-256
            src = replace(src, sha256=etag, size=spec.size if spec.size is not None else meta.size)
    return src


def gdrive_folder_file_id(folder_id: str, name: str) -> str:
    """The Drive id of file ``name`` (a path inside the folder, or a unique base name) in a shared folder,
    from gdown's listing of the folder (nothing is downloaded)."""
    import gdown

    listing = gdown.download_folder(id=folder_id, skip_download=True, quiet=True, output=os.devnull)
    if not listing:
        raise FileNotFoundError(f"Google Drive folder {folder_id} could not be listed (is it still shared?)")
    paths = {str(getattr(f, "path", "")): str(getattr(f, "id", "")) for f in listing}
    if name in paths:
        return paths[name]
    by_base = [i for p, i in paths.items() if Path(p).name == Path(name).name]
    if len(by_base) == 1:
        return by_base[0]
    raise FileNotFoundError(f"Google Drive folder {folder_id} has no single file {name!r}; it holds: "
                            + ", ".join(sorted(paths)))


def fetch_planned(item: Planned, progress: bool | None = None) -> Path:
    """Download one file from its first origin that works, verified and atomic, through
    :func:`benchmark.fetch.fetch` (resume from ``<file>.part``, size/SHA-256 check, lock).

    Each origin is tried in order (official first, then mirrors); for files with accepted
    alternative names, a name the origin does not have (HTTP 404) moves on to the next name.
    A failed or unverifiable download from one origin is recorded and the next is tried.
    Raises RuntimeError naming every origin tried and its error when none works.
    """
    errors = []
    names = (item.src_name(), *item.spec.alternatives) if not item.entry.single else (None,)
    for origin in item.entry.origins:
        for alt_index, src in enumerate(names):
            dest = item.dest if alt_index == 0 else item.dest.parent / Path(str(src)).name
            name = origin.file if item.entry.single else src
            if alt_index > 0 and name and "/" not in name and "/" in str(item.src_name()):
                name = str(Path(str(item.src_name())).parent / name)  # an alternative name in the same folder
            # an accepted alternative name comes without the preferred name's size/checksum
            spec = item.spec if alt_index == 0 else FileSpec(path=str(src))
            try:
                return fetch.fetch(_fetch_source(origin, name, dest, spec), dest, progress=progress)
            except Exception as err:  # noqa: BLE001  (network, HTTP and checksum errors: try the next)
                errors.append(f"{origin.address(name)}: {type(err).__name__}: {err}")
                if _is_not_found(err) and alt_index + 1 < len(names):
                    continue  # try the next accepted name at the same origin
                break
    raise RuntimeError(f"could not fetch {item.dest}:\n    " + "\n    ".join(errors))


def _is_not_found(err: BaseException) -> bool:
    text = f"{type(err).__name__} {err}"
    return any(s in text for s in ("404", "EntryNotFound", "Not Found", "no single file"))


def reachable_hosts(items: Iterable[Planned]) -> list[str]:
    """The URLs whose hosts must answer for ``items`` to be fetched (first origins)."""
    return sorted({i.entry.origins[0].host_url() for i in items})


def describe_missing(items: Sequence[Planned], method: str) -> list[str]:
    """One line per unusable file: destination, what is wrong, every source."""
    lines = []
    for i in items:
        why = i.problem() or "missing"
        note = f" [{i.entry.note}]" if i.entry.note else ""
        lines.append(f"{i.dest} ({why}; method.{i.entry.key} of {method})\n      from {i.sources_text()}{note}")
    return lines


def weight_files(config: Mapping[str, Any], paths: Mapping[str, Path | None] | None = None) -> list[Any]:
    """The :class:`~benchmark.files.WeightFile` rows of a method config's ``sources``.

    ``paths`` maps each key to the path the method reads (default: the config's value at that
    key); unset keys (``???``/null) are listed as ``<method.KEY is not set>`` so the doctor
    shows them. Rows are named by their path inside the key's folder (the file name for a
    single-file key) and carry the plan :func:`fetch_planned` needs.
    """
    name = str(config.get("name", "method"))
    entries = parse(config.get("sources"), name)
    # without the marker (plain Python use) every path is the user's: presence only
    user_keys = config.get(USER_KEYS, [e.key for e in entries])
    if paths is None:
        paths = {}
        for e in entries:
            v = lookup(config, e.key)
            paths[e.key] = None if v in (None, "", "???") else Path(str(v)).expanduser()
    out = []
    for e in entries:
        base = paths.get(e.key) or Path(f"<method.{e.key} is not set>")
        for item in plan([e], {e.key: base}, user_keys):
            found = item.found() or item.dest
            rel = found.name if e.single else str(Path(e.into, item.spec.path).parent / found.name)
            origin = e.origins[0]
            out.append(WeightFile(name=rel.removeprefix("./"), url=origin.address(item._src_for(origin)),
                                  path=found, needed_by=f"method {name}", planned=item))
    return out
