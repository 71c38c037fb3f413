"""Model manager: the registry of known models and the per-user folder of installed ones.

Qt-free. The CLI (``maskstudio models ...``) and the Models dialog are thin shells over
:class:`ModelStore`.

On-disk layout (the engine's :class:`maskstudio.engine.models.ModelSet` scans the same folders)
-------------------------------------------------------------------------------------------------
``<models_dir>`` is ``settings.models_dir``: platformdirs ``user_data_dir("MaskStudio")/models``,
overridden by the environment variable ``MASKSTUDIO_MODELS_DIR`` or the CLI flag ``--models-dir``.
Nothing is ever written inside the installed package.

::

    <models_dir>/
      <id>/                          one folder per installed registry entry
        <id>.safetensors             weights converted to our format (checkpoints.save_checkpoint)
        <id>.json                    {"arch", "config", "meta", ...} written beside it
        install.json                 install record: id, role, arch, source (URL or "import"),
                                     original file names + SHA-256 + sizes, whether a published
                                     checksum was verified, SHA-256 of <id>.safetensors, date (UTC)
      <boundary-set id>/             role "boundary-set": the direction files themselves
        <name>.npy | <name>.pt       (InterFaceGAN .npy, e4e .pt tensors), validated on install
        install.json
      .partial/<id>/<file>.part      downloads in progress (kept for HTTP Range resume)
      .work/staging-<id>-<random>/   a model being assembled; renamed to <id>/ with os.replace
      .work/trash-<id>-...           a replaced/removed model on its way out
      .work/<id>.lock                per-model OS file lock (one installer at a time)

Only ``<id>/`` folders hold models: everything in progress sits one level deeper, so a scan of
``<models_dir>/*/*.json`` never sees a half-built model. An install is atomic: files are
downloaded to ``.partial`` (same file system), checked (checksum when the registry knows one,
then keys/shapes against the registry entry's architecture config), converted into a staging
folder and only then renamed to ``<id>/``. A failure removes the staging folder; nothing
half-installed is left behind. ``install.json`` is not a checkpoint config (it has no
``arch``); scanners skip it.

The registry itself is ``checkpoints/registry.json`` (shipped, readable JSON): every model
MaskStudio knows, with role, arch + architecture config, official source URLs, licence as
published by the authors, expected file layout, SHA-256 where known (``null`` otherwise).
Shipped starter weights (``checkpoints/dmn_starter.*``, ``checkpoints/face_parser.*``) are
entries with ``"shipped": true``; they are never copied into ``<models_dir>``.

API::

    store = ModelStore.from_settings(settings)          # or ModelStore(models_dir, registry=...)
    store.list() -> [ModelStatus(entry, state, path, size_bytes, record, partial_bytes)]
        # state: installed | shipped | available (has URLs) | manual (import by hand) | missing
    store.install(id, progress=fn, cancel=fn, force=False, urls={name: mirror_url})
    store.import_files(id, [paths], progress=fn, cancel=fn, force=False)
    store.verify(id=None, deep=True) -> [VerifyResult(id, ok, problem, path)]
    store.remove(id)

``progress`` receives :class:`Progress` (stage download|checksum|convert|done, file, done,
total); ``cancel`` is polled (return True to stop: :class:`DownloadCancelled`, the partial
download is kept for resume). Problems raise :class:`~maskstudio.errors.CheckpointError`
subclasses (:class:`DownloadError`, :class:`DiskSpaceError`), ``LatentFileError`` for direction
files, ``ConfigError`` for unknown ids / misuse — each message names the URL or file.

Conversion: official pickles are read with ``checkpoints.load_official`` (``weights_only``
+ allow-list; a pickle that would run code is refused), the network is built from the
registry entry's config on the meta device, ``checkpoints.check_state_dict`` checks every
key and shape (a wrong file is named, with the architecture it looks like), and
``checkpoints.save_checkpoint`` writes our safetensors + JSON. Extras kept: ``latent_avg``;
DualStyleGAN style codes as ``exstyle_code.<style image name>`` [1, n_latent, 512] (names also
in ``meta["exstyle_names"]``); pSp ``opts`` (plain values) in ``meta["opts"]``.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import http.client
import json
import os
import shutil
import socket
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from maskstudio.errors import (
    CheckpointError,
    ConfigError,
    LatentFileError,
    MaskStudioError,
    file_error,
)
from maskstudio.settings import SHIPPED_CHECKPOINTS

__all__ = [
    "REGISTRY_PATH",
    "ROLES",
    "ENGINE_ROLE",
    "RegistryFile",
    "RegistryEntry",
    "load_registry",
    "Progress",
    "ModelStatus",
    "VerifyResult",
    "ModelStore",
    "DownloadError",
    "DownloadCancelled",
    "DiskSpaceError",
    "sha256_file",
    "format_bytes",
    "record_shipped_hashes",
]

REGISTRY_PATH = SHIPPED_CHECKPOINTS / "registry.json"

#: Registry roles. ``boundary-set`` entries have no architecture: they are folders of directions.
ROLES = ("dmn", "parser", "stylegan2", "dualstylegan-style", "psp-encoder", "agilegan-encoder",
         "agilegan-style", "boundary-set")
#: Registry role -> engine role (``maskstudio.engine.models.ROLE_ARCHS``).
ENGINE_ROLE = {"dmn": "dmn", "parser": "parser", "stylegan2": "stylegan", "dualstylegan-style": "dual",
               "psp-encoder": "encoder", "agilegan-encoder": "encoder", "agilegan-style": "agile",
               "boundary-set": None}
#: Registry role -> the architecture it must have.
ROLE_ARCH = {"dmn": "maskgan_dmn", "parser": "face_parser", "stylegan2": "stylegan2",
             "dualstylegan-style": "dualstylegan", "psp-encoder": "psp_encoder",
             "agilegan-encoder": "agilegan_encoder", "agilegan-style": "agilegan_generator",
             "boundary-set": None}
LAYOUTS = ("bare_state_dict", "g_ema", "state_dict_opts", "exstyle_codes", "torch_tensor",
           "npy_direction", "maskstudio_safetensors", "maskstudio_json", "dmn_boundary_json")
FILE_KINDS = ("weights", "config", "style_codes", "direction")

INSTALL_RECORD = "install.json"
PARTIAL_DIR = ".partial"
WORK_DIR = ".work"          # staging / trash folders and lock files (depth 2: the engine never scans them)
STAGING_PREFIX = "staging-"
TRASH_PREFIX = "trash-"
CHUNK_BYTES = 1 << 20
DIRECTION_SUFFIXES = (".npy", ".pt", ".pth")


class DownloadError(CheckpointError):
    """A download failed: no network, HTTP error, timeout, truncated or wrong file."""


class DownloadCancelled(CheckpointError):
    """The user cancelled an install; the partial download is kept for a later resume."""


class DiskSpaceError(CheckpointError):
    """Not enough free space in the models folder."""


def format_bytes(n: int | None) -> str:
    if n is None:
        return "?"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"  # pragma: no cover


def sha256_file(path: str | os.PathLike[str], progress: Callable[[int, int], None] | None = None) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks (``progress(done, total)`` after each)."""
    h = hashlib.sha256()
    p = Path(path)
    total = p.stat().st_size
    done = 0
    with open(p, "rb") as f:
        while True:
            chunk = f.read(CHUNK_BYTES)
            if not chunk:
                break
            h.update(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done, total)
    return h.hexdigest()


