"""``maskstudio render``: render faces from masks headlessly, through the same Engine as the GUI.

    maskstudio render --mask M.png --exemplar E.jpg [--exemplar-mask EM.png] [--size 512]
        [--device auto|cpu|cuda] [--precision auto|fp32|fp16|bf16] [--output face|photo|agile|dual]
        [--edit NAME=VALUE ...] [--agile STYLE[:STRENGTH]] [--agile-branch auto|A|B]
        [--dual STYLE[:CODE] [--weights w0,...,w17] [--truncation T] [--preserve-color] [--wplus]]
        [--morph T] -o OUT.png [--save-latent OUT.npy]
        [--region-style CLASS=IMAGE ...] [--style-latent F.npy] [--no-conditional]

DMN style space (works with the shipped models alone; :mod:`maskstudio.cli.style_options`):
``--edit hair_lightness=2`` with a DMN style boundary name moves the DMN style code 2 std along
it; ``--region-style hair=B.png`` styles the hair from another exemplar; ``--style-latent F``
uses a saved style latent; ``--save-latent`` writes the DMN style latent (.npy + .json) when the
output has no StyleGAN latent (the DMN face).

``--dual STYLE:53`` picks style id 53 as the official ``--style_id 53`` does (the position in the
style file's own order); a style code name works too.

``--mask`` may be a folder or several files (as a shell glob gives): every ``*.png`` mask is
rendered into the folder ``-o`` (created),
as ``<stem>.png`` (and ``<stem>.npy`` latents into the folder ``--save-latent``), with a progress
bar on stderr; under ``torchrun --nproc-per-node N`` the N processes split the folder (one GPU
each). The output is chosen from the options unless ``--output`` says: ``--dual`` → dual,
``--agile`` → agile, ``--edit`` → photo, else the DMN face.

The exemplar's mask: ``--exemplar-mask``, else a sibling ``<stem>.mask.png`` / ``<stem>_mask.png``
(the gallery convention), else the installed face parser; with none of these the command stops with a
one-line error asking for a mask.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from maskstudio.errors import ConfigError, MaskFileError, MaskStudioError, RenderError, file_error
from maskstudio.io.images import read_rgb, sibling_mask, write_png
from maskstudio.io.latents import write_latent

def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "render",
        help="render a face (or a stylised face) from a mask and an exemplar",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("--mask", required=True, type=Path, nargs="+",
                   help="label/colour mask PNG, several of them, or a folder of them")
    p.add_argument("--exemplar", type=Path, default=None,
                   help="style reference face image (required unless --photo: then the photo itself)")
    p.add_argument("--exemplar-mask", type=Path, default=None,
                   help="the exemplar's mask (default: sibling <stem>.mask.png, else the face parser)")
    p.add_argument("--size", type=int, default=512, help="output side in pixels (default 512)")
    p.add_argument("--device", default=None, help="auto | cpu | cuda | cuda:N (default: settings / auto)")
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "fp16", "bf16"))
    p.add_argument("--output", choices=("face", "photo", "agile", "dual"), default=None,
                   help="what to render (default: chosen from the options below)")
    p.add_argument("--edit", action="append", default=[], metavar="NAME=VALUE",
                   help="semantic boundary offset (repeatable); NAME = an installed boundary id")
    p.add_argument("--agile", default=None, metavar="STYLE[:STRENGTH]", help="AgileGAN style (and strength 0..1)")
    p.add_argument("--agile-branch", default="auto", choices=("auto", "A", "B"))
    p.add_argument("--dual", default=None, metavar="STYLE[:CODE]", help="DualStyleGAN model id (and style code)")
    p.add_argument("--weights", default=None, metavar="w0,...,w17", help="DualStyleGAN per-layer weights")
    p.add_argument("--truncation", type=float, default=None, metavar="T",
                   help="DualStyleGAN truncation of the intrinsic (photo) code, 0..1 (official default 0.75)")
    p.add_argument("--preserve-color", action="store_true",
                   help="DualStyleGAN: keep the photo's colours (the official --preserve_color)")
    p.add_argument("--wplus", action="store_true",
                   help="DualStyleGAN: encode with the W+ pSp encoder (psp_encoder_wplus; the official --wplus)")
    p.add_argument("--morph", type=float, default=1.0, help="photo→style amount 0..1 for agile/dual (default 1)")
    p.add_argument("-o", "--out", required=True, type=Path, help="output PNG (a folder for batch)")
    p.add_argument("--save-latent", type=Path, default=None, help="write the W+ latent [1,N,512] as .npy")
    from maskstudio.cli.photo_render import add_photo_arguments

    add_photo_arguments(p)
    from maskstudio.cli import style_options

    style_options.add_arguments(p)
    p.set_defaults(func=handler)


# -- inputs -----------------------------------------------------------------------------------
def read_labels(path: Path) -> np.ndarray:
    """uint8 class map of a mask file (label PNG, colour PNG, part folder) via maskstudio.io."""
    if not path.exists():
        raise file_error(MaskFileError, path, "no such file")
    from maskstudio.io.masks import read_mask

    try:
        return np.asarray(read_mask(path).labels, dtype=np.uint8)
    except MaskStudioError:
        raise
    except Exception as e:  # noqa: BLE001 - any decoder failure is a bad file for the user
        raise file_error(MaskFileError, path, f"not a readable mask ({type(e).__name__}: {e})") from e


def load_exemplar(image_path: Path, mask_path: Path | None = None):
    """Exemplar from files: the mask from ``mask_path``, else a sibling ``.mask.png``, else None
    (the engine then parses the image, or reports that a mask is needed)."""
    from maskstudio.engine.types import Exemplar

    image = read_rgb(image_path)
    mpath = mask_path if mask_path is not None else sibling_mask(image_path)
    labels = read_labels(mpath) if mpath is not None else None
    if mpath is not None and labels is not None and labels.shape != image.shape[:2]:
        from maskstudio.engine.pipeline import _resize_labels

        if labels.shape[0] != labels.shape[1] or image.shape[0] != image.shape[1]:
            raise file_error(MaskFileError, mpath, f"mask size {labels.shape} does not match the exemplar "
                                                   f"image {image.shape[:2]}")
        labels = _resize_labels(labels, image.shape[0])
    return Exemplar(image, labels, name=image_path.name)


def parse_edits(items: list[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for it in items:
        name, sep, value = it.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"--edit {it!r}: expected NAME=VALUE")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise ConfigError(f"--edit {it!r}: VALUE must be a number") from None
    return out


def parse_agile(text: str | None, branch: str):
    """``--agile STYLE[:STRENGTH]`` + ``--agile-branch`` -> AgileSettings (None without --agile)."""
    if text is None:
        return None
    from maskstudio.engine.render_settings import AgileSettings

    style, sep, strength = text.partition(":")
    try:
        s = float(strength) if sep else 1.0
    except ValueError:
        raise ConfigError(f"--agile {text!r}: STRENGTH must be a number in [0, 1]") from None
    return AgileSettings(style.strip(), s, branch)


def parse_dual(text: str | None, weights: str | None, truncation: float | None = None,
               preserve_color: bool = False, wplus: bool = False):
    """``--dual STYLE[:CODE]`` (CODE: a style code name or the official style id) + ``--weights``,
    ``--truncation``, ``--preserve-color``, ``--wplus`` -> DualSettings (None without --dual)."""
    if text is None:
        for flag, given in (("--weights", weights is not None), ("--truncation", truncation is not None),
                            ("--preserve-color", preserve_color), ("--wplus", wplus)):
            if given:
                raise ConfigError(f"{flag} needs --dual STYLE")
        return None
    from maskstudio.engine.render_settings import DEFAULT_DUAL_WEIGHTS, DualSettings

    style, sep, code = text.partition(":")
    w = DEFAULT_DUAL_WEIGHTS
    if weights is not None:
        try:
            w = tuple(float(x) for x in weights.split(",") if x.strip())
        except ValueError:
            raise ConfigError(f"--weights {weights!r}: expected comma-separated numbers") from None
    extra = {} if truncation is None else {"truncation": truncation}
    return DualSettings(style.strip(), code.strip() or None if sep else None, w,
                        preserve_color=bool(preserve_color), wplus=bool(wplus), **extra)


def settings_from_args(args: argparse.Namespace, dmn_names=()):
    """The render options as :class:`~maskstudio.engine.render_settings.RenderSettings` (the same
    type the GUI's sliders and project files use). The output, unless ``--output`` says: dual
    with ``--dual``, agile with ``--agile``, photo with ``--edit`` of a StyleGAN boundary, else
    the DMN face. ``--edit`` names in ``dmn_names`` are DMN style edits."""
    from maskstudio.cli.style_options import split_edits
    from maskstudio.engine.render_settings import RenderSettings

    edits, style_edits = split_edits(parse_edits(args.edit), set(dmn_names))
    agile = parse_agile(args.agile, args.agile_branch)
    dual = parse_dual(args.dual, args.weights, getattr(args, "truncation", None),
                      getattr(args, "preserve_color", False), getattr(args, "wplus", False))
    output = args.output or ("dual" if dual else "agile" if agile else "photo" if edits else "face")
    kw = {k: v for k, v in (("agile", agile), ("dual", dual)) if v is not None}
    return RenderSettings(output=output, edits=edits, morph=args.morph, style_edits=style_edits,
                          style_conditional=not getattr(args, "no_conditional", False), **kw)


def _mask_files(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ".png"
                   and not p.name.endswith(".mask.png"))
    if not files:
        raise file_error(MaskFileError, folder, "no .png masks in this folder")
    return files


class _Progress:
    """A one-line text progress bar on stderr (carriage-return updates on a terminal)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.tty = sys.stderr.isatty()

    def update(self, done: int, name: str) -> None:
        width = 30
        fill = int(width * done / max(1, self.total))
        line = f"[{'#' * fill}{'.' * (width - fill)}] {done}/{self.total} {name}"
        if self.tty:
            sys.stderr.write("\r" + line[:100].ljust(100))
            if done == self.total:
                sys.stderr.write("\n")
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()


def build_request(labels: np.ndarray, exemplar, args: argparse.Namespace, dmn_names=(), style_kw=None):
    from maskstudio.engine.types import RenderRequest

    st = settings_from_args(args, dmn_names)
    kw = st.to_request(size_px=args.size, want_latent=args.save_latent is not None and st.output != "face")
    kw.update(style_kw or {})
    kw["want_style"] = args.save_latent is not None and st.output == "face"
    return RenderRequest(labels, exemplar, **kw)


def _dmn_boundary_names(settings) -> set[str]:
    from maskstudio.io.style_files import find_boundaries

    found, _ = find_boundaries([(settings.models_dir, "user"), (settings.shipped_checkpoints, "shipped")])
    return set(found)


def handler(args: argparse.Namespace) -> int:
    from maskstudio.settings import Settings

    if getattr(args, "photo", None) is not None:
        from maskstudio.cli.photo_render import photo_handler

        return photo_handler(args)
    if args.exemplar is None:
        raise ConfigError("--exemplar is required (or --photo PHOTO to edit a photo)")

    if not 32 <= args.size <= 4096:
        raise ConfigError(f"--size must be in 32..4096, not {args.size}")
    mask_args = args.mask if isinstance(args.mask, list) else [args.mask]
    batch = len(mask_args) > 1 or mask_args[0].is_dir()
    masks = [m for a in mask_args for m in (_mask_files(a) if a.is_dir() else [a])]
    for m in masks:
        if not m.exists():
            raise file_error(MaskFileError, m, "no such file")
    stems = [m.stem for m in masks]
    if batch and len(set(stems)) != len(stems):
        dup = next(s for s in stems if stems.count(s) > 1)
        raise ConfigError(f"--mask: two masks are named {dup}.png; their renders would overwrite each other in {args.out}")
    if batch:  # under torchrun each rank renders its share of the masks on its own device
        from maskstudio.training.distributed import shard_for_this_rank

        masks, args.device = shard_for_this_rank(masks, args.device)
    if batch and args.out.suffix.lower() == ".png":
        raise ConfigError(f"{args.out}: with a mask folder or several masks, -o must be a folder")
    exemplar = load_exemplar(args.exemplar, args.exemplar_mask)
    settings = Settings.from_env(device=args.device)
    dmn_names = _dmn_boundary_names(settings)
    from maskstudio.cli.style_options import parse_region_styles, style_request_kwargs

    parse_region_styles(args.region_style)
    # validate the option syntax before loading any model
    build_request(np.zeros((32, 32), np.uint8), exemplar, args, dmn_names)

    from maskstudio.engine.pipeline import Engine

    engine = Engine(settings, precision=args.precision, start_worker=False)
    style_kw = style_request_kwargs(args, engine, load_exemplar)
    failures: list[str] = []
    progress = _Progress(len(masks)) if batch else None
    try:
        for i, mpath in enumerate(masks):
            try:
                labels = read_labels(mpath)
                req = build_request(labels, exemplar, args, dmn_names, style_kw)
                res = engine.render_sync(req)
                for w in res.warnings:
                    print(f"maskstudio: warning: {w}", file=sys.stderr)
                if not res.ok:
                    raise RenderError(f"{mpath}: {res.error}")
                assert res.image is not None  # res.ok: an image and no error
                out = args.out / f"{mpath.stem}.png" if batch else args.out
                write_png(out, res.image, parents=True)
                if args.save_latent is not None and res.style_latent is not None:  # the DMN face: its style
                    from maskstudio.engine.dmn_style import style_latent_meta
                    from maskstudio.io.style_files import write_style_latent

                    lat = args.save_latent / f"{mpath.stem}.npy" if batch else args.save_latent
                    write_style_latent(lat, res.style_latent, res.style_rows, style_latent_meta(engine, req))
                elif args.save_latent is not None:
                    if res.latent is None:
                        raise RenderError(f"{mpath}: no latent was computed (needs an encoder)")
                    lat = args.save_latent / f"{mpath.stem}.npy" if batch else args.save_latent
                    write_latent(lat, res.latent, dim=None, parents=True)
            except MaskStudioError as e:
                if not batch:
                    raise
                failures.append(str(e))
            if progress is not None:
                progress.update(i + 1, mpath.name)
    finally:
        engine.close()
    for f in failures:
        print(f"maskstudio: error: {f}", file=sys.stderr)
    if failures:
        print(f"maskstudio: {len(failures)} of {len(masks)} masks failed", file=sys.stderr)
        return 2
    return 0
