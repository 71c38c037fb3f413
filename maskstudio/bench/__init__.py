"""Benchmarks (not tests): each module measures one thing and prints medians (and JSON).

``engine`` is ``maskstudio bench`` (stroke-to-pixels, latent chain, DMN style sliders, photo
sections), ``mask`` is ``maskstudio mask bench``; the others run as ``python -m
maskstudio.bench.<name>``. :func:`write_json` is the one way they write their JSON report.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any


def write_json(path: str | os.PathLike, report: Any, *, indent: int = 2, announce: bool = False) -> None:
    """Write ``report`` as JSON to ``path`` (parent folders made); a clear ``MaskFileError`` on failure."""
    from maskstudio.errors import MaskFileError, file_error

    p = Path(path)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(report, indent=indent) + "\n", encoding="utf-8")
    except OSError as e:
        raise file_error(MaskFileError, p, f"cannot write ({e.strerror or e})") from e
    if announce:
        print(f"wrote {p}", file=sys.stderr)
