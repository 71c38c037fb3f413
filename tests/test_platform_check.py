"""The pre-Qt platform check: missing xcb libraries / no display become a message, not a Qt abort."""
from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from maskstudio.ui import platform_check as pc

ROOT = Path(__file__).resolve().parents[1]


def write_elf(path: Path, needed: list[str]) -> None:
    """A minimal 64-bit little-endian ELF shared object whose dynamic section lists ``needed``."""
    strtab = b"\0"
    offsets = []
    for name in needed:
        offsets.append(len(strtab))
        strtab += name.encode() + b"\0"
    str_off = 64
    dyn_off = (str_off + len(strtab) + 7) // 8 * 8
    dyn = b"".join(struct.pack("<qQ", 1, o) for o in offsets) + struct.pack("<qQ", 0, 0)
    sh_off = dyn_off + len(dyn)
    ident = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    header = ident + struct.pack("<HHIQQQIHHHHHH", 3, 62, 1, 0, 0, sh_off, 0, 64, 56, 0, 64, 3, 0)
    shdr = struct.pack("<IIQQQQIIQQ", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    shdr += struct.pack("<IIQQQQIIQQ", 0, 3, 0, 0, str_off, len(strtab), 0, 0, 1, 0)
    shdr += struct.pack("<IIQQQQIIQQ", 0, 6, 0, 0, dyn_off, len(dyn), 1, 0, 8, 16)
    data = bytearray(header)
    data += strtab
    data += bytes(dyn_off - len(data))
    data += dyn + shdr
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(data))


def fake_qt(tmp_path: Path, plugin_needs: list[str]) -> Path:
    qt = tmp_path / "Qt"
    write_elf(qt / "plugins" / "platforms" / "libqxcb.so", ["libQt6Fake.so.6", *plugin_needs])
    write_elf(qt / "lib" / "libQt6Fake.so.6", ["libc.so.6"])       # shipped: followed, not dlopened
    write_elf(qt / "lib" / "libQt6Widgets.so.6", ["libQt6Fake.so.6", "libm.so.6"])
    return qt


def test_elf_needed_reads_the_dynamic_section(tmp_path):
    f = tmp_path / "x.so"
    write_elf(f, ["libc.so.6", "libxcb-icccm.so.4"])
    assert pc.elf_needed(f) == ["libc.so.6", "libxcb-icccm.so.4"]
    (tmp_path / "junk.so").write_bytes(b"not an elf at all" * 8)
    assert pc.elf_needed(tmp_path / "junk.so") == []
    assert pc.elf_needed(tmp_path / "absent.so") == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the xcb plugin exists on Linux only")
def test_elf_needed_on_the_real_xcb_plugin():
    qt = pc.pyside_qt_dir()
    plugin = None if qt is None else qt / "plugins" / "platforms" / "libqxcb.so"
    if plugin is None or not plugin.is_file():
        pytest.skip("this PySide6 has no xcb plugin")
    needed = pc.elf_needed(plugin)
    assert "libxcb.so.1" in needed and "libQt6XcbQpa.so.6" in needed


def test_missing_library_is_named_with_its_package(tmp_path):
    qt = fake_qt(tmp_path, ["libxcb-icccm-maskstudio-test.so.4", "libc.so.6"])
    assert pc.missing_system_libraries(qt) == ["libxcb-icccm-maskstudio-test.so.4"]
    qt2 = fake_qt(tmp_path / "b", ["libc.so.6"])
    assert pc.missing_system_libraries(qt2) == []
    pc.DEBIAN_PACKAGES["libxcb-icccm-maskstudio-test.so.4"] = "libxcb-icccm4"
    try:
        msg = pc.gui_start_problem({"DISPLAY": ":0"}, qt_dir=qt, platform="linux")
    finally:
        del pc.DEBIAN_PACKAGES["libxcb-icccm-maskstudio-test.so.4"]
    assert "libxcb-icccm-maskstudio-test.so.4" in msg
    assert "sudo apt-get install -y libxcb-icccm4\n" in msg
    assert "dnf install" in msg and "pacman" in msg


def test_no_problem_when_everything_loads_or_no_display_is_needed(tmp_path):
    ok = fake_qt(tmp_path, ["libc.so.6"])
    assert pc.gui_start_problem({"DISPLAY": ":0"}, qt_dir=ok, platform="linux") is None
    broken = fake_qt(tmp_path / "b", ["libnope-maskstudio.so.1"])
    for env in ({"QT_QPA_PLATFORM": "offscreen"}, {"QT_QPA_PLATFORM": "wayland", "WAYLAND_DISPLAY": "w"},
                {"WAYLAND_DISPLAY": "w", "XDG_SESSION_TYPE": "wayland"}):
        assert pc.gui_start_problem(env, qt_dir=broken, platform="linux") is None, env
    assert pc.gui_start_problem({"DISPLAY": ":0"}, qt_dir=broken, platform="darwin") is None
    assert "libnope-maskstudio.so.1" in pc.gui_start_problem({"DISPLAY": ":0"}, qt_dir=broken, platform="linux")


def test_no_display_message():
    msg = pc.gui_start_problem({}, platform="linux")
    assert "DISPLAY" in msg and "offscreen" in msg


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux display check")
def test_cli_without_display_prints_what_to_do_instead_of_a_qt_abort():
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env["PYTHONPATH"] = str(ROOT)
    r = subprocess.run([sys.executable, "-m", "maskstudio", "gui"], capture_output=True, text=True, env=env,
                       timeout=120)
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("maskstudio: error: no display")
    assert "Traceback" not in r.stderr and "qt.qpa" not in r.stderr
