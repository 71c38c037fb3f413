"""Fuzz suite for hostile and huge inputs (issue 15): every importer refuses cleanly, in bounded
time and memory, with a :class:`MaskStudioError` naming the file (or one CLI error line).

Small and fast: inputs are generated here (a few KB each, headers that lie about sizes), the
only server is a local one on 127.0.0.1, loops are bounded, and memory is measured as the peak
RSS of a child process where it matters.
"""
from __future__ import annotations

import io
import json
import os
import random
import struct
import subprocess
import sys
import textwrap
import threading
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hostile_http import hostile_server
from maskstudio.bench.photo_memory import PEAK_RSS_CODE
from maskstudio.errors import (
    CheckpointError,
    DownloadCancelled,
    DownloadError,
    LatentFileError,
    MaskStudioError,
)

ROOT = Path(__file__).resolve().parent.parent
MB = 1 << 20


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming(w: int, h: int, bit_depth: int = 8, color_type: int = 2, extra: bytes = b"") -> bytes:
    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + extra + _chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + _chunk(b"IEND", b""))


def run_child(code: str, timeout_s: float = 120.0) -> tuple[subprocess.CompletedProcess, float]:
    """Run ``code`` in a fresh Python; returns (result, peak RSS of the child in MB)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    wrapper = code + "\n" + PEAK_RSS_CODE + "sys.stderr.write('PEAK_RSS_KB=%d\\n' % peak_rss_kb())\n"
    r = subprocess.run([sys.executable, "-c", wrapper], capture_output=True, text=True, timeout=timeout_s,
                       env=env, cwd=ROOT)
    peak = [int(line.split("=")[1]) for line in r.stderr.splitlines() if line.startswith("PEAK_RSS_KB=")]
    return r, (peak[-1] / 1024 if peak else float("nan"))


def assert_clean(err: BaseException, name: str) -> None:
    msg = str(err)
    assert isinstance(err, MaskStudioError), f"{type(err).__name__}: {msg}"
    assert name in msg and "\n" not in msg and "Traceback" not in msg, msg


# =========================================================================== images
def _image_cases(tmp: Path) -> dict[str, Path]:
    """Generated hostile image files (each a few KB at most)."""
    rng = random.Random(15)
    good = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(good, "PNG")
    good_png = good.getvalue()
    jpg = io.BytesIO()
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(jpg, "JPEG")
    out = {
        "png_60000sq.png": png_claiming(60000, 60000),
        "png_20000sq.png": png_claiming(20000, 20000),
        "png_1bit_30000sq.png": png_claiming(30000, 30000, bit_depth=1, color_type=0),
        "png_zero_width.png": png_claiming(0, 100),
        "png_ztxt_64mb.png": png_claiming(4, 4, extra=_chunk(b"zTXt", b"k\0\0" + zlib.compress(b"a" * (64 * MB)))),
        "gif_60000sq.gif": (b"GIF89a" + struct.pack("<HH", 60000, 60000) + b"\0\0\0,\0\0\0\0"
                            + struct.pack("<HH", 60000, 60000) + b"\0\x02\x02D\x01\0;"),
        "truncated.png": good_png[: len(good_png) // 3],
        "truncated.jpg": jpg.getvalue()[:300],
        "text.png": b"hello, not an image\n" * 10,
        "html.jpg": b"<!DOCTYPE html><html><body>404</body></html>",
        "empty.png": b"",
    }
    for i in range(12):  # random byte flips in a valid PNG (bounded: 12 files)
        b = bytearray(good_png)
        for _ in range(8):
            b[rng.randrange(8, len(b))] = rng.randrange(256)
        out[f"flipped_{i}.png"] = bytes(b)
    paths = {}
    for name, data in out.items():
        p = tmp / name
        p.write_bytes(data)
        paths[name] = p
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp / "fifo.png")
        paths["fifo.png"] = tmp / "fifo.png"
    paths["dir.png"] = tmp / "dir.png"
    paths["dir.png"].mkdir()
    return paths


def test_every_image_importer_refuses_hostile_files_quickly(tmp_path):
    from maskstudio.io.images import read_rgb, read_rgb_full
    from maskstudio.io.masks import read_color_png, read_label_png, read_mask

    readers = [read_rgb, read_rgb_full, read_mask, read_label_png, read_color_png]
    for name, path in _image_cases(tmp_path).items():
        for reader in readers:
            t = time.perf_counter()
            try:
                reader(path)
            except MaskStudioError as e:
                assert_clean(e, name)
            else:
                assert name.startswith("flipped_"), f"{reader.__name__}({name}) accepted a hostile file"
            assert time.perf_counter() - t < 5.0, f"{reader.__name__}({name}) took too long"


def test_cli_reports_hostile_exemplars_and_masks_in_one_line(tmp_path, capsys, monkeypatch):
    """Through the CLI entry point (in-process: one torch import), then once as a real process."""
    from maskstudio.cli.main import main

    cases = _image_cases(tmp_path)
    good = tmp_path / "good_mask.png"
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(good)
    monkeypatch.setenv("MASKSTUDIO_MODELS_DIR", str(tmp_path / "models"))
    out = str(tmp_path / "o.png")
    for name in ("png_60000sq.png", "png_ztxt_64mb.png", "gif_60000sq.gif", "fifo.png", "truncated.jpg",
                 "html.jpg", "png_1bit_30000sq.png", "dir.png"):
        if name not in cases:
            continue
        for argv in (["render", "--mask", str(good), "--exemplar", str(cases[name]), "-o", out],
                     ["render", "--mask", str(cases[name]), "--exemplar", str(cases["truncated.png"]), "-o", out],
                     ["parse", str(cases[name]), "-o", str(tmp_path / "parsed")],
                     ["mask", "info", str(cases[name])]):
            t = time.perf_counter()
            code = main(argv)
            err = capsys.readouterr().err
            assert code != 0, argv
            lines = [line for line in err.splitlines() if line.strip()]
            assert lines and lines[-1].startswith("maskstudio: error: "), (argv, err)
            assert time.perf_counter() - t < 30, argv  # the first call imports torch
    env = dict(os.environ, PYTHONPATH=str(ROOT), MASKSTUDIO_MODELS_DIR=str(tmp_path / "models"))
    r = subprocess.run([sys.executable, "-m", "maskstudio", "render", "--mask", str(good), "--exemplar",
                        str(cases["png_60000sq.png"]), "-o", out], capture_output=True, text=True, timeout=120,
                       env=env, cwd=ROOT)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("maskstudio: error: ") and "largest accepted" in r.stderr


_BIG_PHOTO = textwrap.dedent("""
    import numpy as np
    from PIL import Image
    h, w = {h}, {w}
    # a smooth, photo-like JPEG made in bands (the generator itself stays small)
    im = Image.new("RGB", (w, h))
    band = 512
    for y in range(0, h, band):
        yy = np.arange(y, min(h, y + band))[:, None]
        xx = np.arange(w)[None, :]
        a = np.stack(np.broadcast_arrays((xx + yy) % 256, (xx * 3) % 256, (yy * 5) % 256), -1).astype(np.uint8)
        im.paste(Image.fromarray(a), (0, y))
    ex = im.getexif(); ex[0x0112] = 6
    im.save({path!r}, quality=85, exif=ex.tobytes())
