"""``maskstudio bench``: stroke-to-pixels and latent-chain latency of the engine (medians + JSON).

    maskstudio bench [--device auto|cpu|cuda] [--precision auto|fp32|fp16|bf16] [--quick]
                     [--json PATH] [--skip-official] [--skip-latent] [--skip-photo | --photo-only]

1. **Stroke-to-pixels** (DMN): a brush stroke is painted into a :class:`MaskDocument`, a
   :class:`RenderRequest` submitted to the engine's worker, and the clock stops when the uint8
   image arrives in the callback. At the preview size (256) and full size (512), for the
   installed DMN (``dmn_starter`` or whatever the model manager installed; when none is
   installed a starter-size stand-in with random weights, labelled so) and for the official-size
   DMN (ngf 64, 89.7 M parameters, random weights). Beside it, in the same run, the **naive
   baseline**: what the official demo does per stroke — float32, no caching, the full forward
   including the exemplar style encoding, at the same size — so the speed-up is a ratio.
   **DMN style sliders**: a semantic-boundary slider move (the exemplar's style code is
   cached; only the generator runs) at the 256² preview with the installed DMN and the shipped
   boundaries, and the same with one per-region style (one extra generator pass per move).
2. **Latent chain** per stage (invert, edit, photo, agile, dual, and a slider move = edit +
   photo, and that slider while dragging = a preview whose synthesis stops at the 256² layer)
   with official-size networks and random weights at generator size 256 and 1024.
3. Peak memory (process RSS on CPU; CUDA allocator peak per section on CUDA).
4. **Photo memory**: the peak RSS of opening a 24 MP photo (as exemplar/photo and at full
   resolution), each in a fresh process (:mod:`maskstudio.bench.photo_memory`).

Beside wall-clock, the process CPU time per stroke is reported ("cpu"): on a shared, loaded
machine it is the steadier number (the 1-minute load average is recorded with each row).

Latency depends on weights only through data-dependent branches, which these networks do not
have, so random weights time the same as trained ones. Timings are wall-clock medians (p50) and
95th percentiles (p95) after warm-up; nothing is asserted.
"""
from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

from maskstudio.errors import ConfigError
from maskstudio.bench import write_json


def _stats(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms, dtype=np.float64)
    return {"p50_ms": float(np.percentile(a, 50)), "p95_ms": float(np.percentile(a, 95)),
            "min_ms": float(a.min()), "n": int(a.size)}


def _peak_mib(policy) -> float:
    stats = policy.memory_stats()
    return float(stats.get("cuda_peak_mib", stats.get("cpu_peak_rss_mib", 0.0)))


def _reset_peak(policy) -> None:
    if policy.is_cuda:
        import torch

        torch.cuda.reset_peak_memory_stats(policy.device)


