"""A real HTTP file server on 127.0.0.1 for the model-manager tests (never any other address).

``serve(files, range_support=True, cut_after=None, cut_times=0, delay_s=0)`` is a context
manager yielding a :class:`Server` with ``url(name)`` and ``requests`` (list of
``(path, Range header or None)``). ``cut_after`` bytes: the first ``cut_times`` responses
announce the full Content-Length but close the connection after that many body bytes.
"""
from __future__ import annotations

import contextlib
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Server:
    def __init__(self, httpd: ThreadingHTTPServer, state: dict) -> None:
        self.httpd = httpd
        self.state = state

    @property
    def base(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, name: str) -> str:
        return f"{self.base}/{name}"

    @property
    def requests(self) -> list[tuple[str, str | None]]:
        return list(self.state["requests"])


def _handler(state: dict):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # keep test output clean
            pass

        def do_GET(self):  # noqa: N802
            name = self.path.lstrip("/")
            rng = self.headers.get("Range")
            with state["lock"]:
                state["requests"].append((name, rng))
                n_req = len(state["requests"])
            data = state["files"].get(name)
            if data is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if state["delay_s"]:
                time.sleep(state["delay_s"])
            start = 0
            if rng and state["range_support"]:
                start = int(rng.split("=", 1)[1].split("-", 1)[0])
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            if state["range_support"]:
                self.send_header("Accept-Ranges", "bytes")
            body = data[start:]
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            cut = state["cut_after"]
            if cut is not None and n_req <= state["cut_times"]:
                self.wfile.write(body[:cut])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)

    return Handler


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):  # client went away (cancel / timeout test)
        pass


@contextlib.contextmanager
def serve(files: dict[str, bytes], *, range_support: bool = True, cut_after: int | None = None,
          cut_times: int = 0, delay_s: float = 0.0):
    state = {"files": dict(files), "range_support": range_support, "cut_after": cut_after,
             "cut_times": cut_times, "delay_s": delay_s, "requests": [], "lock": threading.Lock()}
    httpd = _QuietServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    t = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    try:
        yield Server(httpd, state)
    finally:
        httpd.shutdown()
        httpd.server_close()
        t.join(5)