""")


@pytest.mark.slow
def test_50mp_photo_opens_within_the_memory_budget(tmp_path):
    """A 50 MP phone photo (8160 x 6120, EXIF-rotated) read as exemplar/photo and at full
    resolution: each read in a fresh process stays under 1.5 GB peak RSS."""
    photo = tmp_path / "phone.jpg"
    r, _ = run_child(_BIG_PHOTO.format(h=6120, w=8160, path=str(photo)), timeout_s=300)
    assert r.returncode == 0, r.stderr
    for call, shape in (("read_rgb(p)", (2048, 1536, 3)), ("read_rgb_full(p)", (8160, 6120, 3))):
        r, peak = run_child(f"from maskstudio.io.images import read_rgb, read_rgb_full\n"
                            f"p = {str(photo)!r}\na = {call}\nassert a.shape == {shape}, a.shape\n")
        assert r.returncode == 0, r.stderr
        print(f"{call}: peak RSS {peak:.0f} MB")
        assert peak < 1536, f"{call}: peak RSS {peak:.0f} MB"


@pytest.mark.slow
def test_8192sq_colour_mask_snapping_within_the_memory_budget(tmp_path):
    big = tmp_path / "big_color.png"
    code = textwrap.dedent(f"""
        import numpy as np
        from maskstudio.io.masks import labels_to_colors
        from maskstudio.io.images import write_png
        lab = (np.add.outer(np.arange(8192) // 512, np.arange(8192) // 512) % 19).astype(np.uint8)
        col = labels_to_colors(lab)
        sub = col[::97, ::89]
        col[::97, ::89] = np.where(sub > 3, sub - 3, sub + 3)   # off-palette but within the snap distance
        write_png({str(big)!r}, col, fast=True)
    """)
    r, _ = run_child(code, timeout_s=300)
    assert r.returncode == 0, r.stderr
    r, peak = run_child(f"from maskstudio.io.masks import read_mask\nm = read_mask({str(big)!r})\n"
                        f"assert m.original_size_hw == (8192, 8192) and m.source_format == 'color'\n")
    assert r.returncode == 0, r.stderr
    print(f"8192² colour mask: peak RSS {peak:.0f} MB")
    assert peak < 1536, f"peak RSS {peak:.0f} MB"


# =========================================================================== checkpoints
def _tiny_state_dict():
    import torch

    return {"w": torch.randn(4, 4), "b": torch.randn(4)}


def test_hostile_checkpoints_are_refused(tmp_path):
    import torch

    from maskstudio.models import checkpoints as ck

    good = tmp_path / "good.pt"
    torch.save({"g_ema": _tiny_state_dict()}, good)
    data = good.read_bytes()
    cases: dict[str, Path] = {}

    def put(name: str, payload: bytes) -> None:
        cases[name] = tmp_path / name
        cases[name].write_bytes(payload)

    # a storage member with a flipped byte: the zip CRC no longer matches
    zf = zipfile.ZipFile(io.BytesIO(data))
    member = next(i for i in zf.infolist() if "/data/" in i.filename)
    n_name, n_extra = struct.unpack("<HH", data[member.header_offset + 26: member.header_offset + 30])
    off = member.header_offset + 30 + n_name + n_extra  # first byte of the stored tensor data
    b = bytearray(data)
    b[off] ^= 0xFF
    put("bad_crc.pt", bytes(b))
    put("html.pt", b"<!doctype html><html><head><title>Google Drive</title></head></html>")
    put("empty.pt", b"")
    put("garbage.pt", bytes(random.Random(1).randrange(256) for _ in range(4096)))
    put("truncated.pt", data[: len(data) // 2])
    for name, expected in [("bad_crc.pt", "CRC"), ("html.pt", "HTML page"), ("empty.pt", "empty"),
                           ("garbage.pt", ""), ("truncated.pt", "")]:
        with pytest.raises(CheckpointError) as ei:
            ck.load_official(cases[name])
        assert_clean(ei.value, name)
        assert expected in str(ei.value)
    for name in ("fifo.pt",):
        if hasattr(os, "mkfifo"):
            os.mkfifo(tmp_path / name)
            with pytest.raises(CheckpointError, match="not a regular file"):
                ck.load_official(tmp_path / name)
    if Path("/dev/zero").exists():
        with pytest.raises(CheckpointError, match="not a regular file"):
            ck.load_official("/dev/zero")
        with pytest.raises(LatentFileError, match="not a regular file"):
            from maskstudio.models.latent_ops import _read_array

            _read_array(Path("/dev/zero"))


@pytest.mark.parametrize("dtype", ["int64", "complex64", "bool"])
def test_non_floating_weights_are_refused(tmp_path, dtype):
    import torch

    from maskstudio.models import checkpoints as ck
    from maskstudio.models import registry

    cfg = registry.make_config("maskgan_dmn", {"ngf": 4, "n_downsample": 1, "n_blocks": 1})
    module = registry.build("maskgan_dmn", cfg)
    sd = {k: v.to(getattr(torch, dtype)) if v.is_floating_point() else v for k, v in module.state_dict().items()}
    p = tmp_path / f"{dtype}.pth"
    torch.save(sd, p)
    with pytest.raises(CheckpointError, match="wrong type") as ei:
        ck.load_official_model(p, arch="maskgan_dmn", config=registry.config_to_dict(cfg))
    assert_clean(ei.value, p.name)


def test_zero_channel_config_is_a_clear_error(tmp_path):
    from maskstudio.models import checkpoints as ck
    from maskstudio.models import registry

    cfg = registry.make_config("maskgan_dmn", {"ngf": 4, "n_downsample": 1, "n_blocks": 1})
    st, js = ck.save_checkpoint(tmp_path / "dmn", registry.build("maskgan_dmn", cfg), "maskgan_dmn", cfg)
    doc = json.loads(js.read_text())
    doc["config"]["ngf"] = 0
    js.write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match="ngf must be positive") as ei:
        ck.load_checkpoint(st, verify=False)
    assert_clean(ei.value, "dmn")


def test_forged_npy_headers_and_allocating_pickles_are_refused(tmp_path):
    from maskstudio.models import checkpoints as ck
    from maskstudio.models.latent_ops import load_direction

    def npy_claiming(shape) -> bytes:
        header = repr({"descr": "<f4", "fortran_order": False, "shape": shape}).encode()
        header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
        return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + b"\0" * 64

    p = tmp_path / "boundary_huge.npy"
    p.write_bytes(npy_claiming((1, 10**12)))
    t = time.perf_counter()
    with pytest.raises(LatentFileError, match="header claims") as ei:
        load_direction(p)
    assert_clean(ei.value, p.name)
    assert time.perf_counter() - t < 2

    import pickle

    class Forged:  # pickles as numpy.ndarray((10**7, 10**7)): 800 TB if it were built
        def __reduce__(self):
            return (np.ndarray, ((10**7, 10**7), np.dtype("f8")))

    body = pickle.dumps({"a.jpg": Forged()}, protocol=2)
    header = repr({"descr": "|O", "fortran_order": False, "shape": ()}).encode()
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    q = tmp_path / "exstyle_code.npy"
    q.write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + body)
    with pytest.raises(CheckpointError, match="allocate") as ei:
        ck.load_exstyle_codes(q)
    assert_clean(ei.value, q.name)


# =========================================================================== downloads
def _downloader(**kw):
    from maskstudio.io.download import Downloader

    kw.setdefault("timeout_s", 2.0)
    kw.setdefault("retries", 1)
    kw.setdefault("retry_wait_s", 0.0)
    return Downloader(**kw)


PAYLOAD = bytes(range(256)) * 64  # 16 KB


def test_download_redirects_only_to_http(tmp_path):
    with hostile_server(PAYLOAD) as (base, state):
        dl = _downloader()
        assert dl.download(f"{base}/redirect-ok", tmp_path / "ok.bin") == len(PAYLOAD)
        for target in ("ftp", "file"):
            with pytest.raises(DownloadError, match="only http:// and https://") as ei:
                dl.download(f"{base}/redirect-{target}", tmp_path / f"{target}.bin")
            assert_clean(ei.value, "redirect")
        with pytest.raises(DownloadError, match="only http"):
            dl.download("ftp://127.0.0.1/x", tmp_path / "x.bin")


def test_trickling_download_stalls_retries_then_fails(tmp_path):
    with hostile_server(PAYLOAD, trickle_s=0.2) as (base, state):
        dl = _downloader(stall_s=0.6, stall_min_bytes=64, retries=1)
        t = time.perf_counter()
        with pytest.raises(DownloadError, match="stalled") as ei:
            dl.download(f"{base}/trickle", tmp_path / "t.bin")
        assert_clean(ei.value, "/trickle")
        assert time.perf_counter() - t < 10
        assert state["requests"].count("/trickle") == 2  # one retry


def test_cancel_during_a_trickle_is_honoured_within_a_second(tmp_path):
    with hostile_server(PAYLOAD, trickle_s=0.5) as (base, state):
        dl = _downloader(stall_s=60)
        flag = threading.Event()
        threading.Timer(0.8, flag.set).start()
        t_cancel: list[float] = []

        def cancel() -> bool:
            if flag.is_set() and not t_cancel:
                t_cancel.append(time.perf_counter())
            return flag.is_set()

        with pytest.raises(DownloadCancelled):
            dl.download(f"{base}/trickle", tmp_path / "c.bin", cancel=cancel)
        assert time.perf_counter() - t_cancel[0] < 1.0
        # and while the server says nothing at all
        flag.clear()
        t_cancel.clear()
        threading.Timer(0.5, flag.set).start()
        t0 = time.perf_counter()
        with pytest.raises(DownloadCancelled):
            dl.download(f"{base}/silent", tmp_path / "s.bin", cancel=cancel)
        assert time.perf_counter() - t0 < 1.6


def test_endless_body_without_length_is_capped(tmp_path):
    with hostile_server(PAYLOAD) as (base, state):
        dl = _downloader(max_unknown_bytes=2 * MB)
        with pytest.raises(DownloadError, match="endless") as ei:
            dl.download(f"{base}/endless", tmp_path / "e.bin")
        assert_clean(ei.value, "/endless")
        assert not (tmp_path / "e.bin").exists()
        # with the size known from the registry the download stops there
        assert dl.download(f"{base}/endless", tmp_path / "k.bin", expected_size=300_000) == 300_000


def test_html_page_instead_of_the_file(tmp_path):
    with hostile_server(PAYLOAD) as (base, state):
        with pytest.raises(DownloadError, match="HTML page") as ei:
            _downloader().download(f"{base}/html", tmp_path / "h.bin")
        assert_clean(ei.value, "/html")


def test_short_body_is_retried_then_reported(tmp_path):
    with hostile_server(PAYLOAD) as (base, state):
        with pytest.raises(DownloadError, match="truncated|closed early") as ei:
            _downloader().download(f"{base}/lie-short", tmp_path / "s.bin")
        assert_clean(ei.value, "/lie-short")


# =========================================================================== projects
def test_hostile_projects_are_refused_naming_the_file_and_field(tmp_path):
    from project_fuzz import hostile_projects

    from maskstudio.errors import ProjectFileError
    from maskstudio.session.project import load_project

    expect = {  # case -> words the message must contain (besides the file name)
        "render_settings_str": "render_settings", "v1_sliders_str": "sliders", "models_list": "models",
        "original_size_str": "original_size_hw", "original_size_negative": "original_size_hw",
        "original_size_huge": "original_size_hw", "latents_str": "latents", "history_20000": "history",
        "history_not_list": "history", "mask_missing_member": "nope.png", "mask_not_str": "mask",
        "version_str": "format_version", "exemplar_name_list": "exemplar_name", "manifest_deep": "nested",
        "mask_30000sq": "30000x30000", "history_8000sq": "history", "latent_1e12": "header claims",
        "corrupt_deflate": "manifest.json", "encrypted": "encrypted", "aes": "compression", "bomb": "inflates",
        "not_zip": "not a zip",
    }
    cases = hostile_projects(tmp_path / "p")
    assert set(cases) == set(expect)
    for name, path in cases.items():
        t = time.perf_counter()
        with pytest.raises(ProjectFileError) as ei:
            load_project(path)
        assert_clean(ei.value, path.name)
        assert expect[name] in str(ei.value), (name, str(ei.value))
        assert time.perf_counter() - t < 3.0, name
    load_project(tmp_path / "p" / "good.msproj")  # the unmutated original still opens


def test_project_bomb_stays_within_memory(tmp_path):
    from project_fuzz import hostile_projects

    cases = hostile_projects(tmp_path / "p")
    code = (f"from maskstudio.session.project import load_project\nfrom maskstudio.errors import ProjectFileError\n"
            f"for p in {[str(cases[k]) for k in ('bomb', 'history_8000sq', 'mask_30000sq', 'latent_1e12')]!r}:\n"
            f"    try:\n        load_project(p)\n    except ProjectFileError as e:\n        print(e)\n"
            f"    else:\n        raise SystemExit('accepted ' + p)\n")
    r, peak = run_child(code)
    assert r.returncode == 0, r.stderr
    print(f"hostile projects: peak RSS {peak:.0f} MB")
    assert peak < 400, peak


def test_bench_photo_memory_line():
    from maskstudio.bench import photo_memory

    res = photo_memory.measure(megapixels=1.0, repeats=1)
    line = photo_memory.line(res)
    assert line.startswith("photo memory: opening a 1220x813 JPEG") and "MiB at full resolution" in line
    assert res["shape"]["full resolution (read_rgb_full)"] == "(1220, 813, 3)"  # EXIF-rotated portrait


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_model_scan_skips_fifos_and_deep_json(tmp_path):
    from maskstudio.engine.models import ModelSet

    root = tmp_path / "models"
    (root / "a").mkdir(parents=True)
    os.mkfifo(root / "a" / "a.json")
    (root / "deep.json").write_text("[" * 100000 + "]" * 100000)
    ms = ModelSet([(root, "user")])
    t = time.perf_counter()
    ms.scan()
    assert time.perf_counter() - t < 5
    reasons = {p.name: why for p, why in ms.skipped}
    assert "not a regular file" in reasons["a.json"] and "deep.json" in reasons
