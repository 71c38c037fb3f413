"""The photo section of ``maskstudio bench``: alignment of a 12 MP photo, local vs whole-face
re-render of a stroke, with and without paste-back (medians, wall and process CPU time).

The photo is synthetic and contains no real person: the shipped gallery's first DMN sample,
put into a 4000×3000 canvas (rotated 8°, face ≈ 650 px wide) on a smooth noise background,
saved as JPEG q90 in a temporary folder.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


def _timed(fn, repeats: int, warmup: int = 1) -> tuple[list[float], list[float]]:
    for _ in range(warmup):
        fn()
    wall, cpu = [], []
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        wall.append((time.perf_counter() - t0) * 1e3)
        cpu.append((time.process_time() - c0) * 1e3)
    return wall, cpu


def _row(name: str, wall: list[float], cpu: list[float]) -> dict[str, Any]:
    w, c = float(np.median(wall)), float(np.median(cpu))
    print(f"  {name:<52} p50 {w:8.1f} ms  (cpu {c:7.1f} ms, n={len(wall)})", flush=True)
    return {"name": name, "p50_ms": w, "cpu_p50_ms": c, "p95_ms": float(np.percentile(wall, 95)), "n": len(wall)}


def photo_section(settings, *, device: str = "cpu", precision: str = "auto", quick: bool = False) -> dict:
    from PIL import Image

    from maskstudio.bench.photo_align import synthetic_photo
    from maskstudio.engine.pipeline import Engine
    from maskstudio.photo.align import align_face, warp_crop
    from maskstudio.photo.edit import open_photo, parser_module, render_edit
    from maskstudio.io.images import read_rgb_full

    res = Path(settings.resources) / "gallery"
    sample = res / "dmn_sample_01.png"
    if not sample.is_file():
        print(f"photo editing: skipped ({sample} is missing)", flush=True)
        return {"photo": [], "photo_skipped": f"{sample} is missing"}
    face = np.asarray(Image.open(sample).convert("RGB"))
    photo, _, data = synthetic_photo(face, np.random.default_rng(0), size_wh=(4000, 3000), angle_deg=8.0,
                                     scale=2.0, jpeg=True)
    reps = 3 if quick else 7
    rows: list[dict] = []
    engine = Engine(settings, device=device, precision=precision, start_worker=False)
    missing = [role for role in ("parser", "dmn") if engine.models.first(role) is None]
    if missing:
        engine.close()
        print(f"photo editing: skipped (no {' and no '.join(missing)} installed)", flush=True)
        return {"photo": [], "photo_skipped": f"no {' and no '.join(missing)} installed"}
    try:
        parser = parser_module(engine.models)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "photo_12mp.jpg"
            path.write_bytes(data)
            print(f"photo editing (synthetic 4000×3000 JPEG, {len(data) / 1e6:.1f} MB; "
                  f"{engine.policy.describe()}):", flush=True)

            def align_file():
                rgb = read_rgb_full(path)
                al = align_face(rgb, parser)
                warp_crop(rgb, al.crop_from_photo, 512)

            rows.append(_row("align 4000×3000: read JPEG + detect + align + crop", *_timed(align_file, reps)))
            rows.append(_row("align 4000×3000: detect + align + crop (decoded)",
                             *_timed(lambda: warp_crop(photo, align_face(photo, parser).crop_from_photo, 512),
                                     reps)))
            src = open_photo(path, parser)
        from maskstudio.bench.engine import _Strokes

        for whole in (False, True):
            for paste in (False, True):
                strokes = _Strokes(src.parsed, seed=1)

                def one(strokes=strokes, whole=whole, paste=paste):
                    render_edit(engine, src, np.array(strokes.paint()), whole_face=whole, paste=paste)

                what = "whole-face" if whole else "local"
                where = "+ paste-back into 12 MP" if paste else "crop only"
                rows.append(_row(f"stroke -> {what} render 512² {where}", *_timed(one, reps + 3)))
    finally:
        engine.close()
    return {"photo": rows}
