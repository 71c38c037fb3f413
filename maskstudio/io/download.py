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

import collections
import http.client
import logging
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

_log = logging.getLogger(__name__)


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


#: Only these URL schemes are fetched, also as redirect targets.
ALLOWED_SCHEMES = ("http", "https")
#: A download that delivers fewer than STALL_MIN_BYTES in STALL_S seconds has stalled: it is
#: retried (resuming), then reported.
STALL_S = 30.0
STALL_MIN_BYTES = 16 << 10
#: Largest download when neither the registry nor the server says how big the file is (4 GiB:
#: the largest official checkpoint is well under 1 GB).
MAX_DOWNLOAD_BYTES = 4 << 30
#: How often a waiting download looks at ``cancel`` (cancel is honoured within about this long).
POLL_S = 0.1


def _check_scheme(url: str, what: str) -> None:
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise DownloadError(f"{what}: only http:// and https:// URLs can be downloaded "
                            f"(got {scheme or 'no'} scheme{' in ' + url if url != what else ''})")


class _SafeRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects only to http(s) URLs (never ftp://, file://, data:...)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        try:
            _check_scheme(newurl, req.full_url)
        except DownloadError as e:
            raise urllib.error.URLError(e) from None
        return super().redirect_request(req, fp, code, msg, headers, newurl)

    def http_error_302(self, req, fp, code, msg, headers):
        location = headers.get("location") or headers.get("uri")
        if location:
            self.redirect_request(req, fp, code, msg, headers, urllib.parse.urljoin(req.full_url, location))
        return super().http_error_302(req, fp, code, msg, headers)

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302


def _opener() -> urllib.request.OpenerDirector:
    """An opener with HTTP(S) handlers only (proxies from the environment still apply)."""
    op = urllib.request.OpenerDirector()
    for h in (urllib.request.ProxyHandler(), urllib.request.UnknownHandler(), urllib.request.HTTPHandler(),
              urllib.request.HTTPSHandler(), urllib.request.HTTPDefaultErrorHandler(), _SafeRedirects(),
              urllib.request.HTTPErrorProcessor()):
        op.add_handler(h)
    return op


class _Fetch:
    """One HTTP request read by a background thread, so the caller can poll ``cancel`` and
    watch for stalls while a slow server keeps the socket busy. :meth:`close` unblocks and
    ends the thread (the socket is shut down)."""

    def __init__(self, req: urllib.request.Request, timeout_s: float) -> None:
        import queue
        import threading

        self._q: queue.Queue = queue.Queue(maxsize=8)
        self._stop = threading.Event()
        self._resp = None
        self._timeout_s = timeout_s
        self._thread = threading.Thread(target=self._run, args=(req,), daemon=True, name="maskstudio-download")
        self._thread.start()

    def _put(self, item) -> bool:
        import queue

        while not self._stop.is_set():
            try:
                self._q.put(item, timeout=POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, req) -> None:
        try:
            resp = _opener().open(req, timeout=self._timeout_s)
        except BaseException as e:  # noqa: BLE001 - handed to the caller's thread
            self._put(("error", e))
            return
        self._resp = resp
        if not self._put(("response", resp)):
            return
        read = getattr(resp, "read1", None) or resp.read
        try:
            while not self._stop.is_set():
                chunk = read(CHUNK_BYTES)
                if not self._put(("data", chunk)) or not chunk:
                    return
        except BaseException as e:  # noqa: BLE001
            self._put(("error", e))

    def _get(self):
        import queue

        try:
            kind, value = self._q.get(timeout=POLL_S)
        except queue.Empty:
            return None
        if kind == "error":
            raise value
        return value

    def response(self, cancel: CancelFn | None, url: str):
        deadline = time.monotonic() + self._timeout_s + 5.0
        while True:
            item = self._get()
            if item is not None:
                return item
            if cancel is not None and cancel():
                raise DownloadCancelled(f"{url}: cancelled (partial download kept for resume)")
            if time.monotonic() > deadline:
                raise TimeoutError(f"no answer within {self._timeout_s:g} s")

    def next_chunk(self) -> bytes | None:
        """The next bytes (``b""`` at the end), or None when nothing came within :data:`POLL_S`."""
        return self._get()

    def close(self) -> None:
        self._stop.set()
        resp = self._resp
        if resp is not None:
            sock = getattr(getattr(getattr(resp, "fp", None), "raw", None), "_sock", None)
            try:
                if sock is not None:
                    sock.shutdown(socket.SHUT_RDWR)  # wakes the reader blocked in recv()
            except OSError:
                pass
            try:
                resp.close()
            except Exception as e:  # noqa: BLE001 - closing a broken connection
                _log.debug("closing the connection failed: %s", e)
        self._thread.join(timeout=0.2)  # a thread still connecting ends at its own timeout (daemon)


def _refuse_html_download(dest: Path, url: str) -> None:
    from maskstudio.files import looks_like_html

    with open(dest, "rb") as f:
        head = f.read(512)
    if looks_like_html(head):
        dest.unlink(missing_ok=True)
        raise DownloadError(f"{url}: the server sent an HTML page, not the file (a login, download or error "
                            f"page; download it by hand and use `maskstudio models import`)")


class Downloader:
    """Fetches URLs into files. ``timeout_s``: per network operation; ``retries``: extra attempts
    after a network failure; ``free_bytes``: how free space is measured (``shutil.disk_usage`` by
    default); ``space_margin_bytes``: kept free beyond what a download needs; ``stall_s`` /
    ``stall_min_bytes``: fewer bytes than that in that many seconds is a stall (retried, then
    an error); ``max_unknown_bytes``: the cap when the size is known neither from the registry
    nor from the server. Only http(s) URLs are fetched, redirects included."""

    def __init__(self, *, timeout_s: float = 30.0, retries: int = 3, retry_wait_s: float = 1.0,
                 free_bytes: Callable[[Path], int] = _disk_free, space_margin_bytes: int = 16 << 20,
                 stall_s: float = STALL_S, stall_min_bytes: int = STALL_MIN_BYTES,
                 max_unknown_bytes: int = MAX_DOWNLOAD_BYTES) -> None:
        self.timeout_s = float(timeout_s)
        self.retries = int(retries)
        self.retry_wait_s = float(retry_wait_s)
        self.free_bytes = free_bytes
        self.space_margin_bytes = int(space_margin_bytes)
        self.stall_s = float(stall_s)
        self.stall_min_bytes = int(stall_min_bytes)
        self.max_unknown_bytes = int(max_unknown_bytes)

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
        _check_scheme(url, url)
        have = dest.stat().st_size if dest.exists() else 0
        headers = {"User-Agent": "MaskStudio-model-manager/1", "Accept-Encoding": "identity"}
        if have:
            headers["Range"] = f"bytes={have}-"
        req = urllib.request.Request(url, headers=headers)
        fetch = _Fetch(req, self.timeout_s)
        try:
            return self._receive(fetch, url, dest, have, label, expected_size, progress, cancel)
        finally:
            fetch.close()

    def _receive(self, fetch: "_Fetch", url: str, dest: Path, have: int, label: str,
                 expected_size: int | None, progress: ProgressFn | None, cancel: CancelFn | None) -> int:
        try:
            resp = fetch.response(cancel, url)
        except DownloadCancelled:
            raise
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
            if isinstance(reason, DownloadError):
                raise reason from e
            if isinstance(reason, (socket.timeout, TimeoutError)):
                raise _Retryable(f"no answer from {_host(url)} within {self.timeout_s:g} s") from e
            if isinstance(reason, socket.gaierror):
                raise _Retryable(f"cannot resolve {_host(url)} (no network?)") from e
            if isinstance(reason, ConnectionRefusedError):
                raise _Retryable(f"connection to {_host(url)} refused (no network, or server down)") from e
            raise _Retryable(f"cannot reach {_host(url)}: {reason} (no network?)") from e
        except DownloadError:
            raise
        except (socket.timeout, TimeoutError) as e:
            raise _Retryable(f"no answer from {_host(url)} within {self.timeout_s:g} s") from e
        except (ConnectionError, http.client.HTTPException, OSError, ValueError) as e:
            raise _Retryable(f"connection to {_host(url)} failed: {e}") from e
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
        cap = total if total is not None else self.max_unknown_bytes
        if total is not None and total > self.max_unknown_bytes and expected_size is None:
            raise DownloadError(f"{url}: server announces {format_bytes(total)}, more than the "
                                f"{format_bytes(self.max_unknown_bytes)} a model download may be")
        self.check_space(dest.parent, None if total is None else 2 * (total - have) + have, url)
        done = have
        if progress is not None:
            progress(Progress("download", label, done, total))
        last_data = time.monotonic()
        window = collections.deque([(last_data, done)])  # (time, bytes) over the stall window
        try:
            with open(dest, mode) as out:
                while True:
                    if cancel is not None and cancel():
                        raise DownloadCancelled(f"{url}: cancelled (partial download kept for resume)")
                    try:
                        chunk = fetch.next_chunk()
                    except http.client.IncompleteRead as e:
                        out.write(e.partial)
                        done += len(e.partial)
                        raise _Retryable(f"connection closed early: got {done} of {total} bytes "
                                         f"(truncated download)") from e
                    except (socket.timeout, TimeoutError) as e:
                        raise _Retryable(f"download stalled for {self.timeout_s:g} s at {done} bytes") from e
                    except (ConnectionError, OSError, http.client.HTTPException, ValueError) as e:
                        raise _Retryable(f"connection lost at {done} bytes: {e}") from e
                    now = time.monotonic()
                    if chunk is None:  # nothing yet: poll cancel, watch for a silent server
                        if now - last_data > self.timeout_s:
                            raise _Retryable(f"download stalled: no data for {self.timeout_s:g} s at {done} bytes")
                    elif not chunk:
                        break
                    else:
                        if done + len(chunk) > cap:
                            chunk = chunk[: cap - done]
                            out.write(chunk)
                            done += len(chunk)
                            if total is None:
                                dest.unlink(missing_ok=True)
                                raise DownloadError(
                                    f"{url}: the server sends more than {format_bytes(cap)} without saying how "
                                    f"much (no Content-Length); refusing an endless download")
                            break
                        out.write(chunk)
                        done += len(chunk)
                        last_data = now
                        if progress is not None:
                            progress(Progress("download", label, done, total))
                        if total is not None and done >= total:
                            break
                    window.append((now, done))
                    while len(window) > 2 and window[1][0] <= now - self.stall_s:
                        window.popleft()
                    if (window[0][0] <= now - self.stall_s
                            and done - window[0][1] < self.stall_min_bytes):
                        raise _Retryable(f"download stalled: {done - window[0][1]} bytes in the last "
                                         f"{self.stall_s:g} s (at {done} bytes)")
        except OSError as e:
            if getattr(e, "errno", None) == 28:  # ENOSPC
                raise DiskSpaceError(f"{dest.parent}: no space left on the device while writing "
                                     f"{label} ({format_bytes(done)} written)") from e
            raise
        if total is not None and done < total:
            raise _Retryable(f"connection closed early: got {done} of {total} bytes (truncated download)")
        if done == 0:
            raise DownloadError(f"{url}: the server sent an empty file")
        _refuse_html_download(dest, url)
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
