"""``maskstudio`` console entry point.

Subcommands live in ``maskstudio/cli/cmd_<name>.py``; each module defines
``register(subparsers) -> None`` which adds its parser and sets ``func=handler`` with
``handler(args) -> int``. Modules are discovered, so adding a command touches no shared file.

Errors: a :class:`~maskstudio.errors.MaskStudioError` becomes one line on stderr
(``maskstudio: error: <file>: <problem>``) and exit status 2 — never a traceback.
"""
from __future__ import annotations

import argparse
import os
import importlib
import pkgutil
import sys

from maskstudio import __version__
from maskstudio.errors import MaskStudioError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="maskstudio",
        description="MaskStudio: paint a face mask, render a face from it live.",
    )
    parser.add_argument("--version", action="version", version=f"maskstudio {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    import maskstudio.cli as pkg

    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if info.name.startswith("cmd_"):
            module = importlib.import_module(f"maskstudio.cli.{info.name}")
            module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        subparsers = parser._subparsers   # the COMMAND group (build_parser adds it)
        commands = subparsers._group_actions[0].choices if subparsers is not None else None
        if commands is not None and "gui" in commands:
            args = parser.parse_args(["gui", *(argv or sys.argv[1:])])
        else:
            parser.print_help()
            return 0
    try:
        return int(args.func(args) or 0)
    except MaskStudioError as exc:
        print(f"maskstudio: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("maskstudio: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `maskstudio mask info x.png | head`
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
