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
    from maskstudio.settings import Settings
    from maskstudio.ui.app import run_gui  # Qt is imported only when the app really starts

    settings = Settings.from_env(device=args.device)
    return run_gui(settings, project=args.project, screenshot=args.screenshot, open_path=args.file,
                   theme=args.theme)
