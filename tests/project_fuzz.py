"""Generated hostile ``.msproj`` files (each a few KB; headers and zip directories that lie).

``hostile_projects(folder)`` -> ``{case name: path}``, made from a valid project by one mutation
each: the manifest, the zip directory or one member.
"""
from __future__ import annotations

import json
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming(w: int, h: int, bit_depth: int = 8, color_type: int = 0) -> bytes:
    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + _chunk(b"IEND", b""))


def base_project(path: Path) -> Path:
    from maskstudio.session.project import Project, save_project

    lab = np.zeros((32, 32), np.uint8)
    lab[8:24, 8:24] = 1
    rgb = np.full((32, 32, 3), 120, np.uint8)
    return save_project(path, Project(labels=lab, original_labels=lab, exemplar_image=rgb, exemplar_mask=lab,
                                      latents={"w_plus": np.zeros((1, 18, 512), np.float32)},
                                      history=[("Brush (Skin)", lab)]))


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


def _write(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data, compress_type=zipfile.ZIP_DEFLATED if name.endswith(".json") else zipfile.ZIP_STORED)
    return path


def _with_manifest(path: Path, base: dict[str, bytes], change) -> Path:
    m = json.loads(base["manifest.json"])
    change(m)
    out = dict(base)
    out["manifest.json"] = json.dumps(m).encode()
    return _write(path, out)


def _patch_local_header(path: Path, member: str, *, flag: int | None = None, method: int | None = None) -> None:
    """Set the general-purpose flag / compression method of ``member`` in both zip headers."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(member)
    lh = info.header_offset
    cd = data.find(b"PK\x01\x02")
    while cd != -1:
        n = struct.unpack("<H", data[cd + 28:cd + 30])[0]
        if data[cd + 46:cd + 46 + n].decode() == member:
            break
        cd = data.find(b"PK\x01\x02", cd + 4)
    for off in (lh + 6, cd + 8):
        if flag is not None:
            struct.pack_into("<H", data, off, flag)
        if method is not None:
            struct.pack_into("<H", data, off + 2, method)
    path.write_bytes(bytes(data))


def hostile_projects(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    good = base_project(folder / "good.msproj")
    base = _members(good)
    out: dict[str, Path] = {}

    def manifest_case(name: str, change) -> None:
        out[name] = _with_manifest(folder / f"{name}.msproj", base, change)

    manifest_case("render_settings_str", lambda m: m.__setitem__("render_settings", "abc"))
    manifest_case("v1_sliders_str", lambda m: (m.pop("render_settings"), m.__setitem__("format_version", 1),
                                               m.__setitem__("sliders", "abc")))
    manifest_case("models_list", lambda m: m.__setitem__("models", [[1, 2, 3]]))
    manifest_case("original_size_str", lambda m: m.__setitem__("original_size_hw", "ab"))
    manifest_case("original_size_negative", lambda m: m.__setitem__("original_size_hw", [-5, 10]))
    manifest_case("original_size_huge", lambda m: m.__setitem__("original_size_hw", [10**18, 10**18]))
    manifest_case("latents_str", lambda m: m.__setitem__("latents", "abc"))
    manifest_case("history_20000", lambda m: m.__setitem__("history", [{"name": "x", "mask": "mask.png"}] * 20000))
    manifest_case("history_not_list", lambda m: m.__setitem__("history", {"a": 1}))
    manifest_case("mask_missing_member", lambda m: m.__setitem__("mask", "nope.png"))
    manifest_case("mask_not_str", lambda m: m.__setitem__("mask", 5))
    manifest_case("version_str", lambda m: m.__setitem__("format_version", "2"))
    manifest_case("exemplar_name_list", lambda m: m.__setitem__("exemplar_name", ["x"]))
    # deeply nested manifest JSON
    deep = dict(base)
    deep["manifest.json"] = (b'{"format": "maskstudio-project", "format_version": 2, "models": '
                             + b"[" * 100000 + b"]" * 100000 + b"}")
    out["manifest_deep"] = _write(folder / "manifest_deep.msproj", deep)
    # members: a 30000² PNG, an 8000² history step, a latent header claiming 10^12 floats
    big = dict(base)
    big["mask.png"] = png_claiming(30000, 30000)
    out["mask_30000sq"] = _write(folder / "mask_30000sq.msproj", big)
    hist = dict(base)
    hist["history/0000.png"] = png_claiming(8000, 8000)
    out["history_8000sq"] = _write(folder / "history_8000sq.msproj", hist)
    lat = dict(base)
    header = repr({"descr": "<f4", "fortran_order": False, "shape": (1, 10**12)}).encode()
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    lat["latents/w_plus.npy"] = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + b"\0" * 64
    out["latent_1e12"] = _write(folder / "latent_1e12.msproj", lat)
    # zip level: corrupt deflate stream, encrypted flag, AES (method 99), a bomb
    corrupt = folder / "corrupt_deflate.msproj"
    _write(corrupt, base)
    data = bytearray(corrupt.read_bytes())
    with zipfile.ZipFile(corrupt) as zf:
        info = zf.getinfo("manifest.json")
    n_name, n_extra = struct.unpack("<HH", data[info.header_offset + 26:info.header_offset + 30])
    start = info.header_offset + 30 + n_name + n_extra
    for i in range(start + 2, start + min(info.compress_size, 40)):
        data[i] ^= 0x5A
    corrupt.write_bytes(bytes(data))
    out["corrupt_deflate"] = corrupt
    enc = _write(folder / "encrypted.msproj", base)
    _patch_local_header(enc, "mask.png", flag=0x1)
    out["encrypted"] = enc
    aes = _write(folder / "aes.msproj", base)
    _patch_local_header(aes, "mask.png", method=99)
    out["aes"] = aes
    bomb = folder / "bomb.msproj"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data_ in base.items():
            if name != "history/0000.png":
                zf.writestr(name, data_)
        with zf.open("history/0000.png", "w", force_zip64=True) as fh:  # 272 MiB of zeros, ~270 kB stored
            block = bytes(16 << 20)
            for _ in range(17):
                fh.write(block)
    out["bomb"] = bomb
    (folder / "not_zip.msproj").write_bytes(b"PK\x03\x04 garbage" * 10)
    out["not_zip"] = folder / "not_zip.msproj"
    return out
