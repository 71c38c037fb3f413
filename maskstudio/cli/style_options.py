"""``maskstudio render`` options of the DMN style space (they work with the shipped models alone).

    --edit NAME=VALUE           a NAME that is a DMN style boundary (``maskstudio models list``:
                                dmn_starter_boundaries) moves the DMN style code VALUE std along it;
                                other names stay StyleGAN boundary edits
    --no-conditional            plain (not conditional) DMN style edits
    --region-style CLASS=IMAGE  style the class(es) from another exemplar (repeatable); CLASS is a
                                class name (hair, skin, u_lip, ...) or a region (hair, skin, lips,
                                eyes, brows, background, cloth, hat); IMAGE's mask: a sibling
                                <stem>.mask.png, else the face parser
    --style-latent FILE         use a saved DMN style latent (.npy + .json) as the style
    --save-latent FILE          with no StyleGAN latent (DMN face output), writes the DMN style
                                latent FILE (.npy [R, dim] + .json naming the DMN)
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from maskstudio.engine.types import REGIONS
from maskstudio.errors import ConfigError
from maskstudio.labels import NAMES


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-conditional", action="store_true",
                   help="DMN style edits without conditional manipulation (other attributes may follow)")
    p.add_argument("--region-style", action="append", default=[], metavar="CLASS=IMAGE",
                   help="style a class or region (hair, skin, lips, eyes, brows, background, cloth, hat, or a "
                        "class name) from another exemplar image (repeatable)")
    p.add_argument("--style-latent", type=Path, default=None, metavar="FILE",
                   help="use a DMN style latent (.npy + .json, from --save-latent or the app) as the style")


def region_classes(name: str) -> tuple[str, ...]:
    if name in REGIONS:
        return REGIONS[name]
    if name in NAMES:
        return (name,)
    raise ConfigError(f"--region-style {name}=...: unknown class or region (regions: {', '.join(REGIONS)}; "
                      f"classes: {', '.join(NAMES)})")


def parse_region_styles(items: list[str]) -> list[tuple[tuple[str, ...], Path]]:
    out = []
    for it in items:
        name, sep, path = it.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise ConfigError(f"--region-style {it!r}: expected CLASS=IMAGE")
        out.append((region_classes(name.strip()), Path(path.strip())))
    return out


def split_edits(edits: dict[str, float], dmn_names) -> tuple[dict[str, float], dict[str, float]]:
    """(StyleGAN edits, DMN style edits): names of DMN style boundaries go to the second."""
    dmn = {k: v for k, v in edits.items() if k in dmn_names}
    return {k: v for k, v in edits.items() if k not in dmn}, dmn


def style_request_kwargs(args: argparse.Namespace, engine, load_exemplar) -> dict[str, Any]:
    """RenderRequest keyword arguments of the DMN style options (reads the files once)."""
    from maskstudio.engine.types import StyleCode
    from maskstudio.io.style_files import read_style_latent

    kw: dict[str, Any] = {"style_conditional": not args.no_conditional}
    regions: dict[str, Any] = {}
    if args.style_latent is not None:
        lat = read_style_latent(args.style_latent)
        kw["style"] = StyleCode(lat.codes[0], name=args.style_latent.name, dmn_sha256=lat.dmn_sha256)
        for i, classes in enumerate(lat.rows[1:], start=1):
            code = StyleCode(lat.codes[i], name=f"{args.style_latent.name}[{i}]", dmn_sha256=lat.dmn_sha256)
            for c in classes:
                regions[c] = code
    for classes, path in parse_region_styles(args.region_style):
        ex = load_exemplar(path)
        for c in classes:
            regions[c] = ex
    if regions:
        kw["region_styles"] = regions
    return kw


