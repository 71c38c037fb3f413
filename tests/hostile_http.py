"""A hostile HTTP server on 127.0.0.1 (never any other address) for the download fuzz tests.

Paths: ``/ok`` (the file), ``/redirect-ftp`` and ``/redirect-file`` (302 to ftp:// / file://),
``/redirect-ok`` (302 to /ok), ``/trickle`` (announces the size, then 1 byte per ``trickle_s``),
``/endless`` (no Content-Length, bytes until the client goes away), ``/html`` (an HTML page as
200), ``/silent`` (accepts, never answers), ``/lie-short`` (announces 10x the size it sends).
"""
from __future__ import annotations

import contextlib
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HTML = b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body>Please log in</body></html>\n"


def _handler(state: dict):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def _head(self, code: int, length: int | None, extra: dict | None = None) -> None:
            self.send_response(code)
            self.send_header("Content-Type", "application/octet-stream")
            if length is not None:
                self.send_header("Content-Length", str(length))
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()

        def do_GET(self):  # noqa: N802
            path = self.path.split("?", 1)[0]
            state["requests"].append(path)
            data = state["data"]
            try:
                if path == "/ok":
                    self._head(200, len(data))
                    self.wfile.write(data)
                elif path.startswith("/redirect-"):
                    target = {"ftp": "ftp://127.0.0.1/x.pt", "file": "file:///etc/passwd",
                              "ok": "/ok"}[path.split("-", 1)[1]]
                    self._head(302, 0, {"Location": target})
                elif path == "/trickle":
                    self._head(200, len(data))
                    for i in range(len(data)):
                        if state["stop"].is_set():
                            return
                        self.wfile.write(data[i:i + 1])
                        self.wfile.flush()
                        time.sleep(state["trickle_s"])
                elif path == "/endless":
                    self.send_response(200)
                    self.send_header("Content-Type", "application/octet-stream")
                    self.send_header("Connection", "close")
                    self.end_headers()
                    block = b"\0" * 65536
                    while not state["stop"].is_set():
                        self.wfile.write(block)
                    self.close_connection = True
                elif path == "/html":
                    self._head(200, len(HTML), {"Content-Type": "text/html"})
                    self.wfile.write(HTML)
                elif path == "/silent":
                    state["stop"].wait(30)
                elif path == "/lie-short":
                    self._head(200, 10 * len(data))
                    self.wfile.write(data)
                    self.close_connection = True
                else:
                    self._head(404, 0)
            except (BrokenPipeError, ConnectionResetError):
                pass

    return Handler


class _Quiet(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass


@contextlib.contextmanager
def hostile_server(data: bytes, *, trickle_s: float = 0.5):
    state = {"data": data, "trickle_s": trickle_s, "requests": [], "stop": threading.Event()}
    httpd = _Quiet(("127.0.0.1", 0), _handler(state))
    t = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    host, port = httpd.server_address[:2]
    try:
        yield f"http://{host}:{port}", state
    finally:
        state["stop"].set()
        httpd.shutdown()
        httpd.server_close()
        t.join(5)
