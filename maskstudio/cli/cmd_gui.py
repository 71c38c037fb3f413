"""``maskstudio gui``: open the desktop app (the default when no command is given)."""
from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser("gui", help="open the MaskStudio desktop app (default)",
                              description="Open the MaskStudio desktop app.")
    p.add_argument("file", nargs="?", help="a mask PNG or .msproj project to open")
    p.add_argument("--project", metavar="P", help="open this project file (.msproj)")
    p.add_argument("--screenshot", metavar="PATH",
                   help="open, wait for the first render, save a grab of the main window to PATH, exit 0")
    p.add_argument("--theme", choices=["light", "dark"], default=None, help="colour theme (remembered)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None, help="render device (default auto)")
    p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    import os

    from maskstudio.errors import MaskStudioError
    from maskstudio.settings import Settings
    from maskstudio.ui.platform_check import APT_LINE, gui_start_problem

    if args.screenshot and not (os.environ.get("QT_QPA_PLATFORM") or os.environ.get("DISPLAY")
                                or os.environ.get("WAYLAND_DISPLAY")):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"   # a screenshot needs no screen
    # Qt aborts the process when its platform plugin cannot load: find out first, say what to install
    problem = gui_start_problem()
    if problem:
        raise MaskStudioError(problem)
    try:
        from maskstudio.ui.app import run_gui  # Qt is imported only when the app really starts
    except ImportError as e:   # e.g. libGL.so.1 / libEGL.so.1 missing: QtGui cannot load
        raise MaskStudioError(f"the Qt GUI libraries cannot load ({e}).\n"
                              f"  Debian / Ubuntu: {APT_LINE}\n  (README ▸ Set-up lists other distributions)") from e

    settings = Settings.from_env(device=args.device)
    return run_gui(settings, project=args.project, screenshot=args.screenshot, open_path=args.file,
                   theme=args.theme)