# ============================================================================ registry


@dataclass(frozen=True)
class RegistryFile:
    """One file of an entry, as published by its authors."""

    name: str
    kind: str  # weights | config | style_codes | direction
    layout: str
    urls: tuple[str, ...] = ()
    sha256: str | None = None
    size_bytes: int | None = None
    optional: bool = False


@dataclass(frozen=True)
class RegistryEntry:
    """One model MaskStudio knows (``checkpoints/registry.json`` ``models[]``)."""

    id: str
    title: str
    role: str
    arch: str | None
    config: dict[str, Any] | None
    shipped: bool
    files: tuple[RegistryFile, ...]
    source: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    licence: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    expected: dict[str, int] | None = field(default=None, compare=False, hash=False)
    notes: str = ""

    @property
    def is_boundary_set(self) -> bool:
        return self.role == "boundary-set"

    @property
    def downloadable(self) -> bool:
        """Every required file has at least one URL."""
        req = [f for f in self.files if not f.optional]
        return bool(req) and all(f.urls for f in req)

    @property
    def licence_name(self) -> str:
        return str(self.licence.get("name") or "unknown")

    @property
    def page(self) -> str:
        return str(self.source.get("download_page") or self.source.get("page") or "unknown")

    @property
    def known_size(self) -> int | None:
        sizes = [f.size_bytes for f in self.files]
        return None if not sizes or any(s is None for s in sizes) else int(sum(sizes))  # type: ignore[arg-type]


def _req(d: Mapping[str, Any], key: str, types, where: str, path: Path):
    if key not in d:
        raise file_error(ConfigError, path, f"{where}: missing field {key!r}")
    v = d[key]
    if not isinstance(v, types):
        raise file_error(ConfigError, path, f"{where}: field {key!r} has the wrong type ({type(v).__name__})")
    return v


def _parse_entry(d: Any, path: Path, index: int) -> RegistryEntry:
    where = f"models[{index}]"
    if not isinstance(d, dict):
        raise file_error(ConfigError, path, f"{where} is not an object")
    mid = _req(d, "id", str, where, path)
    where = f"model {mid!r}"
    if not mid or any(c in mid for c in "/\\:") or mid.startswith("."):
        raise file_error(ConfigError, path, f"{where}: id must be a plain folder name")
    role = _req(d, "role", str, where, path)
    if role not in ROLES:
        raise file_error(ConfigError, path, f"{where}: unknown role {role!r} (known: {', '.join(ROLES)})")
    arch = d.get("arch")
    if ROLE_ARCH[role] != arch:
        raise file_error(ConfigError, path, f"{where}: role {role!r} needs arch {ROLE_ARCH[role]!r}, got {arch!r}")
    config = d.get("config")
    if config is not None and not isinstance(config, dict):
        raise file_error(ConfigError, path, f"{where}: config must be an object or null")
    shipped = bool(d.get("shipped", False))
    if not shipped and not role == "boundary-set" and config is None:
        raise file_error(ConfigError, path, f"{where}: an installable model needs an architecture config")
    files = []
    for j, fd in enumerate(_req(d, "files", list, where, path)):
        fw = f"{where} files[{j}]"
        if not isinstance(fd, dict):
            raise file_error(ConfigError, path, f"{fw} is not an object")
        name = _req(fd, "name", str, fw, path)
        kind = _req(fd, "kind", str, fw, path)
        layout = _req(fd, "layout", str, fw, path)
        if kind not in FILE_KINDS:
            raise file_error(ConfigError, path, f"{fw}: unknown kind {kind!r}")
        if layout not in LAYOUTS:
            raise file_error(ConfigError, path, f"{fw}: unknown layout {layout!r}")
        sha = fd.get("sha256")
        if sha is not None and (not isinstance(sha, str) or len(sha) != 64
                                or any(c not in "0123456789abcdef" for c in sha)):
            raise file_error(ConfigError, path, f"{fw}: sha256 must be 64 lowercase hex digits or null")
        urls = fd.get("urls") or []
        if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
            raise file_error(ConfigError, path, f"{fw}: urls must be a list of strings")
        size = fd.get("size_bytes")
        if size is not None and (not isinstance(size, int) or size < 0):
            raise file_error(ConfigError, path, f"{fw}: size_bytes must be a non-negative integer or null")
        files.append(RegistryFile(name, kind, layout, tuple(urls), sha, size, bool(fd.get("optional", False))))
    if role != "boundary-set" and not shipped and sum(f.kind == "weights" for f in files) != 1:
        raise file_error(ConfigError, path, f"{where}: needs exactly one weights file")
    return RegistryEntry(
        id=mid, title=str(d.get("title") or mid), role=role, arch=arch, config=config, shipped=shipped,
        files=tuple(files), source=dict(d.get("source") or {}), licence=dict(d.get("licence") or {}),
        expected=d.get("expected"), notes=str(d.get("notes") or ""))