def _sample_inputs(settings) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """(document labels 512², exemplar image, exemplar labels, where from)."""
    res = Path(settings.resources)
    template = res / "sample" / "template_mask.png"
    gallery = sorted((res / "gallery").glob("*.mask.png")) if (res / "gallery").is_dir() else []
    from maskstudio.io.masks import read_mask

    if template.is_file() and gallery:
        from maskstudio.io.images import read_rgb

        labels = read_mask(template).labels
        gm = gallery[0]
        img = read_rgb(gm.with_name(gm.name[: -len(".mask.png")] + ".png"))
        ex_labels = read_mask(gm).labels
        if img.shape[:2] != ex_labels.shape:
            from maskstudio.engine.pipeline import _resize_labels, _resize_rgb

            img = _resize_rgb(img, 512)
            ex_labels = _resize_labels(ex_labels, 512)
        return labels, img, ex_labels, f"{template.name} + gallery/{gm.name}"
    # synthetic stand-in: a face-like layout of classes, a smooth random exemplar
    size = 512
    yy, xx = np.mgrid[:size, :size]
    r = np.hypot(yy - size / 2, (xx - size / 2) * 1.2)
    labels = np.zeros((size, size), np.uint8)
    labels[r < 230] = 13
    labels[r < 180] = 1
    labels[(np.abs(yy - 220) < 14) & (np.abs(xx - 190) < 30)] = 4
    labels[(np.abs(yy - 220) < 14) & (np.abs(xx - 322) < 30)] = 5
    labels[(np.abs(yy - 290) < 40) & (np.abs(xx - 256) < 16)] = 2
    labels[(np.abs(yy - 360) < 10) & (np.abs(xx - 256) < 50)] = 11
    labels[(np.abs(yy - 380) < 10) & (np.abs(xx - 256) < 50)] = 12
    labels[yy > 470] = 18
    rng = np.random.default_rng(0)
    img = rng.integers(60, 200, (size // 8, size // 8, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1)
    return labels, np.ascontiguousarray(img), labels.copy(), "synthetic layout (resources/ sample not found)"


class _Strokes:
    """Brush strokes into a MaskDocument: a short random drag with a random face class."""

    def __init__(self, labels: np.ndarray, seed: int = 0) -> None:
        from maskstudio.mask import MaskDocument

        self.doc = MaskDocument(np.array(labels))
        self.rng = np.random.default_rng(seed)

    def paint(self) -> np.ndarray:
        h, w = self.doc.shape
        x0, y0 = self.rng.uniform(0.25, 0.75) * w, self.rng.uniform(0.25, 0.75) * h
        pts = [(x0 + 6 * k, y0 + 3 * k) for k in range(6)]
        cls = int(self.rng.choice([1, 2, 4, 5, 10, 11, 12, 13]))
        self.doc.stroke(pts, float(self.rng.uniform(8, 24)), cls)
        return self.doc.labels


def _engine_latency(engine, labels, exemplar, size: int, repeats: int,
                    warmup: int = 2) -> tuple[list[float], list[float]]:
    """Stroke -> submit -> image in the callback, one stroke at a time (no queueing)."""
    import threading

    from maskstudio.engine.types import RenderRequest

    strokes = _Strokes(labels, seed=size)
    done = threading.Event()
    box: dict[str, Any] = {}

    def cb(res) -> None:
        box["res"] = res
        done.set()

    engine.set_callback(cb)
    times: list[float] = []
    cpu: list[float] = []
    for i in range(warmup + repeats):
        done.clear()
        c0 = time.process_time()
        t0 = time.perf_counter()
        lab = strokes.paint()
        engine.submit(RenderRequest(lab, exemplar, size_px=size))
        if not done.wait(600):
            raise ConfigError("bench: the engine did not answer within 600 s")
        dt = (time.perf_counter() - t0) * 1e3
        dc = (time.process_time() - c0) * 1e3
        res = box["res"]
        if not res.ok:
            raise ConfigError(f"bench: render failed: {res.error}")
        if i >= warmup:
            times.append(dt)
            cpu.append(dc)
    engine.set_callback(None)
    return times, cpu


def _naive_latency(net, labels, ex_image, ex_labels, size: int, repeats: int, warmup: int = 1,
                   out_size: int | None = None) -> tuple[list[float], list[float]]:
    """The official demo's per-stroke work: fp32, full forward incl. style encoding, no caches
    (at ``size``; upscaled to ``out_size`` when the DMN's native size is smaller)."""
    import torch

    from maskstudio.engine.pipeline import _resize_labels, _resize_rgb, _resize_t, to_uint8_image
    from maskstudio.models.dense_mapping import one_hot

    strokes = _Strokes(labels, seed=size)
    dev = next(net.parameters()).device
    times: list[float] = []
    cpu: list[float] = []
    for i in range(warmup + repeats):
        c0 = time.process_time()
        t0 = time.perf_counter()
        lab = strokes.paint()
        with torch.no_grad():
            onehot = one_hot(torch.from_numpy(np.array(_resize_labels(lab, size)))[None].long().to(dev))
            ref_onehot = one_hot(torch.from_numpy(np.array(_resize_labels(ex_labels, size)))[None].long().to(dev))
            img = torch.from_numpy(np.array(_resize_rgb(ex_image, size))).permute(2, 0, 1)[None].float().to(dev)
            ref = (img / 255.0 - 0.5) / 0.5
            out = net(onehot, ref_onehot, ref)
            if out_size is not None and out_size != size:
                out = _resize_t(out, out_size)
            to_uint8_image(out)
        if i >= warmup:
            times.append((time.perf_counter() - t0) * 1e3)
            cpu.append((time.process_time() - c0) * 1e3)
    return times, cpu


def _dmn_section(args, settings, name: str, module, config: dict, note: str,
                 labels, ex_image, ex_labels, sizes: list[int], reps: dict[int, int],
                 meta: dict | None = None) -> dict:
    import torch

    from maskstudio.engine.models import ModelSet
    from maskstudio.engine.pipeline import Engine
    from maskstudio.engine.types import Exemplar

    ms = ModelSet([])
    info = ms.add_module(name, "maskgan_dmn", module, config, meta=meta)
    engine = Engine(settings, models=ms, device=args.device, precision=args.precision, compile=args.compile)
    native = engine.native_size_for(info)
    out: dict[str, Any] = {"model": name, "note": note, "config": config, "native_size_px": native,
                           "params": int(sum(p.numel() for p in module.parameters())),
                           "device": str(engine.policy.device),
                           "dtype": str(engine.policy.dtype_for("maskgan_dmn")).replace("torch.", ""),
                           "sizes": {}}
    exemplar = Exemplar(ex_image, ex_labels, name="bench")
    try:
        for size in sizes:
            _reset_peak(engine.policy)
            eng_ms, eng_cpu = _engine_latency(engine, labels, exemplar, size, reps[size])
            peak = _peak_mib(engine.policy)
            # naive baseline on the same device in float32 (a float32 copy when the engine runs reduced)
            naive_net = module
            if next(module.parameters()).dtype != torch.float32:
                import copy

                naive_net = copy.deepcopy(module).float()
            gen = size if native is None else min(size, native)
            naive_ms, naive_cpu = _naive_latency(naive_net, labels, ex_image, ex_labels, gen,
                                                 max(2, reps[size] // 2), out_size=size)
            del naive_net
            entry: dict[str, Any] = {"generated_px": gen, "engine": _stats(eng_ms), "engine_cpu": _stats(eng_cpu),
                                     "peak_mib": peak,
                     "naive": _stats(naive_ms), "naive_cpu": _stats(naive_cpu),
                     "load_avg_1min": os.getloadavg()[0]}
            entry["speedup_p50"] = entry["naive"]["p50_ms"] / entry["engine"]["p50_ms"]
            entry["speedup_cpu_p50"] = entry["naive_cpu"]["p50_ms"] / entry["engine_cpu"]["p50_ms"]
            out["sizes"][str(size)] = entry
            _print_dmn(name, size, entry)
    finally:
        engine.close()
    out["style_encodings"] = engine.stage_counts.get("style", 0)
    out["generator_runs"] = engine.stage_counts.get("face", 0)
    return out


def _print_dmn(name: str, size: int, e: dict) -> None:
    en = e["engine"]
    gen = e.get("generated_px", size)
    size_txt = f"{size}²" if gen == size else f"{size}² (gen {gen}²)"
    line = (f"  {name:<22} {size_txt:>16}  engine p50 {en['p50_ms']:7.1f} ms p95 {en['p95_ms']:7.1f} ms"
            f" (cpu {e['engine_cpu']['p50_ms']:.0f})  | naive p50 {e['naive']['p50_ms']:7.1f} ms"
            f" (cpu {e['naive_cpu']['p50_ms']:.0f})  speed-up ×{e['speedup_p50']:.2f} (cpu ×{e['speedup_cpu_p50']:.2f})"
            f"  | peak {e['peak_mib']:.0f} MiB | load {e['load_avg_1min']:.1f}")
    print(line, flush=True)


def _latent_section(args, settings, gen_size: int, dmn, dmn_cfg, labels, ex_image, ex_labels, reps: int,
                    dmn_meta: dict | None = None) -> dict:
    import torch

    from maskstudio.engine.models import ModelSet
    from maskstudio.engine.pipeline import Engine
    from maskstudio.engine.types import AgileParams, DualParams, Exemplar, RenderRequest
    from maskstudio.models.agilegan import AgileGANGenerator, AgileGeneratorConfig
    from maskstudio.models.dualstylegan import DualStyleGAN, DualStyleGANConfig
    from maskstudio.models.psp import PSPConfig, PSPEncoderModel
    from maskstudio.models.stylegan2 import StyleGAN2Config, StyleGAN2Generator

    torch.manual_seed(0)
    t_build = time.perf_counter()
    sg_cfg = StyleGAN2Config(size=gen_size)
    n = sg_cfg.n_latent
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix="maskstudio-bench-"))
    (tmp / "bench").mkdir()
    v = np.random.default_rng(0).standard_normal((1, 512)).astype(np.float32)
    np.save(tmp / "bench" / "random_w_boundary.npy", v / np.linalg.norm(v))
    ms = ModelSet([(tmp, "user")])
    ms.add_module("dmn", "maskgan_dmn", dmn, dmn_cfg, meta=dmn_meta)
    psp_cfg = PSPConfig(n_styles=n, decoder=None, latent_space="zplus", middle_ind=min(7, n))
    ms.add_module("psp", "psp_encoder", PSPEncoderModel(psp_cfg).eval(), psp_cfg.to_dict(),
                  extras={"latent_avg": torch.zeros(n, 512)})
    ms.add_module("sg", "stylegan2", StyleGAN2Generator(sg_cfg).eval(), sg_cfg.to_dict())
    ag_cfg = AgileGeneratorConfig(size=gen_size)
    ms.add_module("agile", "agilegan_generator", AgileGANGenerator(ag_cfg).eval(), ag_cfg.to_dict())
    ds_cfg = DualStyleGANConfig(size=gen_size, res_index=6)
    ms.add_module("dual", "dualstylegan", DualStyleGAN(ds_cfg).eval(), ds_cfg.to_dict(),
                  extras={"exstyle_code.random": torch.randn(1, n, 512)})
    build_s = time.perf_counter() - t_build
    # preview_target_ms: the preview scheduler stays at the 256² output (no adaptive shrinking)
    engine = Engine(settings, models=ms, device=args.device, precision=args.precision, compile=args.compile,
                    start_worker=False, preview_target_ms=1e9)
    exemplar = Exemplar(ex_image, ex_labels, name="bench")
    strokes = _Strokes(labels, seed=gen_size)
    preview_ms: list[float] = []
    preview_res: set[int] = set()
    stage_ms: dict[str, list[float]] = {k: [] for k in ("face", "invert", "edit", "photo", "agile", "dual")}
    slider_ms: list[float] = []
    edit_ms: list[float] = []
    total_ms: list[float] = []
    size = 256
    _reset_peak(engine.policy)
    try:
        for i in range(1 + reps):  # first round = warm-up
            lab = strokes.paint()
            t0 = time.perf_counter()
            r = engine.render_sync(RenderRequest(lab, exemplar, output="photo", size_px=size))
            if not r.ok:
                raise ConfigError(f"bench: latent chain failed: {r.error}")
            t_photo = (time.perf_counter() - t0) * 1e3
            # a semantic-boundary slider move: inversion cached, edit + photo run
            re_ = engine.render_sync(RenderRequest(lab, exemplar, output="photo", size_px=size,
                                                   edits={"random_w_boundary": 1.0 + i}))
            # the same slider while dragging: previews whose synthesis stops at a reduced layer
            # (chosen by the engine from measured synthesis time), four moves of the drag
            drag_ms = []
            for j in range(4):
                rp = engine.render_sync(RenderRequest(lab, exemplar, output="photo", size_px=size, preview=True,
                                                      edits={"random_w_boundary": 1.5 + i + 0.1 * j}))
                if not rp.ok:
                    raise ConfigError(f"bench: latent chain failed: {rp.error}")
                if rp.synthesis_px:
                    preview_res.add(rp.synthesis_px)
                drag_ms.append(rp.latency_ms)
            ra = engine.render_sync(RenderRequest(lab, exemplar, output="agile", size_px=size,
                                                  agile=AgileParams("agile", 1.0, "A")))
            rd = engine.render_sync(RenderRequest(lab, exemplar, output="dual", size_px=size,
                                                  dual=DualParams("dual", None, (0.75,) * 7 + (1.0,) * (n - 7))))
            # a DualStyleGAN weight slider move: only the dual stage runs
            rd2 = engine.render_sync(RenderRequest(lab, exemplar, output="dual", size_px=size,
                                                   dual=DualParams("dual", None, (0.5,) * 7 + (1.0,) * (n - 7))))
            for res in (re_, ra, rd, rd2):
                if not res.ok:
                    raise ConfigError(f"bench: latent chain failed: {res.error}")
            if i == 0:
                continue
            for k in ("face", "invert", "edit", "photo"):
                stage_ms[k].append(r.stage_ms.get(k, float("nan")))
            stage_ms["agile"].append(ra.stage_ms.get("agile", float("nan")))
            stage_ms["dual"].append(rd.stage_ms.get("dual", float("nan")))
            edit_ms.append(re_.latency_ms)
            preview_ms.extend(drag_ms)
            slider_ms.append(rd2.latency_ms)
            total_ms.append(t_photo)
    finally:
        engine.close()
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    out: dict[str, Any] = {"generator_size": gen_size, "output_size": size, "build_s": build_s,
           "device": str(engine.policy.device),
           "stages": {k: _stats(v) for k, v in stage_ms.items() if v},
           "stroke_to_photo": _stats(total_ms), "edit_slider_move": _stats(edit_ms),
           "dual_slider_move": _stats(slider_ms),
           "edit_slider_preview": _stats(preview_ms), "preview_synthesis_px": sorted(preview_res),
           "peak_mib": _peak_mib(engine.policy)}
    st = out["stages"]
    print(f"  generator {gen_size:>4}: " + "  ".join(f"{k} {v['p50_ms']:.0f}" for k, v in st.items())
          + f" ms (p50) | stroke→photo {out['stroke_to_photo']['p50_ms']:.0f} ms"
          + f" | edit slider move {out['edit_slider_move']['p50_ms']:.0f} ms"
          + f" (drag preview {out['edit_slider_preview']['p50_ms']:.0f} ms, synthesis at {out['preview_synthesis_px']}²)"
          + f" | dual slider move {out['dual_slider_move']['p50_ms']:.0f} ms | peak {out['peak_mib']:.0f} MiB",
          flush=True)
    return out


def _photo_section(args) -> dict[str, Any]:
    from maskstudio.bench import photo_memory

    res = photo_memory.measure(24.0, repeats=1 if args.quick else 3)
    print(photo_memory.line(res), flush=True)
    return res


def _submit_latency(engine, make_request, repeats: int, warmup: int = 2) -> tuple[list[float], list[float], list]:
    """Submit ``make_request(i)`` to the worker one at a time; (wall ms, cpu ms, results)."""
    import threading

    done = threading.Event()
    box: dict[str, Any] = {}

    def cb(res) -> None:
        box["res"] = res
        done.set()

    engine.set_callback(cb)
    times, cpu, results = [], [], []
    try:
        for i in range(warmup + repeats):
            done.clear()
            c0 = time.process_time()
            t0 = time.perf_counter()
            engine.submit(make_request(i))
            if not done.wait(600):
                raise ConfigError("bench: the engine did not answer within 600 s")
            dt, dc = (time.perf_counter() - t0) * 1e3, (time.process_time() - c0) * 1e3
            if not box["res"].ok:
                raise ConfigError(f"bench: render failed: {box['res'].error}")
            if i >= warmup:
                times.append(dt)
                cpu.append(dc)
                results.append(box["res"])
    finally:
        engine.set_callback(None)
    return times, cpu, results


def _style_slider_section(args, settings, dmn, dmn_cfg, dmn_meta, labels, ex_image, ex_labels, reps: int) -> dict:
    """DMN style sliders: a semantic slider move (cached code, generator only) at the 256² preview,
    and the same with one per-region style (one extra generator pass)."""
    import tempfile

    from maskstudio.engine.models import ModelSet
    from maskstudio.engine.pipeline import Engine
    from maskstudio.engine.types import Exemplar, RenderRequest
    from maskstudio.io.style_files import BOUNDARY_FOLDER, write_boundary

    tmp = Path(tempfile.mkdtemp(prefix="maskstudio-bench-style-"))
    ms = ModelSet([(tmp, "user"), (Path(settings.shipped_checkpoints), "shipped")])
    ms.add_module("dmn", "maskgan_dmn", dmn, dmn_cfg, meta=dmn_meta)
    engine = Engine(settings, models=ms, device=args.device, precision=args.precision, compile=args.compile)
    try:
        bounds = engine.dmn_boundaries()
        note = "shipped boundaries"
        if not bounds:  # no boundaries fit this DMN: a random unit normal of the right length
            dim = int(dmn.num_adain_params)
            v = np.random.default_rng(0).standard_normal(dim)
            write_boundary(tmp / BOUNDARY_FOLDER, "random", v, {"std": 1.0})
            engine.dmn_boundary_index.rescan()
            bounds = engine.dmn_boundaries()
            note = "random unit normal (no boundaries fit this DMN)"
        name = "hair_lightness" if "hair_lightness" in bounds else sorted(bounds)[0]
        ex = Exemplar(ex_image, ex_labels, name="bench")
        other = Exemplar(np.ascontiguousarray(ex_image[:, ::-1]), np.ascontiguousarray(ex_labels[:, ::-1]),
                         name="bench-mirrored")
        size = 256
        lab = np.array(labels)

        def move(i: int, regions=None):
            v = -3.0 + 6.0 * ((i * 0.37) % 1.0)  # a drag across the ±3 std range, never the same value twice
            return RenderRequest(lab, ex, size_px=size, style_edits={name: round(v, 4)},
                                 region_styles=regions or {})

        engine.render_sync(RenderRequest(lab, ex, size_px=size))  # encode once
        t1, c1, r1 = _submit_latency(engine, move, reps)
        engine.render_sync(RenderRequest(lab, ex, size_px=size, region_styles={"hair": other}))
        t2, c2, r2 = _submit_latency(engine, lambda i: move(i + 1000, {"hair": other}), reps)
        passes = sorted({r.stages_run.count("face") for r in r2})
        out: dict[str, Any] = {"boundary": name, "boundaries": sorted(bounds), "note": note, "size_px": size,
               "slider_move": _stats(t1), "slider_move_cpu": _stats(c1),
               "stages_per_move": sorted({tuple(r.stages_run) for r in r1}),
               "slider_move_one_region": _stats(t2), "slider_move_one_region_cpu": _stats(c2),
               "generator_passes_per_move_one_region": passes,
               "load_avg_1min": os.getloadavg()[0]}
        out["region_extra_p50_ms"] = out["slider_move_one_region"]["p50_ms"] - out["slider_move"]["p50_ms"]
    finally:
        engine.close()
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    print(f"  DMN style slider ({name}, {note}) at {size}²: p50 {out['slider_move']['p50_ms']:.1f} ms "
          f"p95 {out['slider_move']['p95_ms']:.1f} ms (cpu {out['slider_move_cpu']['p50_ms']:.0f}) | "
          f"+1 region style: p50 {out['slider_move_one_region']['p50_ms']:.1f} ms "
          f"(extra {out['region_extra_p50_ms']:.1f} ms, {passes} generator passes per move) | "
          f"load {out['load_avg_1min']:.1f}", flush=True)
    return out


def run(args: argparse.Namespace) -> int:
    import torch

    from maskstudio.engine.device import DevicePolicy
    from maskstudio.engine.models import ModelSet
    from maskstudio.models.dense_mapping import DenseMappingConfig, DenseMappingNetwork
    from maskstudio.models.checkpoints import load_checkpoint
    from maskstudio.settings import Settings

    settings = Settings.from_env(device=args.device)
    policy = DevicePolicy(args.device or settings.device, precision=args.precision)  # validates early
    t_start = time.perf_counter()
    labels, ex_image, ex_labels, source = _sample_inputs(settings)
    report: dict[str, Any] = {
        "maskstudio_bench": 1,
        "when_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "device": str(policy.device), "precision": args.precision, "quick": bool(args.quick),
        "torch": torch.__version__, "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
        "cuda_device": torch.cuda.get_device_name(policy.device) if policy.is_cuda else None,
        "inputs": source, "load_avg_1min_start": os.getloadavg()[0], "dmn": [], "latent_chain": [],
    }
    print(f"maskstudio bench on {policy.describe()} — torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f}; inputs: {source}", flush=True)

    if args.photo_only:
        from maskstudio.bench.photo import photo_section

        report["photo_memory"] = _photo_section(args)
        report.update(photo_section(settings, device=str(policy.device), precision=args.precision,
                                    quick=args.quick))
        return _finish(args, report, policy, t_start)

    # 1. stroke-to-pixels ----------------------------------------------------------------------
    ms = ModelSet.from_settings(settings)
    installed = ms.first("dmn")
    if installed is not None:
        loaded = load_checkpoint(installed.weights_path, device="cpu")
        dmn, dmn_cfg, dmn_meta = loaded.module, loaded.config, dict(installed.meta)
        dmn_name, note = installed.id, f"installed ({installed.source})"
    else:
        dmn_cfg = DenseMappingConfig(ngf=16).to_dict()
        torch.manual_seed(0)
        dmn = DenseMappingNetwork(DenseMappingConfig(**dmn_cfg)).eval()
        dmn_name, note = "starter-size (ngf 16)", "no DMN installed: starter-size stand-in, random weights"
        dmn_meta = {}
    reps_small = {256: 8 if args.quick else 30, 512: 4 if args.quick else 12}
    print("stroke-to-pixels (brush stroke -> submit -> uint8 image in the callback):", flush=True)
    report["dmn"].append(_dmn_section(args, settings, dmn_name, dmn, dmn_cfg, note, labels, ex_image,
                                      ex_labels, [256, 512], reps_small, meta=dmn_meta))
    if not args.skip_official:
        torch.manual_seed(0)
        off = DenseMappingNetwork(DenseMappingConfig()).eval()
        sizes = [256] if args.quick and not policy.is_cuda else [256, 512]
        reps_off = {256: 3 if args.quick else 8, 512: 2 if args.quick else 5}
        if policy.is_cuda:
            reps_off = {256: 50, 512: 50}
        report["dmn"].append(_dmn_section(args, settings, "official-size (ngf 64)", off,
                                          DenseMappingConfig().to_dict(), "random weights", labels, ex_image,
                                          ex_labels, sizes, reps_off))
        del off

    # 1b. DMN style sliders --------------------------------------------------------------------
    print("DMN style sliders (semantic boundary move -> submit -> image; style code cached):", flush=True)
    report["dmn_style"] = _style_slider_section(args, settings, dmn, dmn_cfg, dmn_meta, labels, ex_image,
                                                ex_labels, 8 if args.quick else 30)

    # 2. latent chain --------------------------------------------------------------------------
    if not args.skip_latent:
        print("latent chain per stage (official-size networks, random weights; output 256²):", flush=True)
        for gen_size in (256, 1024):
            reps = (1 if gen_size == 1024 else 2) if args.quick else (2 if gen_size == 1024 else 4)
            if policy.is_cuda:
                reps = 20
            report["latent_chain"].append(_latent_section(args, settings, gen_size, dmn, dmn_cfg, labels,
                                                          ex_image, ex_labels, reps, dmn_meta))
    if not getattr(args, "skip_photo", False):
        report["photo_memory"] = _photo_section(args)
    # 3. photo editing ------------------------------------------------------------------------
    if not args.skip_photo:
        from maskstudio.bench.photo import photo_section

        report.update(photo_section(settings, device=str(policy.device), precision=args.precision,
                                    quick=args.quick))
    return _finish(args, report, policy, t_start)


def _finish(args: argparse.Namespace, report: dict, policy, t_start: float) -> int:
    report["total_s"] = time.perf_counter() - t_start
    report["peak_mib"] = _peak_mib(policy)
    print(f"done in {report['total_s']:.0f} s; process peak memory {report['peak_mib']:.0f} MiB", flush=True)
    if args.json is not None:
        write_json(args.json, report, announce=True)
    return 0
