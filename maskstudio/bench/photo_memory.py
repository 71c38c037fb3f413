"""Memory high-water mark of opening a big photo (issue 15): ``maskstudio bench`` prints one line.

    python -m maskstudio.bench.photo_memory [--megapixels 24] [--repeats 3] [--json out.json]

A photo-like 24 MP JPEG (6000 x 4000, EXIF orientation 6 like a portrait phone photo) is
generated in a temporary folder; then, each in a fresh Python process (so nothing else in the
measuring process counts), it is opened as an exemplar / photo (:func:`read_rgb`: shrunk while
decoding) and at full resolution (:func:`read_rgb_full`, for paste-back). Reported: the peak
RSS (``VmHWM``, else ``ru_maxrss``) of each child, median over ``repeats``, beside a child that only imports the
same modules (the baseline). Nothing is asserted here; the fuzz suite holds the 1.5 GB budget.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from maskstudio.bench import write_json
from typing import Any

_MAKE = """
import numpy as np
from PIL import Image
h, w = {h}, {w}
im = Image.new("RGB", (w, h))
for y in range(0, h, 512):
    yy = np.arange(y, min(h, y + 512))[:, None]
    xx = np.arange(w)[None, :]
    a = np.stack(np.broadcast_arrays((xx + yy) % 256, (xx * 3 + yy) % 256, (yy * 5) % 256), -1)
    im.paste(Image.fromarray(a.astype(np.uint8)), (0, y))
ex = im.getexif(); ex[0x0112] = 6
im.save({path!r}, quality=88, exif=ex.tobytes())
"""

#: Python source defining ``peak_rss_kb()``, the peak RSS of the process running it in KB: VmHWM
#: (the high-water mark of this process image only; ru_maxrss would include the parent's memory
#: at fork on Linux), else ru_maxrss. For measuring fresh child processes (also used by tests).
PEAK_RSS_CODE = """import resource, sys
def peak_rss_kb():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
"""

_MEASURE = PEAK_RSS_CODE.replace("{", "{{").replace("}", "}}") + """
from maskstudio.io.images import read_rgb, read_rgb_full
{call}
sys.stdout.write("%d %s\\n" % (peak_rss_kb(), {shape}))
"""


def _child(code: str) -> tuple[float, str]:
    root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    if r.returncode != 0:
        raise RuntimeError(r.stderr.strip().splitlines()[-1] if r.stderr.strip() else "child failed")
    kb, _, rest = r.stdout.strip().partition(" ")
    return int(kb) / 1024.0, rest


def measure(megapixels: float = 24.0, repeats: int = 3) -> dict[str, Any]:
    """Peak RSS (MiB, medians) of opening a generated ``megapixels`` photo; see module doc."""
    w = int(round((megapixels * 1e6 * 1.5) ** 0.5 / 10) * 10)
    h = int(round(w / 1.5))
    with tempfile.TemporaryDirectory(prefix="maskstudio-bench-") as d:
        photo = Path(d) / "photo.jpg"
        _child(_MAKE.format(h=h, w=w, path=str(photo)) + "\nimport sys; sys.stdout.write('0 -\\n')\n")
        calls = {"baseline (imports only)": ("pass", "'-'"),
                 "as exemplar/photo (read_rgb)": (f"a = read_rgb({str(photo)!r})", "a.shape"),
                 "full resolution (read_rgb_full)": (f"a = read_rgb_full({str(photo)!r})", "a.shape")}
        out: dict[str, Any] = {"photo": f"{w}x{h} JPEG ({w * h / 1e6:.1f} MP, EXIF orientation 6)",
                               "file_mib": photo.stat().st_size / 2**20, "repeats": repeats, "peak_rss_mib": {},
                               "shape": {}}
        for name, (call, shape) in calls.items():
            peaks = []
            for _ in range(max(1, repeats)):
                mib, got = _child(_MEASURE.format(call=call, shape=shape))
                peaks.append(mib)
            out["peak_rss_mib"][name] = statistics.median(peaks)
            out["shape"][name] = got
    return out


def line(result: dict[str, Any]) -> str:
    p = result["peak_rss_mib"]
    base = p["baseline (imports only)"]
    ex = p["as exemplar/photo (read_rgb)"]
    full = p["full resolution (read_rgb_full)"]
    return (f"photo memory: opening a {result['photo']}: peak RSS {ex:.0f} MiB as exemplar/photo "
            f"(-> {result['shape']['as exemplar/photo (read_rgb)']}), {full:.0f} MiB at full resolution; "
            f"baseline {base:.0f} MiB (median of {result['repeats']} fresh processes)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--megapixels", type=float, default=24.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args(argv)
    res = measure(a.megapixels, a.repeats)
    print(line(res), flush=True)
    if a.json is not None:
        write_json(a.json, res)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
