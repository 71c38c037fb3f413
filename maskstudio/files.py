"""Small file helpers shared by every layer: SHA-256 of a file and atomic writes.

Imports only :mod:`maskstudio.errors` (no numpy, no torch), so models, io, engine and cli use
the same code.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Callable

from maskstudio.errors import MaskFileError, MaskStudioError, file_error

__all__ = ["CHUNK_BYTES", "sha256_file", "atomic_write"]

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