def load_registry(path: str | os.PathLike[str] | None = None) -> dict[str, RegistryEntry]:
    """Read and validate the registry (``checkpoints/registry.json`` by default), keyed by id."""
    p = Path(path) if path is not None else REGISTRY_PATH
    try:
        with open(p, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError as e:
        raise file_error(ConfigError, p, "model registry not found") from e
    except (OSError, ValueError) as e:
        raise file_error(ConfigError, p, f"unreadable model registry ({e})") from e
    if not isinstance(data, dict) or not isinstance(data.get("models"), list):
        raise file_error(ConfigError, p, "model registry must be an object with a 'models' list")
    if data.get("format") != 1:
        raise file_error(ConfigError, p, f"unsupported registry format {data.get('format')!r} (expected 1)")
    out: dict[str, RegistryEntry] = {}
    for i, d in enumerate(data["models"]):
        e = _parse_entry(d, p, i)
        if e.id in out:
            raise file_error(ConfigError, p, f"duplicate model id {e.id!r}")
        out[e.id] = e
    return out


def record_shipped_hashes(registry_path: str | os.PathLike[str] | None = None,
                          shipped_dir: str | os.PathLike[str] | None = None) -> list[str]:
    """Maintainers: write SHA-256 and size of every shipped file into the registry (after
    retraining the starter models). Returns the names whose record changed."""
    p = Path(registry_path) if registry_path is not None else REGISTRY_PATH
    root = Path(shipped_dir) if shipped_dir is not None else SHIPPED_CHECKPOINTS
    load_registry(p)  # validate first
    data = json.loads(p.read_text(encoding="utf-8"))
    changed = []
    for m in data["models"]:
        if not m.get("shipped"):
            continue
        for f in m["files"]:
            fp = root / f["name"]
            if not fp.is_file():
                raise file_error(CheckpointError, fp, "shipped file is missing")
            digest, size = sha256_file(fp), fp.stat().st_size
            if f.get("sha256") != digest or f.get("size_bytes") != size:
                f["sha256"], f["size_bytes"] = digest, size
                changed.append(f["name"])
    if changed:
        tmp = p.with_name(p.name + ".tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, p)
    return changed


# ============================================================================ status types


@dataclass(frozen=True)
class Progress:
    """Reported to a progress callback. ``total`` None = unknown size."""

    stage: str  # download | checksum | convert | done
    file: str
    done: int = 0
    total: int | None = None
    message: str = ""

    @property
    def fraction(self) -> float | None:
        if not self.total:
            return None
        return min(1.0, self.done / self.total)


ProgressFn = Callable[[Progress], None]
CancelFn = Callable[[], bool]


@dataclass(frozen=True)
class ModelStatus:
    """One row of ``models list``."""

    entry: RegistryEntry
    state: str  # installed | available | manual | shipped | missing
    path: Path | None
    size_bytes: int | None
    record: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    partial_bytes: int = 0

    @property
    def id(self) -> str:
        return self.entry.id


@dataclass(frozen=True)
class VerifyResult:
    id: str
    ok: bool
    problem: str = ""
    path: Path | None = None


def _now_utc() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def _folder_size(p: Path) -> int:
    if p.is_file():
        return p.stat().st_size
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())


def _host(url: str) -> str:
    return urllib.parse.urlsplit(url).netloc or url


def _disk_free(path: Path) -> int:
    return shutil.disk_usage(path).free


class _Retryable(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# ============================================================================ the store


class ModelStore:
    """Installed models in ``models_dir`` + the registry of known ones.

    ``timeout_s``: per network operation; ``retries``: extra attempts after a network failure
    (each resumes with an HTTP Range request when the server allows it); ``free_bytes``: how
    free space is measured (``shutil.disk_usage`` by default).
    """

    def __init__(
        self,
        models_dir: str | os.PathLike[str],
        *,
        registry: Mapping[str, RegistryEntry] | None = None,
        registry_path: str | os.PathLike[str] | None = None,
        shipped_dir: str | os.PathLike[str] | None = None,
        timeout_s: float = 30.0,
        retries: int = 3,
        retry_wait_s: float = 1.0,
        free_bytes: Callable[[Path], int] = _disk_free,
        space_margin_bytes: int = 16 << 20,
    ) -> None:
        self.models_dir = Path(models_dir).expanduser()
        self.registry: dict[str, RegistryEntry] = dict(registry) if registry is not None else load_registry(registry_path)
        self.shipped_dir = Path(shipped_dir) if shipped_dir is not None else SHIPPED_CHECKPOINTS
        self.timeout_s = float(timeout_s)
        self.retries = int(retries)
        self.retry_wait_s = float(retry_wait_s)
        self.free_bytes = free_bytes
        self.space_margin_bytes = int(space_margin_bytes)

    @classmethod
    def from_settings(cls, settings, **kwargs) -> "ModelStore":
        return cls(settings.models_dir, shipped_dir=settings.shipped_checkpoints, **kwargs)

    # ---------------------------------------------------------------- queries
    def entry(self, model_id: str) -> RegistryEntry:
        try:
            return self.registry[model_id]
        except KeyError:
            known = ", ".join(sorted(self.registry))
            raise ConfigError(f"unknown model id {model_id!r} (known: {known})") from None

    def folder(self, model_id: str) -> Path:
        return self.models_dir / model_id

    def partial_folder(self, model_id: str) -> Path:
        return self.models_dir / PARTIAL_DIR / model_id

    def record(self, model_id: str) -> dict[str, Any] | None:
        """The install record of an installed model (None when not installed)."""
        p = self.folder(model_id) / INSTALL_RECORD
        if not p.is_file():
            return None
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise file_error(CheckpointError, p, f"unreadable install record ({e})") from e
        if not isinstance(data, dict):
            raise file_error(CheckpointError, p, "install record is not a JSON object")
        return data

    def is_installed(self, model_id: str) -> bool:
        return (self.folder(model_id) / INSTALL_RECORD).is_file()

    def status(self, model_id: str) -> ModelStatus:
        e = self.entry(model_id)
        if e.shipped:
            paths = [self.shipped_dir / f.name for f in e.files]
            present = all(p.is_file() for p in paths)
            size = sum(p.stat().st_size for p in paths if p.is_file())
            return ModelStatus(e, "shipped" if present else "missing", self.shipped_dir, size if present else None)
        folder = self.folder(model_id)
        part = self.partial_folder(model_id)
        partial = _folder_size(part) if part.is_dir() else 0
        if self.is_installed(model_id):
            try:
                rec = self.record(model_id) or {}
            except CheckpointError:
                rec = {}
            return ModelStatus(e, "installed", folder, _folder_size(folder), rec, partial)
        return ModelStatus(e, "available" if e.downloadable else "manual", None, e.known_size, {}, partial)

    def list(self) -> list[ModelStatus]:
        return [self.status(mid) for mid in self.registry]

    # ---------------------------------------------------------------- install (download)
    def install(self, model_id: str, *, progress: ProgressFn | None = None, cancel: CancelFn | None = None,
                force: bool = False, urls: Mapping[str, str] | None = None) -> ModelStatus:
        """Download every file of ``model_id``, check, convert and move into place atomically.

        ``urls``: ``{file name: URL}`` to fetch from a mirror instead of the registry's URLs
        (``""`` as the name means the entry's only / weights file).
        """
        self.check_installable(model_id, force, urls)  # quick refusals before touching the disk
        self.models_dir.mkdir(parents=True, exist_ok=True)
        with self._locked(model_id):
            return self._install(model_id, progress=progress, cancel=cancel, force=force, urls=urls)

    def check_installable(self, model_id: str, force: bool = False,
                          urls: Mapping[str, str] | None = None) -> RegistryEntry:
        """The entry that :meth:`install` would fetch, or the ConfigError it would raise at once."""
        e = self.entry(model_id)
        if urls:
            e = self._with_urls(e, urls)
        if e.shipped:
            raise ConfigError(f"{model_id} ships with MaskStudio ({self.shipped_dir}); nothing to install")
        if self.is_installed(model_id) and not force:
            raise ConfigError(f"{model_id} is already installed in {self.folder(model_id)} "
                              f"(use `models verify {model_id}`, or remove it first)")
        missing = [f.name for f in e.files if not f.optional and not f.urls]
        if missing or not e.files:
            raise ConfigError(
                f"{model_id}: no direct download is published for {', '.join(missing) or 'its files'}; "
                f"download by hand from {e.page} and run `maskstudio models import {model_id} FILE`")
        return e

    def _install(self, model_id: str, *, progress, cancel, force, urls) -> ModelStatus:
        e = self.check_installable(model_id, force, urls)  # again, under the lock
        part_dir = self.partial_folder(model_id)
        part_dir.mkdir(parents=True, exist_ok=True)
        downloaded: dict[str, Path] = {}
        sources: dict[str, str] = {}
        for rf in e.files:
            if not rf.urls:
                continue
            dest = part_dir / (rf.name + ".part")
            final = part_dir / rf.name
            if final.is_file():  # completed by an earlier, interrupted install of this model
                url = "partial:" + rf.urls[0]
                if progress is not None:
                    size = final.stat().st_size
                    progress(Progress("download", rf.name, size, size, "already downloaded"))
            else:
                url = self._download_any(rf, dest, progress, cancel)
                os.replace(dest, final)
            downloaded[rf.name] = final
            sources[rf.name] = url
        try:
            status = self._install_from(e, downloaded, sources, progress=progress, cancel=cancel)
        except (DownloadCancelled, DiskSpaceError):
            raise
        except (CheckpointError, LatentFileError) as err:
            # the files are complete but wrong (or unreadable): never keep them for a "resume"
            shutil.rmtree(part_dir, ignore_errors=True)
            raise DownloadError(f"{model_id}: the downloaded file is not usable: {err}") from err
        shutil.rmtree(part_dir, ignore_errors=True)
        self._cleanup_partial_root()
        return status

    @staticmethod
    def _with_urls(e: RegistryEntry, urls: Mapping[str, str]) -> RegistryEntry:
        import dataclasses

        names = {f.name for f in e.files}
        mapped = {}
        for name, url in urls.items():
            if not name:
                weights = [f.name for f in e.files if f.kind in ("weights", "direction")]
                if len(e.files) != 1 and len(weights) != 1:
                    raise ConfigError(f"{e.id} has several files ({', '.join(sorted(names))}): "
                                      f"give the mirror URL as NAME=URL")
                name = e.files[0].name if len(e.files) == 1 else weights[0]
            if name not in names:
                raise ConfigError(f"{e.id} has no file {name!r} (files: {', '.join(sorted(names))})")
            if not urllib.parse.urlsplit(url).scheme in ("http", "https"):
                raise ConfigError(f"{url}: only http:// and https:// URLs can be downloaded")
            mapped[name] = url
        files = tuple(dataclasses.replace(f, urls=(mapped[f.name],)) if f.name in mapped else f for f in e.files)
        return dataclasses.replace(e, files=files)

    def _download_any(self, rf: RegistryFile, dest: Path, progress, cancel) -> str:
        errors = []
        for url in rf.urls:
            try:
                self.download(url, dest, file_label=rf.name, expected_size=rf.size_bytes,
                              progress=progress, cancel=cancel)
                return url
            except DownloadCancelled:
                raise
            except DiskSpaceError:
                raise
            except DownloadError as err:
                errors.append(str(err))
                if len(rf.urls) > 1:
                    dest.unlink(missing_ok=True)  # the next mirror starts from scratch
        raise DownloadError("; ".join(errors))

    def download(self, url: str, dest: str | os.PathLike[str], *, file_label: str | None = None,
                 expected_size: int | None = None, progress: ProgressFn | None = None,
                 cancel: CancelFn | None = None) -> int:
        """Fetch ``url`` into ``dest``, resuming an existing partial file with an HTTP Range request.

        Retries network failures ``self.retries`` times (timeouts, resets, a body cut short).
        Returns the final size. Raises :class:`DownloadError` (clear message naming the URL),
        :class:`DownloadCancelled` or :class:`DiskSpaceError`.
        """
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        label = file_label or dest.name
        attempt = 0
        while True:
            if cancel is not None and cancel():
                raise DownloadCancelled(f"{url}: cancelled (partial download kept for resume in {dest.parent})")
            try:
                return self._download_once(url, dest, label, expected_size, progress, cancel)
            except _Retryable as r:
                attempt += 1
                if attempt > self.retries:
                    raise DownloadError(f"{url}: {r.message} (gave up after {attempt} attempt(s))") from r
                wait = self.retry_wait_s * attempt
                if progress is not None:
                    progress(Progress("download", label, dest.stat().st_size if dest.exists() else 0,
                                      expected_size, f"{r.message}; retrying in {wait:.0f} s "
                                                     f"({attempt}/{self.retries})"))
                deadline = time.monotonic() + wait
                while time.monotonic() < deadline:
                    if cancel is not None and cancel():
                        raise DownloadCancelled(f"{url}: cancelled") from None
                    time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))

    def _download_once(self, url: str, dest: Path, label: str, expected_size: int | None,
                       progress: ProgressFn | None, cancel: CancelFn | None) -> int:
        have = dest.stat().st_size if dest.exists() else 0
        headers = {"User-Agent": "MaskStudio-model-manager/1", "Accept-Encoding": "identity"}
        if have:
            headers["Range"] = f"bytes={have}-"
        req = urllib.request.Request(url, headers=headers)
        try:
            resp = urllib.request.urlopen(req, timeout=self.timeout_s)
        except urllib.error.HTTPError as e:
            if e.code == 416 and have:
                _, total = _parse_content_range(e.headers.get("Content-Range") if e.headers else None)
                if total == have:  # finished earlier, interrupted before it was moved on
                    if progress is not None:
                        progress(Progress("download", label, have, have, "already complete"))
                    return have
                # our partial file is longer than the resource: start over
                dest.unlink(missing_ok=True)
                raise _Retryable("server refused the resume range; restarting the download") from e
            if e.code in (408, 429) or e.code >= 500:
                raise _Retryable(f"HTTP {e.code} {e.reason}") from e
            raise DownloadError(f"{url}: HTTP {e.code} {e.reason} (the file is not available there)") from e
        except urllib.error.URLError as e:
            reason = e.reason
            if isinstance(reason, (socket.timeout, TimeoutError)):
                raise _Retryable(f"no answer from {_host(url)} within {self.timeout_s:g} s") from e
            if isinstance(reason, socket.gaierror):
                raise _Retryable(f"cannot resolve {_host(url)} (no network?)") from e
            if isinstance(reason, ConnectionRefusedError):
                raise _Retryable(f"connection to {_host(url)} refused (no network, or server down)") from e
            raise _Retryable(f"cannot reach {_host(url)}: {reason} (no network?)") from e
        except (socket.timeout, TimeoutError) as e:
            raise _Retryable(f"no answer from {_host(url)} within {self.timeout_s:g} s") from e
        except (ConnectionError, http.client.HTTPException, OSError) as e:
            raise _Retryable(f"connection to {_host(url)} failed: {e}") from e
        with resp:
            status = getattr(resp, "status", 200)
            length = resp.headers.get("Content-Length")
            length_n = int(length) if length and length.isdigit() else None
            if have and status == 206:
                start, total = _parse_content_range(resp.headers.get("Content-Range"))
                if start != have:
                    dest.unlink(missing_ok=True)
                    raise _Retryable(f"server resumed at byte {start}, expected {have}; restarting")
                if total is None and length_n is not None:
                    total = have + length_n
                mode = "ab"
            else:
                have = 0  # no Range support (200): start again from the beginning
                total = length_n
                mode = "wb"
            if expected_size is not None and total is not None and total != expected_size:
                raise DownloadError(f"{url}: server reports {total} bytes, the registry expects "
                                    f"{expected_size} — not the file for {label}")
            total = total if total is not None else expected_size
            self._check_space(dest.parent, None if total is None else 2 * (total - have) + have, url)
            done = have
            if progress is not None:
                progress(Progress("download", label, done, total))
            try:
                with open(dest, mode) as out:
                    while True:
                        if cancel is not None and cancel():
                            raise DownloadCancelled(f"{url}: cancelled (partial download kept for resume)")
                        try:
                            chunk = resp.read(CHUNK_BYTES if total is None else min(CHUNK_BYTES, max(1, total - done)))
                        except http.client.IncompleteRead as e:
                            out.write(e.partial)
                            done += len(e.partial)
                            raise _Retryable(f"connection closed early: got {done} of {total} bytes "
                                             f"(truncated download)") from e
                        except (socket.timeout, TimeoutError) as e:
                            raise _Retryable(f"download stalled for {self.timeout_s:g} s at {done} bytes") from e
                        except (ConnectionError, OSError) as e:
                            raise _Retryable(f"connection lost at {done} bytes: {e}") from e
                        if not chunk:
                            break
                        out.write(chunk)
                        done += len(chunk)
                        if progress is not None:
                            progress(Progress("download", label, done, total))
                        if total is not None and done >= total:
                            break
            except OSError as e:
                if getattr(e, "errno", None) == 28:  # ENOSPC
                    raise DiskSpaceError(f"{dest.parent}: no space left on the device while writing "
                                         f"{label} ({format_bytes(done)} written)") from e
                raise
        if total is not None and done < total:
            raise _Retryable(f"connection closed early: got {done} of {total} bytes (truncated download)")
        if total is not None and done > total:
            dest.unlink(missing_ok=True)
            raise DownloadError(f"{url}: received {done} bytes, more than the announced {total}")
        if done == 0:
            raise DownloadError(f"{url}: the server sent an empty file")
        return done

    def _check_space(self, folder: Path, need: int | None, what: str) -> None:
        if need is None:
            return
        free = self.free_bytes(folder)
        if free < need + self.space_margin_bytes:
            raise DiskSpaceError(
                f"{folder}: not enough disk space for {what}: need {format_bytes(need + self.space_margin_bytes)} "
                f"(download + converted copy), {format_bytes(free)} free. Free some space or choose "
                f"another models folder (--models-dir / MASKSTUDIO_MODELS_DIR)")

    @contextlib.contextmanager
    def _locked(self, model_id: str):
        """Exclusive per-model lock (an OS file lock: released even when the process dies)."""
        work = self.models_dir / WORK_DIR
        work.mkdir(parents=True, exist_ok=True)
        f = open(work / f"{model_id}.lock", "a+b")
        try:
            try:
                if os.name == "nt":  # pragma: no cover - Windows
                    import msvcrt

                    msvcrt.locking(f.fileno(), msvcrt.LK_NBLCK, 1)
                else:
                    import fcntl

                    fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as err:
                raise ConfigError(f"{model_id}: another MaskStudio window or command is installing or "
                                  f"removing it right now (lock {work / (model_id + '.lock')})") from err
            yield
        finally:
            f.close()

    def _cleanup_partial_root(self) -> None:
        root = self.models_dir / PARTIAL_DIR
        try:
            root.rmdir()  # only when empty
        except OSError:
            pass

    # ---------------------------------------------------------------- import (local files)
    def import_files(self, model_id: str, paths: Sequence[str | os.PathLike[str]], *,
                     progress: ProgressFn | None = None, cancel: CancelFn | None = None,
                     force: bool = False) -> ModelStatus:
        """Install ``model_id`` from files the user downloaded by hand (validated, converted).

        ``paths``: the weights file (for DualStyleGAN styles also the exstyle ``.npy``); for a
        boundary set, direction files or a folder of them. The originals are not modified.
        """
        self.entry(model_id)
        self.models_dir.mkdir(parents=True, exist_ok=True)
        with self._locked(model_id):
            return self._import_files(model_id, paths, progress=progress, cancel=cancel, force=force)

    def _import_files(self, model_id: str, paths, *, progress, cancel, force) -> ModelStatus:
        e = self.entry(model_id)
        if e.shipped:
            raise ConfigError(f"{model_id} ships with MaskStudio; nothing to import")
        if self.is_installed(model_id) and not force:
            raise ConfigError(f"{model_id} is already installed in {self.folder(model_id)} (remove it first)")
        files = [Path(p).expanduser() for p in paths]
        if not files:
            raise ConfigError(f"{model_id}: give the file(s) to import")
        for p in files:
            if not p.exists():
                raise file_error(CheckpointError, p, "no such file")
        named: dict[str, Path] = {}
        if e.is_boundary_set:
            for p in files:
                if p.is_dir():
                    found = sorted(q for q in p.iterdir() if q.is_file() and q.suffix.lower() in DIRECTION_SUFFIXES)
                    if not found:
                        raise file_error(LatentFileError, p, "no .npy/.pt direction files in this folder")
                    for q in found:
                        named[q.name] = q
                else:
                    named[p.name] = p
        else:
            named = self._match_files(e, files)
        sources = {name: "import:" + os.fspath(p.resolve()) for name, p in named.items()}
        return self._install_from(e, named, sources, progress=progress, cancel=cancel)

    def _match_files(self, e: RegistryEntry, files: list[Path]) -> dict[str, Path]:
        """Map user files to the entry's registry file names (by name, else by order/kind)."""
        for p in files:
            if p.is_dir():
                raise file_error(CheckpointError, p, "is a folder; give the checkpoint file")
        out: dict[str, Path] = {}
        weights = next(f for f in e.files if f.kind == "weights")
        codes = [f for f in e.files if f.kind == "style_codes"]
        rest = list(files)
        for rf in e.files:
            for p in rest:
                if p.name == rf.name:
                    out[rf.name] = p
                    rest.remove(p)
                    break
        for p in list(rest):
            if p.suffix.lower() == ".npy" and codes and codes[0].name not in out:
                out[codes[0].name] = p
                rest.remove(p)
            elif weights.name not in out:
                out[weights.name] = p
                rest.remove(p)
        if rest:
            raise ConfigError(f"{e.id}: do not know what to do with {', '.join(map(str, rest))} "
                              f"(expected {', '.join(f.name for f in e.files)})")
        if weights.name not in out:
            raise ConfigError(f"{e.id}: the weights file ({weights.name}) is missing")
        return out

    # ---------------------------------------------------------------- conversion + atomic move
    def _install_from(self, e: RegistryEntry, files: Mapping[str, Path], sources: Mapping[str, str], *,
                      progress: ProgressFn | None, cancel: CancelFn | None) -> ModelStatus:
        self.models_dir.mkdir(parents=True, exist_ok=True)
        originals = []
        for name, p in files.items():
            if progress is not None:
                progress(Progress("checksum", name, 0, p.stat().st_size))
            digest = sha256_file(p, (lambda d, t, n=name: progress(Progress("checksum", n, d, t))) if progress else None)
            rf = next((f for f in e.files if f.name == name), None)
            if rf is not None and rf.sha256 is not None and digest != rf.sha256:
                raise file_error(CheckpointError, p, f"checksum mismatch: sha256 {digest[:12]}… differs from the "
                                                     f"published {rf.sha256[:12]}… for {e.id}/{name} "
                                                     f"(wrong or corrupted file)")
            originals.append({"name": name, "sha256": digest, "size_bytes": p.stat().st_size,
                              "source": sources.get(name, ""),
                              "checksum_verified": bool(rf is not None and rf.sha256 is not None)})
        total_in = sum(o["size_bytes"] for o in originals)
        self._check_space(self.models_dir, total_in, e.id)
        if cancel is not None and cancel():
            raise DownloadCancelled(f"{e.id}: cancelled")
        work = self.models_dir / WORK_DIR
        work.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{e.id}-", dir=work))
        os.chmod(staging, 0o755)  # mkdtemp makes it private; the final <id>/ is an ordinary folder
        try:
            if progress is not None:
                progress(Progress("convert", e.id, 0, None, "checking keys and shapes"))
            if e.is_boundary_set:
                written = self._convert_boundaries(e, files, staging)
            else:
                written = self._convert_model(e, files, staging)
            if cancel is not None and cancel():
                raise DownloadCancelled(f"{e.id}: cancelled")
            record = {
                "id": e.id, "role": e.role, "arch": e.arch, "title": e.title,
                "installed_at": _now_utc(), "licence": e.licence_name,
                "source": "download" if any(not s.startswith("import:") for s in sources.values()) else "import",
                "original_files": originals,
                "files": {name: sha256_file(staging / name) for name in written},
            }
            with open(staging / INSTALL_RECORD, "w", encoding="utf-8") as f:
                json.dump(record, f, indent=2)
                f.write("\n")
            self._move_into_place(staging, self.folder(e.id))
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        if progress is not None:
            progress(Progress("done", e.id, 1, 1, "installed"))
        return self.status(e.id)

    def _move_into_place(self, staging: Path, final: Path) -> None:
        trash = None
        if final.exists():
            trash = self.models_dir / WORK_DIR / f"{TRASH_PREFIX}{final.name}-{os.getpid()}-{time.monotonic_ns()}"
            os.replace(final, trash)
        try:
            os.replace(staging, final)
        except OSError:
            if trash is not None:
                os.replace(trash, final)
            raise
        if trash is not None:
            shutil.rmtree(trash, ignore_errors=True)

    def _convert_boundaries(self, e: RegistryEntry, files: Mapping[str, Path], staging: Path) -> list[str]:
        from maskstudio.models.latent_ops import load_direction

        dim = int((e.config or {}).get("dim", 512))
        written = []
        for name, p in files.items():
            if Path(name).suffix.lower() not in DIRECTION_SUFFIXES:
                raise file_error(LatentFileError, p, f"not a direction file (expected {', '.join(DIRECTION_SUFFIXES)})")
            load_direction(p, dim=dim)  # shape / dtype / finiteness; .pt through weights_only
            shutil.copyfile(p, staging / name)
            written.append(name)
        return written

    def _convert_model(self, e: RegistryEntry, files: Mapping[str, Path], staging: Path) -> list[str]:
        import torch

        from maskstudio.models import checkpoints, registry

        weights_rf = next(f for f in e.files if f.kind == "weights")
        wpath = files[weights_rf.name]
        assert e.arch is not None
        config = dict(e.config or {})
        extras: dict[str, torch.Tensor] = {}
        meta: dict[str, Any] = {"title": e.title, "registry_id": e.id, "role": e.role,
                                "licence": e.licence_name, "source_page": e.page}
        if wpath.suffix == ".safetensors":
            loaded = checkpoints.load_checkpoint(wpath)
            if loaded.arch != e.arch:
                raise file_error(CheckpointError, wpath, f"is a {loaded.arch} checkpoint, {e.id} needs {e.arch}")
            sd = loaded.module.state_dict()
            config = dict(loaded.config)
            extras.update({k: v for k, v in loaded.extras.items() if isinstance(v, torch.Tensor)})
            layout = "maskstudio_safetensors"
        else:
            sd = checkpoints.load_official(wpath)
            layout = sd.layout
            opts = sd.extras.get("opts")
            if isinstance(opts, Mapping) and "start_from_latent_avg" in opts and e.arch == "psp_encoder":
                config["start_from_latent_avg"] = bool(opts["start_from_latent_avg"])
            for k, v in sd.extras.items():
                if isinstance(v, torch.Tensor) and v.is_floating_point():
                    extras[k] = v.detach().to(torch.float32)
            if isinstance(opts, Mapping):
                meta["opts"] = {str(k): v for k, v in opts.items() if isinstance(v, (str, int, float, bool, type(None)))}
        try:
            cfg = registry.make_config(e.arch, config)
            with torch.device("meta"):
                module = registry.build(e.arch, cfg)
        except ConfigError as err:
            raise file_error(CheckpointError, wpath, f"cannot build {e.arch} for {e.id}: {err}") from err
        try:
            checkpoints.check_state_dict(module, sd, wpath)
        except CheckpointError as err:
            hint = ""
            try:
                other, _ = checkpoints.detect_arch(sd, wpath)
                if other != e.arch:
                    alts = [x.id for x in self.registry.values() if x.arch == other and not x.shipped]
                    hint = (f" — this looks like a {other} checkpoint, not {e.arch}"
                            + (f" (did you mean {' / '.join(alts[:3])}?)" if alts else ""))
            except CheckpointError:
                pass
            raise file_error(CheckpointError, wpath,
                             f"wrong file for {e.id}: {str(err).split(': ', 1)[-1]}{hint}") from err
        module.load_state_dict({k: v for k, v in sd.items()}, strict=True, assign=True)
        for rf in e.files:
            if rf.kind == "style_codes" and rf.name in files:
                codes = checkpoints.load_exstyle_codes(files[rf.name])
                names = sorted(codes)
                n_lat = getattr(module, "n_latent", None)
                for n in names:
                    if n_lat is not None and codes[n].shape[1] != int(n_lat):
                        raise file_error(CheckpointError, files[rf.name],
                                         f"style code {n!r} has {codes[n].shape[1]} rows, the generator "
                                         f"of {e.id} needs {int(n_lat)} (codes from another model?)")
                for n in names:  # one extra per style image: "exstyle_code.<name>" [1, n_latent, 512]
                    extras[f"exstyle_code.{n}"] = codes[n].to(torch.float32).contiguous()
                meta["exstyle_names"] = names
                meta["exstyle_file"] = rf.name
        meta["source_layout"] = layout
        checkpoints.save_checkpoint(staging / e.id, module, e.arch, cfg, extra_tensors=extras, meta=meta)
        return [f"{e.id}.safetensors", f"{e.id}.json"]

    # ---------------------------------------------------------------- verify / remove
    def verify(self, model_id: str | None = None, *, progress: ProgressFn | None = None,
               deep: bool = True) -> list[VerifyResult]:
        """Check installed (and shipped) models. ``model_id`` None: every installed/shipped one.

        Installed: the install record, every recorded file's SHA-256, and (``deep``) a full load
        through :func:`maskstudio.models.checkpoints.load_checkpoint` (keys and shapes).
        Shipped: files present and, when the registry knows it, their SHA-256.
        """
        if model_id is not None:
            ids = [self.entry(model_id).id]
        else:
            ids = [mid for mid, e in self.registry.items() if e.shipped or self.is_installed(mid)]
        return [self._verify_one(mid, progress, deep) for mid in ids]

    def _verify_one(self, mid: str, progress: ProgressFn | None, deep: bool) -> VerifyResult:
        e = self.entry(mid)
        try:
            if e.shipped:
                for rf in e.files:
                    p = self.shipped_dir / rf.name
                    if not p.is_file():
                        raise file_error(CheckpointError, p, "shipped file is missing")
                    if rf.sha256 is not None and sha256_file(p) != rf.sha256:
                        raise file_error(CheckpointError, p, "sha256 differs from checkpoints/registry.json "
                                                             "(modified or corrupted)")
                if deep and not e.is_boundary_set:
                    from maskstudio.models import checkpoints

                    w = next(f for f in e.files if f.kind == "weights")
                    loaded = checkpoints.load_checkpoint(self.shipped_dir / w.name)
                    if loaded.arch != e.arch:
                        raise file_error(CheckpointError, self.shipped_dir / w.name,
                                         f"is {loaded.arch}, registry says {e.arch}")
                return VerifyResult(mid, True, "", self.shipped_dir)
            folder = self.folder(mid)
            rec = self.record(mid)
            if rec is None:
                raise file_error(CheckpointError, folder, "not installed")
            recorded = rec.get("files")
            if not isinstance(recorded, dict) or not recorded:
                raise file_error(CheckpointError, folder / INSTALL_RECORD, "install record lists no files")
            for name, digest in recorded.items():
                p = folder / name
                if not p.is_file():
                    raise file_error(CheckpointError, p, "file is missing (reinstall)")
                if progress is not None:
                    progress(Progress("checksum", name, 0, p.stat().st_size))
                if sha256_file(p) != digest:
                    raise file_error(CheckpointError, p, "sha256 differs from the install record "
                                                         "(modified or corrupted; reinstall)")
            if deep:
                if e.is_boundary_set:
                    from maskstudio.models.latent_ops import load_direction

                    for name in recorded:
                        load_direction(folder / name, dim=int((e.config or {}).get("dim", 512)))
                else:
                    from maskstudio.models import checkpoints

                    loaded = checkpoints.load_checkpoint(folder / f"{mid}.safetensors")
                    if loaded.arch != e.arch:
                        raise file_error(CheckpointError, folder / f"{mid}.json",
                                         f"is {loaded.arch}, registry says {e.arch}")
            return VerifyResult(mid, True, "", folder)
        except MaskStudioError as err:
            return VerifyResult(mid, False, str(err), self.folder(mid) if not e.shipped else self.shipped_dir)

    def remove(self, model_id: str) -> Path:
        """Delete an installed model (and any partial download of it). Returns the removed folder."""
        e = self.entry(model_id)
        if e.shipped:
            raise ConfigError(f"{model_id} ships with MaskStudio and cannot be removed")
        folder = self.folder(model_id)
        part = self.partial_folder(model_id)
        if not folder.exists() and not part.exists():
            raise ConfigError(f"{model_id} is not installed (nothing in {folder})")
        with self._locked(model_id):
            self._remove(model_id, folder, part)
        return folder

    def _remove(self, model_id: str, folder: Path, part: Path) -> None:
        if folder.exists():
            (self.models_dir / WORK_DIR).mkdir(parents=True, exist_ok=True)
            trash = self.models_dir / WORK_DIR / f"{TRASH_PREFIX}{model_id}-{os.getpid()}-{time.monotonic_ns()}"
            os.replace(folder, trash)  # atomic: the engine never sees a half-deleted model
            shutil.rmtree(trash, ignore_errors=True)
        shutil.rmtree(part, ignore_errors=True)
        self._cleanup_partial_root()

    def clean_leftovers(self) -> list[Path]:
        """Remove staging/trash folders left by a crash (never partial downloads)."""
        out = []
        work = self.models_dir / WORK_DIR
        if work.is_dir():
            for p in work.iterdir():
                if p.is_dir() and (p.name.startswith(STAGING_PREFIX) or p.name.startswith(TRASH_PREFIX)):
                    shutil.rmtree(p, ignore_errors=True)
                    out.append(p)
        return out


def _parse_content_range(value: str | None) -> tuple[int | None, int | None]:
    """``bytes 100-199/1000`` -> (100, 1000); ``bytes 100-199/*`` -> (100, None);
    ``bytes */1000`` (a 416 answer) -> (None, 1000)."""
    if not value:
        return None, None
    unit, _, rest = value.strip().partition(" ")
    span, _, total = rest.partition("/")
    first = span.split("-", 1)[0].strip()
    start = int(first) if first.isdigit() else None
    return start, (int(total) if total.strip().isdigit() else None)
