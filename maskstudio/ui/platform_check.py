"""Before Qt starts: will its platform plugin load? If not, say what to install.

Qt aborts the process (``Could not load the Qt platform plugin "xcb"``, core dump) when the X11
platform plugin lacks a system library, and names the wrong one. This module runs *before*
anything from ``PySide6.QtGui`` is imported (QtGui itself needs libGL / libEGL / fontconfig):
it reads the ``DT_NEEDED`` entries of the PySide6 Qt libraries the ``xcb`` plugin pulls in,
tries to ``dlopen`` every system library among them, and turns the missing ones into an
``apt-get install`` line (plus what to do elsewhere). No Qt import, no subprocess, no network;
a few milliseconds.
"""
from __future__ import annotations

import ctypes
import importlib.util
import os
import struct
import sys
from pathlib import Path

#: soname -> Debian / Ubuntu package. The set the xcb plugin and QtGui/QtWidgets need (from
#: ``ldd`` on PySide6 6.12's ``libqxcb.so``, ``libQt6XcbQpa``, ``libQt6Gui``, ``libQt6Widgets``).
DEBIAN_PACKAGES: dict[str, str] = {
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libGLX.so.0": "libglx0",
    "libOpenGL.so.0": "libopengl0",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
    "libdbus-1.so.3": "libdbus-1-3",
    "libX11.so.6": "libx11-6",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxcb.so.1": "libxcb1",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libz.so.1": "zlib1g",
    "libzstd.so.1": "libzstd1",
    "libpng16.so.16": "libpng16-16",
}

#: The one line the README gives (every package above that a bare Debian/Ubuntu image lacks,
#: plus a font: a container without any font shows no text).
APT_LINE = ("sudo apt-get install -y libegl1 libgl1 libfontconfig1 libfreetype6 libglib2.0-0 libdbus-1-3 "
            "libx11-6 libx11-xcb1 libxkbcommon0 libxkbcommon-x11-0 libxcb1 libxcb-cursor0 libxcb-icccm4 "
            "libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render0 libxcb-render-util0 libxcb-shape0 "
            "libxcb-shm0 libxcb-sync1 libxcb-util1 libxcb-xfixes0 libxcb-xkb1 fonts-dejavu-core")

#: Platforms that need no display server (never checked).
_HEADLESS = {"offscreen", "minimal", "minimalegl", "vnc", "linuxfb", "eglfs", "vkkhrdisplay"}

_DT_NEEDED = 1


