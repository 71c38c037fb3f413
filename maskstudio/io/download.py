"""Model downloads over HTTP(S): resume with Range requests, retries, progress, cancel. Qt-free.

:class:`Downloader` fetches one URL into one file. A partial file is resumed with an HTTP
``Range`` request when the server allows it (a ``200`` answer starts again); network failures
(timeouts, resets, a body cut short, HTTP 408/429/5xx) are retried ``retries`` times, waiting
``retry_wait_s`` x attempt between tries. ``progress`` receives :class:`Progress` events,
``cancel`` is polled between chunks (return True to stop: :class:`DownloadCancelled`, the
partial file is kept for a later resume). Problems raise :class:`DownloadError` naming the URL,
or :class:`DiskSpaceError` when the folder cannot hold the file.
"""
from __future__ import annotations

import http.client
import os
import shutil
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from maskstudio.errors import DiskSpaceError, DownloadCancelled, DownloadError
from maskstudio.files import CHUNK_BYTES

__all__ = ["Progress", "ProgressFn", "CancelFn", "Downloader", "format_bytes"]


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


def format_bytes(n: int | None) -> str:
    if n is None:
        return "?"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"  # pragma: no cover


def _host(url: str) -> str:
    return urllib.parse.urlsplit(url).netloc or url


def _disk_free(path: Path) -> int:
    return shutil.disk_usage(path).free


class _Retryable(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Downloader:
    """Fetches URLs into files. ``timeout_s``: per network operation; ``retries``: extra attempts
    after a network failure; ``free_bytes``: how free space is measured (``shutil.disk_usage`` by
    default); ``space_margin_bytes``: kept free beyond what a download needs."""

    def __init__(self, *, timeout_s: float = 30.0, retries: int = 3, retry_wait_s: float = 1.0,
                 free_bytes: Callable[[Path], int] = _disk_free, space_margin_bytes: int = 16 << 20) -> None:
        self.timeout_s = float(timeout_s)
        self.retries = int(retries)
        self.retry_wait_s = float(retry_wait_s)
        self.free_bytes = free_bytes
        self.space_margin_bytes = int(space_margin_bytes)

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
            self.check_space(dest.parent, None if total is None else 2 * (total - have) + have, url)
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

    def check_space(self, folder: Path, need: int | None, what: str) -> None:
        """DiskSpaceError unless ``folder`` has ``need`` bytes (+ the margin) free."""
        if need is None:
            return
        free = self.free_bytes(folder)
        if free < need + self.space_margin_bytes:
            raise DiskSpaceError(
                f"{folder}: not enough disk space for {what}: need {format_bytes(need + self.space_margin_bytes)} "
                f"(download + converted copy), {format_bytes(free)} free. Free some space or choose "
                f"another models folder (--models-dir / MASKSTUDIO_MODELS_DIR)")


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
