"""Small file helpers shared by every layer: SHA-256, atomic writes, and the first checks on
any file a user hands in (a regular file, not an HTML page, an intact zip, a ``.npy`` whose
header tells the truth).

Imports only :mod:`maskstudio.errors` (numpy lazily, never torch), so models, io, engine and cli
use the same code.
"""
from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path
from typing import IO, Callable

from maskstudio.errors import MaskFileError, MaskStudioError, file_error

__all__ = ["CHUNK_BYTES", "atomic_write", "check_regular_file", "looks_like_html", "read_npy", "refuse_html",
           "sha256_file", "verify_zip"]

#: Read / hash chunk size.
CHUNK_BYTES = 1 << 20


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


def atomic_write(path: str | os.PathLike[str], data: bytes, *, parents: bool = False,
                 error: type[MaskStudioError] = MaskFileError) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder + ``os.replace``.

    ``parents``: create missing parent folders (else a missing folder is an error). Problems
    raise ``error("{path}: {problem}")``; the temporary file never stays behind.
    """
    p = Path(path)
    if p.is_dir():
        raise file_error(error, path, "is a directory; give a file name to write")
    parent = p.parent
    if parents:
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise file_error(error, path, f"cannot create folder {os.fspath(parent)} ({e.strerror or e})") from e
    elif not parent.is_dir():
        raise file_error(error, path, f"folder {os.fspath(parent)} does not exist")
    tmp = parent / f".{p.name}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, p)
    except OSError as e:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise file_error(error, path, f"cannot write ({e.strerror or e})") from e
    return p


def check_regular_file(path: str | os.PathLike[str], what: str = "file",
                       error: type[MaskStudioError] = MaskFileError) -> Path:
    """``path`` as a :class:`Path` if it is a non-empty regular file, else ``error`` naming it.

    Folders, FIFOs, devices (``/dev/zero``) and sockets are refused *before* anything opens
    them: opening a FIFO blocks, and a device never ends."""
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise file_error(error, path, "no such file") from None
    except OSError as e:
        raise file_error(error, path, f"cannot read ({e.strerror or e})") from e
    article = "an " if what[:1] in "aeiou" else "a "
    if stat.S_ISDIR(st.st_mode):
        raise file_error(error, path, f"is a directory, not {article}{what}")
    if not stat.S_ISREG(st.st_mode):
        raise file_error(error, path, f"is not a regular file (a pipe, socket or device), not {article}{what}")
    if st.st_size == 0:
        raise file_error(error, path, "empty file (0 bytes)")
    return p


def read_file_bytes(path: str | os.PathLike[str], what: str = "file",
                    error: type[MaskStudioError] = MaskFileError) -> bytes:
    """The whole file (checked by :func:`check_regular_file` first); ``error`` naming it if it
    cannot be read. Used where the original bytes are kept, e.g. a photo a project stores."""
    p = check_regular_file(path, what, error)
    try:
        return p.read_bytes()
    except OSError as e:
        raise file_error(error, path, f"cannot read ({e.strerror or e})") from e


_HTML_MARKERS = (b"<!doctype html", b"<html", b"<head", b"<body", b"<!--", b"<?xml", b"<title", b"<meta",
                 b"<script")


def looks_like_html(head: bytes) -> bool:
    """True when the first bytes of a file are an HTML / XML page (a download or error page
    saved instead of the file that was asked for)."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return text.startswith(_HTML_MARKERS)


def refuse_html(path: str | os.PathLike[str], what: str, error: type[MaskStudioError]) -> None:
    """Raise ``error`` ("this is an HTML page, not a <what>") when ``path`` starts like HTML."""
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError as e:
        raise file_error(error, path, f"cannot read ({e.strerror or e})") from e
    if looks_like_html(head):
        raise file_error(error, path, f"this is an HTML page, not {what} (a web page or an error page was "
                                      f"saved instead of the file; download the file itself)")


def verify_zip(path: str | os.PathLike[str], error: type[MaskStudioError], *,
               max_members: int = 100_000) -> None:
    """Read every member of a zip archive once, so that a damaged member (bad CRC-32, broken
    deflate stream, encrypted entry, unknown compression) is refused before the file is used.
    Memory stays at one chunk."""
    import zipfile
    import zlib

    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            if len(infos) > max_members:
                raise file_error(error, path, f"zip archive with {len(infos)} members (more than {max_members})")
            for info in infos:
                if info.flag_bits & 0x1:
                    raise file_error(error, path, f"zip member {info.filename!r} is encrypted")
                if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                    raise file_error(error, path, f"zip member {info.filename!r} uses an unsupported "
                                                  f"compression method ({info.compress_type})")
                with zf.open(info) as fh:
                    while fh.read(CHUNK_BYTES):
                        pass
    except MaskStudioError:
        raise
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, NotImplementedError) as e:
        raise file_error(error, path, f"damaged zip archive ({e})") from e


def read_npy(source: str | os.PathLike[str] | bytes, *, name: str | None = None,
             error: type[MaskStudioError] = MaskFileError, max_bytes: int | None = None):
    """A ``.npy`` array (file or bytes) read without pickles, its header checked first: the
    shape the header claims must fit in the data actually there (and in ``max_bytes``), so a
    header claiming 10^12 values is refused instead of allocated."""
    import io
    import math

    import numpy as np

    label = name or (os.fspath(source) if not isinstance(source, (bytes, bytearray)) else "<npy>")
    f: IO[bytes]
    if isinstance(source, (bytes, bytearray)):
        f = io.BytesIO(source)
        total = len(source)
    else:
        p = check_regular_file(source, "numpy array file", error)
        f = open(p, "rb")
        total = p.stat().st_size
    try:
        try:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f, max_header_size=10_000)
            elif version in ((2, 0), (3, 0)):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f, max_header_size=10_000)
            else:
                raise ValueError(f"unsupported .npy version {version}")
        except (ValueError, EOFError, OSError, SyntaxError, TypeError) as e:
            raise file_error(error, label, f"cannot read .npy file (not a valid .npy header: {e})") from e
        if dtype.hasobject:
            raise file_error(error, label, "refused: the array holds pickled Python objects, not numbers")
        count = math.prod(int(s) for s in shape)
        need = count * dtype.itemsize
        have = total - f.tell()
        if need > have:
            raise file_error(error, label, f"header claims shape {tuple(shape)} ({need} bytes) but the file "
                                           f"holds {max(have, 0)} bytes of data (truncated or forged)")
        if max_bytes is not None and need > max_bytes:
            raise file_error(error, label, f"array of shape {tuple(shape)} is too large ({need} bytes; at most "
                                           f"{max_bytes})")
        data = f.read(need)
        arr = np.frombuffer(data, dtype=dtype, count=count)
        return arr.reshape(shape, order="F" if fortran else "C").copy()
    finally:
        f.close()
