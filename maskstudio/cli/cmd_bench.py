"""``maskstudio bench``: the command line of :mod:`maskstudio.bench.engine` (all measuring lives there)."""
from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    from maskstudio.bench import engine

    p = subparsers.add_parser("bench", help="measure render latency (stroke-to-pixels, latent chain)",
                              description=(engine.__doc__ or "").split("\n\n")[0])
    p.add_argument("--device", default=None, help="auto | cpu | cuda | cuda:N")
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "fp16", "bf16"))
    p.add_argument("--quick", action="store_true", help="fewer repeats; official DMN at preview size only")
    p.add_argument("--json", type=Path, default=None, help="also write all numbers as JSON")
    p.add_argument("--skip-official", action="store_true", help="skip the official-size DMN")
    p.add_argument("--skip-latent", action="store_true", help="skip the latent chain")
    p.add_argument("--compile", action="store_true", help="torch.compile the models (CUDA only)")
    p.add_argument("--skip-photo", action="store_true",
                   help="skip the photo sections (24 MP photo memory; align, local re-render)")
    p.add_argument("--photo-only", action="store_true", help="run only the photo sections")
    p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    from maskstudio.bench import engine

    return engine.run(args)
