"""Model store: the per-user folder of installed models (install, import, verify, remove).

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

The parts: :mod:`maskstudio.io.registry` (what models exist), :mod:`maskstudio.io.download`
(fetching files), :mod:`maskstudio.io.convert` (official files -> our checkpoints); this module
is the on-disk store that ties them together.
"""
from __future__ import annotations

import builtins
import contextlib
import datetime as _dt
import functools
import json
import os
import shutil
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from maskstudio.errors import (
    CheckpointError,
    ConfigError,
    DiskSpaceError,
    DownloadCancelled,
    DownloadError,
    LatentFileError,
    MaskStudioError,
    file_error,
)
from maskstudio.files import check_regular_file, sha256_file
from maskstudio.io.convert import convert_boundaries, convert_model
from maskstudio.io.download import (
    MAX_DOWNLOAD_BYTES,
    STALL_MIN_BYTES,
    STALL_S,
    CancelFn,
    Downloader,
    Progress,
    ProgressFn,
    _disk_free,
)
from maskstudio.io.registry import RegistryEntry, RegistryFile, load_registry
from maskstudio.roles import DIRECTION_SUFFIXES
from maskstudio.settings import SHIPPED_CHECKPOINTS

__all__ = ["INSTALL_RECORD", "ModelStatus", "VerifyResult", "ModelStore"]

INSTALL_RECORD = "install.json"
PARTIAL_DIR = ".partial"
WORK_DIR = ".work"          # staging / trash folders and lock files (depth 2: the engine never scans them)
STAGING_PREFIX = "staging-"
TRASH_PREFIX = "trash-"


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


def _checksum_progress(progress: ProgressFn, name: str, done: int, total: int) -> None:
    progress(Progress("checksum", name, done, total))


def _folder_size(p: Path) -> int:
    if p.is_file():
        return p.stat().st_size
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())


class ModelStore:
    """Installed models in ``models_dir`` + the registry of known ones.

    ``timeout_s``: per network operation; ``retries``: extra attempts after a network failure
    (each resumes with an HTTP Range request when the server allows it); ``free_bytes``: how
    free space is measured (``shutil.disk_usage`` by default); ``stall_s``, ``stall_min_bytes``,
    ``max_unknown_bytes``: see :class:`maskstudio.io.download.Downloader`.
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
        stall_s: float = STALL_S,
        stall_min_bytes: int = STALL_MIN_BYTES,
        max_unknown_bytes: int = MAX_DOWNLOAD_BYTES,
    ) -> None:
        self.models_dir = Path(models_dir).expanduser()
        self.registry: dict[str, RegistryEntry] = dict(registry) if registry is not None else load_registry(registry_path)
        self.shipped_dir = Path(shipped_dir) if shipped_dir is not None else SHIPPED_CHECKPOINTS
        self.downloader = Downloader(timeout_s=timeout_s, retries=retries, retry_wait_s=retry_wait_s,
                                     free_bytes=free_bytes, space_margin_bytes=space_margin_bytes,
                                     stall_s=stall_s, stall_min_bytes=stall_min_bytes,
                                     max_unknown_bytes=max_unknown_bytes)

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
            if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
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
        """Fetch ``url`` into ``dest`` (see :meth:`maskstudio.io.download.Downloader.download`)."""
        return self.downloader.download(url, dest, file_label=file_label, expected_size=expected_size,
                                        progress=progress, cancel=cancel)

    def _check_space(self, folder: Path, need: int | None, what: str) -> None:
        self.downloader.check_space(folder, need, what)

    @contextlib.contextmanager
    def _locked(self, model_id: str):
        """Exclusive per-model lock (an OS file lock: released even when the process dies)."""
        work = self.models_dir / WORK_DIR
        work.mkdir(parents=True, exist_ok=True)
        f = open(work / f"{model_id}.lock", "a+b")
        try:
            try:
                if sys.platform == "win32":  # pragma: no cover - Windows
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
            if not p.is_dir():  # FIFOs / devices would hang the checksum: refused up front
                check_regular_file(p, "checkpoint", CheckpointError)
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

    def _match_files(self, e: RegistryEntry, files: builtins.list[Path]) -> dict[str, Path]:
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
        originals: builtins.list[dict[str, Any]] = []
        for name, p in files.items():
            if progress is not None:
                progress(Progress("checksum", name, 0, p.stat().st_size))
            digest = sha256_file(p, functools.partial(_checksum_progress, progress, name) if progress else None)
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
                written = convert_boundaries(e, files, staging)
            else:
                written = convert_model(e, files, staging, self.registry)
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

    # ---------------------------------------------------------------- verify / remove
    def verify(self, model_id: str | None = None, *, progress: ProgressFn | None = None,
               deep: bool = True) -> builtins.list[VerifyResult]:
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

    def clean_leftovers(self) -> builtins.list[Path]:
        """Remove staging/trash folders left by a crash (never partial downloads)."""
        out = []
        work = self.models_dir / WORK_DIR
        if work.is_dir():
            for p in work.iterdir():
                if p.is_dir() and (p.name.startswith(STAGING_PREFIX) or p.name.startswith(TRASH_PREFIX)):
                    shutil.rmtree(p, ignore_errors=True)
                    out.append(p)
        return out
