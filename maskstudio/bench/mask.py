"""Benchmark of the mask document (not a test): medians of the interactive operations.

    python -m maskstudio.bench.mask [--repeat 50] [--json PATH]
    maskstudio mask bench [--repeat 50] [--json PATH]

Operations on a 512 x 512 face-like mask, single thread (OpenCV limited to one thread):

* ``stroke``: ``doc.stroke`` of a 100-point, 40 px brush polyline across the face (one call);
* ``interactive_stroke``: the same stroke as the UI makes it (``begin_stroke``, 100
  ``add_point``, ``end``), total, and ``add_point`` per segment;
* ``flood_fill_background``: flood fill of the (connected) background;
* ``undo_stroke`` / ``redo_stroke``: undo / redo of the stroke.

Each line gives the median wall time and the median thread CPU time (less disturbed when other
processes share the machine). Target: a stroke op <= 2 ms median on one core.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from maskstudio import labels as L
from maskstudio.mask.document import MaskDocument
from maskstudio.mask.raster import polygon_footprint
from maskstudio.bench import write_json

SIZE = 512
STROKE_POINTS = 100
STROKE_DIAMETER_PX = 40.0


def synthetic_face(size: int = SIZE) -> np.ndarray:
    """A face-like label map (background, hair, skin, eyes, brows, nose, lips, neck, cloth)."""
    lab = np.zeros((size, size), np.uint8)
    s = size / 512.0

    def ellipse(cx, cy, rx, ry, cls, n=96):
        t = np.linspace(0, 2 * np.pi, n, endpoint=False)
        pts = np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], 1) * s
        bbox, m = polygon_footprint(pts, lab.shape)
        if bbox is not None:
            y0, x0, y1, x1 = bbox
            lab[y0:y1, x0:x1][m] = cls

    ellipse(256, 470, 230, 90, L.index_of("cloth"))
    ellipse(256, 380, 70, 90, L.index_of("neck"))
    ellipse(256, 230, 170, 200, L.index_of("hair"))
    ellipse(256, 270, 120, 160, L.index_of("skin"))
    ellipse(205, 240, 22, 10, L.index_of("r_eye"))
    ellipse(307, 240, 22, 10, L.index_of("l_eye"))
    ellipse(200, 210, 30, 7, L.index_of("r_brow"))
    ellipse(312, 210, 30, 7, L.index_of("l_brow"))
    ellipse(256, 290, 18, 30, L.index_of("nose"))
    ellipse(256, 350, 40, 8, L.index_of("u_lip"))
    ellipse(256, 366, 38, 9, L.index_of("l_lip"))
    return lab


def stroke_points(size: int = SIZE, n: int = STROKE_POINTS) -> np.ndarray:
    """A smooth wavy polyline across the face, ``n`` points, sub-pixel coordinates."""
    t = np.linspace(0.0, 1.0, n)
    s = size / 512.0
    return np.stack([(60 + 392 * t) * s, (260 + 110 * np.sin(t * 2 * np.pi * 1.5)) * s], 1)


def _time(fn: Callable[[], object], setup: Callable[[], object] | None, repeat: int):
    wall, cpu = [], []
    for _ in range(max(2, repeat // 10)):  # warm-up
        if setup:
            setup()
        fn()
    for _ in range(repeat):
        if setup:
            setup()
        w0, c0 = time.perf_counter(), time.thread_time()
        fn()
        cpu.append(time.thread_time() - c0)
        wall.append(time.perf_counter() - w0)
    return wall, cpu


def run_benchmark(repeat: int = 50) -> dict:
    try:
        import cv2

        cv2.setNumThreads(1)
    except ImportError:  # pragma: no cover - cv2 is a dependency
        pass
    base = synthetic_face()
    doc = MaskDocument(base)
    pts = stroke_points()
    hair = L.index_of("hair")
    results: dict[str, dict] = {}

    def record(name, wall, cpu, note=""):
        results[name] = {
            "median_ms": 1e3 * statistics.median(wall),
            "median_cpu_ms": 1e3 * statistics.median(cpu),
            "min_ms": 1e3 * min(wall),
            "runs": len(wall),
            "note": note,
        }

    def reset():
        while doc.can_undo:
            doc.undo()
        doc.clear_history()

    # whole stroke in one call
    wall, cpu = _time(lambda: doc.stroke(pts, STROKE_DIAMETER_PX, hair), reset, repeat)
    record("stroke", wall, cpu, f"doc.stroke, {STROKE_POINTS} points, {STROKE_DIAMETER_PX:g} px")
    changed = int((doc.labels != base).sum())

    # the UI's way: point by point
    seg_wall: list[float] = []
    seg_cpu: list[float] = []

    def interactive():
        s = doc.begin_stroke("brush", hair, STROKE_DIAMETER_PX)
        for x, y in pts:
            w0, c0 = time.perf_counter(), time.thread_time()
            s.add_point(x, y)
            seg_cpu.append(time.thread_time() - c0)
            seg_wall.append(time.perf_counter() - w0)
        s.end()

    wall, cpu = _time(interactive, reset, repeat)
    record("interactive_stroke", wall, cpu, "begin_stroke + 100 add_point + end")
    record("add_point", seg_wall, seg_cpu, "one segment of the interactive stroke")
    check = MaskDocument(base)
    check.stroke(pts, STROKE_DIAMETER_PX, hair)
    if not np.array_equal(doc.labels, check.labels):  # pragma: no cover - a bug, not a timing
        raise RuntimeError("the interactive stroke painted other pixels than doc.stroke")

    # flood fill of the background
    wall, cpu = _time(lambda: doc.flood_fill(2.5, 2.5, L.index_of("cloth")), reset, repeat)
    record("flood_fill_background", wall, cpu, f"{int((base == 0).sum())} px region")

    # undo / redo of a stroke
    reset()
    doc.stroke(pts, STROKE_DIAMETER_PX, hair)
    undo_w, undo_c, redo_w, redo_c = [], [], [], []
    for i in range(repeat + 5):
        w0, c0 = time.perf_counter(), time.thread_time()
        doc.undo()
        c1, w1 = time.thread_time(), time.perf_counter()
        doc.redo()
        c2, w2 = time.thread_time(), time.perf_counter()
        if i >= 5:
            undo_w.append(w1 - w0)
            undo_c.append(c1 - c0)
            redo_w.append(w2 - w1)
            redo_c.append(c2 - c1)
    record("undo_stroke", undo_w, undo_c, f"{changed} changed px")
    record("redo_stroke", redo_w, redo_c)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {
        "results": results,
        "env": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "machine": platform.machine(),
            "cpu_count": os.cpu_count(),
            "load_avg_1min": load,
            "size": SIZE,
        },
    }


def print_report(report: dict, out=sys.stdout) -> None:
    env = report["env"]
    print(f"MaskDocument benchmark, {env['size']}x{env['size']}, one thread "
          f"(numpy {env['numpy']}, {env['cpu_count']} CPUs, load {env['load_avg_1min']})", file=out)
    print(f"  {'operation':<24}{'median ms':>10}{'cpu ms':>9}{'min ms':>9}  note", file=out)
    for name, r in report["results"].items():
        print(f"  {name:<24}{r['median_ms']:>10.3f}{r['median_cpu_ms']:>9.3f}{r['min_ms']:>9.3f}  "
              f"{r['note']}", file=out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m maskstudio.bench.mask", description="Benchmark MaskDocument operations (medians).")
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--json", type=Path, default=None, metavar="PATH")
    args = parser.parse_args(argv)
    report = run_benchmark(repeat=max(1, args.repeat))
    print_report(report)
    if args.json is not None:
        write_json(args.json, report)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