def elf_needed(path: str | os.PathLike[str]) -> list[str]:
    """The ``DT_NEEDED`` sonames of a 64-bit little-endian ELF shared object ([] if unreadable).

    Reads only the ELF header, the section headers, the dynamic section and its string table.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(64)
            if len(head) < 64 or head[:4] != b"\x7fELF" or head[4] != 2 or head[5] != 1:
                return []
            e_shoff, = struct.unpack_from("<Q", head, 0x28)
            e_shentsize, e_shnum = struct.unpack_from("<HH", head, 0x3A)
            f.seek(e_shoff)
            table = f.read(e_shentsize * e_shnum)
            if e_shentsize < 64 or len(table) < e_shentsize * e_shnum:
                return []
            sections = [struct.unpack_from("<IIQQQQI", table, i * e_shentsize)[1:] for i in range(e_shnum)]
            out: list[str] = []
            for sh_type, _flags, _addr, sh_offset, sh_size, sh_link in sections:
                if sh_type != 6 or sh_link >= len(sections):  # SHT_DYNAMIC; sh_link: its string table
                    continue
                f.seek(sh_offset)
                dyn = f.read(sh_size)
                _t, _fl, _a, str_off, str_size, _l = sections[sh_link]
                f.seek(str_off)
                strtab = f.read(str_size)
                for off in range(0, len(dyn) - 15, 16):
                    tag, val = struct.unpack_from("<qQ", dyn, off)
                    if tag == 0:
                        break
                    if tag == _DT_NEEDED and val < len(strtab):
                        end = strtab.find(b"\0", val)
                        out.append(strtab[val:end if end >= 0 else None].decode("ascii", "replace"))
            return out
    except OSError:
        return []


def pyside_qt_dir() -> Path | None:
    """``.../site-packages/PySide6/Qt`` without importing any Qt module."""
    spec = importlib.util.find_spec("PySide6")
    if spec is None or not spec.submodule_search_locations:
        return None
    qt = Path(next(iter(spec.submodule_search_locations))) / "Qt"
    return qt if qt.is_dir() else None


def missing_system_libraries(qt_dir: Path | None = None) -> list[str]:
    """System libraries the xcb platform plugin (and QtGui / QtWidgets) need that cannot be loaded."""
    qt_dir = qt_dir or pyside_qt_dir()
    if qt_dir is None:
        return []
    lib = qt_dir / "lib"
    roots = [qt_dir / "plugins" / "platforms" / "libqxcb.so", lib / "libQt6Widgets.so.6"]
    seen: set[str] = set()
    missing: list[str] = []
    todo = list(roots)
    while todo:
        f = todo.pop()
        for so in elf_needed(f):
            if so in seen:
                continue
            seen.add(so)
            if (lib / so).is_file():          # a library PySide6 ships: follow its own needs
                todo.append(lib / so)
                continue
            try:
                ctypes.CDLL(so)
            except OSError:
                missing.append(so)
    return sorted(missing)


def _platform_choice(env) -> list[str]:
    value = (env.get("QT_QPA_PLATFORM") or "").strip()
    return [p.split(":", 1)[0].strip().lower() for p in value.split(";") if p.strip()]


def gui_start_problem(env=None, qt_dir: Path | None = None, platform: str | None = None) -> str | None:
    """Why the Qt GUI would abort at start here, with what to do — or None when it should start."""
    env = os.environ if env is None else env
    platform = platform or sys.platform
    if not platform.startswith("linux"):
        return None
    choice = _platform_choice(env)
    if choice and choice[0] in _HEADLESS:
        return None
    wants_wayland = (choice[:1] == ["wayland"]) or (not choice and env.get("WAYLAND_DISPLAY")
                                                     and env.get("XDG_SESSION_TYPE") == "wayland")
    if wants_wayland:
        return None   # the wayland plugin; xcb is only its fallback
    if not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY"):
        return ("no display to open a window on (neither DISPLAY nor WAYLAND_DISPLAY is set).\n"
                "  Start MaskStudio inside a desktop session (or over `ssh -X`). Without a display,\n"
                "  `QT_QPA_PLATFORM=offscreen maskstudio gui --screenshot out.png` still renders a screenshot,\n"
                "  and the command-line tools (`maskstudio render ...`) need no display at all.")
    missing = missing_system_libraries(qt_dir)
    if not missing:
        return None
    pkgs = list(dict.fromkeys(DEBIAN_PACKAGES.get(so, "?") for so in missing))
    known = [p for p in pkgs if p != "?"]
    lines = [
        "Qt's X11 (xcb) platform plugin cannot start: these system libraries are missing: "
        + ", ".join(missing) + ".",
    ]
    if known:
        lines.append(f"  Debian / Ubuntu: sudo apt-get install -y {' '.join(known)}")
    lines += [
        f"  (everything the GUI needs in one line: {APT_LINE})",
        "  Other distributions: install the packages that provide these files (Fedora: "
        "`sudo dnf install xcb-util-cursor xcb-util-wm xcb-util-keysyms xcb-util-image xcb-util-renderutil "
        "libxkbcommon-x11`; Arch: `sudo pacman -S xcb-util-cursor xcb-util-wm xcb-util-keysyms xcb-util-image "
        "xcb-util-renderutil libxkbcommon-x11`), see README ▸ Set-up.",
        "  On a Wayland desktop `QT_QPA_PLATFORM=wayland maskstudio` avoids the X11 plugin.",
    ]
    return "\n".join(lines)
