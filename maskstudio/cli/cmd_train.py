"""``maskstudio train parser|dmn|samples|boundaries`` — train the starter models, regenerate sample
content, fit semantic boundaries in the DMN style space.

    maskstudio train parser --data ../shared/data --out runs/parser [--size 256] [--epochs 15]
    maskstudio train dmn --data ../shared/data --out runs/dmn --parser runs/parser/face_parser.safetensors
    maskstudio train samples --dmn checkpoints/dmn_starter.safetensors --data ../shared/data
    maskstudio train boundaries --dmn checkpoints/dmn_starter.safetensors --data ../shared/data

``--resume`` continues from ``<out>/*_state.pt`` exactly where it stopped (same batches).

Data-parallel: ``torchrun --nproc-per-node N -m maskstudio train parser|dmn ...`` (one GPU per
process with ``--device cuda``: NCCL; gloo on CPU). ``--batch-size`` is per process; only rank 0
writes the run folder.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from maskstudio.errors import ConfigError


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, type=Path, help="data folder (celebamask_pairs/, faces_unlabeled/)")
    p.add_argument("--out", required=True, type=Path, help="run folder (state, split.json, history, model)")
    p.add_argument("--size", type=int, default=256, help="training resolution (square, default 256)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--resume", action="store_true", help="continue from the run folder's state")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--cache", type=Path, default=None, help="folder for the resized numpy cache")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="train the face parser or the starter DMN")
    sub = p.add_subparsers(dest="train_what", metavar="WHAT", required=True)

    pp = sub.add_parser("parser", help="train the face parser on image/mask pairs")
    _common(pp)
    pp.add_argument("--epochs", type=int, default=None)
    pp.add_argument("--steps", type=int, default=None, help="stop after this many steps")
    pp.add_argument("--init", type=Path, default=None,
                    help="start from a parser checkpoint (e.g. a run at a lower --size)")
    pp.add_argument("--dice-weight", type=float, default=None, help="weight of the soft Dice loss (default 0.5)")
    pp.add_argument("--teacher", type=Path, default=None,
                    help="self-training: also learn from this parser's confident parses of the unlabelled faces")
    pp.add_argument("--rotate", type=float, default=None, help="max rotation augmentation in degrees (default 0)")
    pp.add_argument("--preset", choices=("v3", "v4"), default=None,
                    help="network layout (default v3 = the shipped 0.47 M net; v4 = 2.5 M, for a GPU run)")
    pp.set_defaults(func=_train_parser)

    pd = sub.add_parser("dmn", help="train the starter MaskGAN dense mapping network")
    _common(pd)
    pd.add_argument("--steps", type=int, default=None, help="total generator steps")
    pd.add_argument("--parser", type=Path, default=None,
                    help="trained face parser (.safetensors): pseudo-labels + perceptual features")
    pd.add_argument("--ngf", type=int, default=None)
    pd.add_argument("--no-pseudo", action="store_true", help="do not use pseudo-labelled unlabeled faces")
    pd.add_argument("--save-every", type=int, default=None, help="steps between model/state saves")
    pd.add_argument("--decay-from", type=int, default=None,
                    help="from this step the learning rate falls linearly to 0 at --steps")
    pd.add_argument("--keep-every", type=int, default=None,
                    help="also keep <out>/snapshots/dmn_<step>.safetensors every N steps")
    pd.add_argument("--upsample", choices=("transpose", "resize_conv", "bilinear_conv", "subpixel"), default=None,
                    help="decoder up-sampling (default transpose = the official layout; the others "
                         "avoid its checkerboard)")
    pd.add_argument("--init", type=Path, default=None,
                    help="warm start a fresh run from this DMN checkpoint (tensors whose name and shape match)")
    pd.add_argument("--ema-decay", type=float, default=None,
                    help="also write dmn_ema.safetensors, an exponential moving average of the generator "
                         "weights (e.g. 0.999)")
    pd.add_argument("--freeze-trunk", action="store_true",
                    help="train only the decoder (up-sampling stages + output conv); encoders and residual "
                         "blocks keep their --init weights and run without gradients (one process only)")
    pd.add_argument("--gan-from", type=int, default=None,
                    help="start the discriminator, adversarial and feature-matching losses at this step "
                         "(before it: L1 + parser perceptual/segmentation losses only)")
    pd.add_argument("--seg-weight", type=float, default=None,
                    help="weight of the parser's segmentation loss on the render (default 1.0; lower it when "
                         "the decoder learns to paint classes in colours the parser likes)")
    pd.add_argument("--perc-weight", type=float, default=None,
                    help="weight of the parser-feature perceptual loss (default 5.0)")
    pd.set_defaults(func=_train_dmn)

    ps = sub.add_parser("samples", help="regenerate template mask + gallery exemplars")
    ps.add_argument("--dmn", type=Path, required=True, help="DMN checkpoint (.safetensors)")
    ps.add_argument("--data", type=Path, required=True, help="data folder (masks + images for styles)")
    ps.add_argument("--resources", type=Path, default=None, help="resources folder (default: the project's)")
    ps.add_argument("--count", type=int, default=6)
    ps.add_argument("--seed", type=int, default=0)
    ps.add_argument("--device", default="auto")
    ps.set_defaults(func=_train_samples)

    pb = sub.add_parser("boundaries", help="fit semantic boundaries in the DMN's style space (InterFaceGAN)",
                        description="Encode the training faces' style codes with the DMN, measure attributes "
                                    "inside their masks, fit one linear boundary per attribute and write the "
                                    "separable ones (.npy [1, dim] unit normal + .json sidecar).")
    pb.add_argument("--dmn", type=Path, required=True, help="DMN checkpoint (.safetensors)")
    pb.add_argument("--data", type=Path, required=True, help="data folder (celebamask_pairs/)")
    pb.add_argument("--out", type=Path, default=None,
                    help="output folder (default: checkpoints/dmn_boundaries, the shipped set)")
    pb.add_argument("--labels", choices=("reconstruction", "photo"), default="reconstruction",
                    help="measure the attributes on the DMN's reconstruction of each training photo (its own mask "
                         "and code: what the generator does with the code; default) or on the photo itself")
    pb.add_argument("--direction", choices=("normal", "pattern"), default="normal",
                    help="edit direction: the fitted boundary's normal (default, InterFaceGAN) or the codes' "
                         "covariance with the attribute (= the normal in a whitened space; not evaluated for shipping)")
    pb.add_argument("--method", choices=("ridge", "svm"), default="ridge",
                    help="ridge regression on all faces (default) or InterFaceGAN's linear SVM on the quantiles")
    pb.add_argument("--attribute", action="append", default=None, metavar="NAME",
                    help="only this attribute (repeatable; default: every candidate)")
    pb.add_argument("--min-r2", type=float, default=0.25, help="write only boundaries with held-out R² >= this")
    pb.add_argument("--min-accuracy", type=float, default=0.8,
                    help="... and held-out top/bottom-quantile accuracy >= this")
    pb.add_argument("--all", action="store_true", help="write every boundary, separable or not")
    pb.add_argument("--size", type=int, default=None, help="encode at this side (default: the DMN's native size)")
    pb.add_argument("--measure-size", type=int, default=None,
                    help="measure the attributes at this side (default: the encoding size)")
    pb.add_argument("--cache", type=Path, default=None, help="folder to cache the style codes in (re-runs skip encoding)")
    pb.add_argument("--device", default="auto")
    pb.set_defaults(func=_train_boundaries)


def _device(name: str) -> str:
    from maskstudio.settings import resolve_device

    return resolve_device(name)


def _is_main_rank() -> bool:
    from maskstudio.training.distributed import env_world

    return env_world()[0] == 0


def _overrides(args, cfg) -> None:
    for attr, key in (("batch_size", "batch_size"), ("lr", "lr"), ("threads", "num_threads"), ("seed", "seed")):
        v = getattr(args, attr, None)
        if v is not None:
            setattr(cfg, key, v)


def _train_parser(args) -> int:
    from maskstudio.training.parser_trainer import ParserTrainConfig, train_parser

    if args.size % 32:
        raise ConfigError(f"--size {args.size}: must be a multiple of 32")
    cfg = ParserTrainConfig(size=args.size, device=_device(args.device))
    _overrides(args, cfg)
    if args.epochs is not None:
        cfg.epochs = args.epochs
    if args.steps is not None:
        cfg.max_steps = args.steps
    if args.init is not None:
        cfg.init = str(args.init)
    if args.dice_weight is not None:
        cfg.dice_weight = args.dice_weight
    if args.rotate is not None:
        cfg.rotate = args.rotate
    if args.teacher is not None:
        cfg.teacher = str(args.teacher)
    if args.preset is not None:
        from maskstudio.models.face_parser import PARSER_PRESETS

        cfg.model = {k: list(v) for k, v in PARSER_PRESETS[args.preset].items()}
    summary = train_parser(args.data, args.out, cfg, resume=args.resume, cache_dir=args.cache,
                           show_progress=not args.no_progress)
    if not _is_main_rank():
        return 0
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
    if "val" in summary:
        print(f"val mean F1 {summary['val']['mean_f1']}  mIoU {summary['val']['miou']}")
    return 0


def _train_dmn(args) -> int:
    from maskstudio.training.dmn_trainer import DMNTrainConfig, train_dmn

    cfg = DMNTrainConfig(size=args.size, device=_device(args.device))
    _overrides(args, cfg)
    if args.steps is not None:
        cfg.steps = args.steps
    if args.ngf is not None:
        cfg.ngf = args.ngf
    if args.no_pseudo:
        cfg.use_pseudo = False
    if args.save_every is not None:
        cfg.save_every = args.save_every
    if args.decay_from is not None:
        if args.decay_from >= cfg.steps:
            raise ConfigError(f"--decay-from {args.decay_from}: must be below --steps ({cfg.steps})")
        cfg.decay_from = args.decay_from
    if args.keep_every is not None:
        cfg.keep_every = args.keep_every
    if args.upsample is not None:
        cfg.upsample = args.upsample
    if args.init is not None:
        cfg.init = str(args.init)
    if args.ema_decay is not None:
        cfg.ema_decay = args.ema_decay
    if args.freeze_trunk:
        cfg.freeze_trunk = True
    for name in ("seg_weight", "perc_weight"):
        v = getattr(args, name)
        if v is not None:
            if v < 0:
                raise ConfigError(f"--{name.replace('_', '-')} {v}: must be 0 or more")
            setattr(cfg, name, v)
    if args.gan_from is not None:
        if args.gan_from < 0:
            raise ConfigError(f"--gan-from {args.gan_from}: must be 0 or more")
        cfg.gan_from = args.gan_from
    summary = train_dmn(args.data, args.out, cfg, parser_path=args.parser, resume=args.resume,
                        cache_dir=args.cache, show_progress=not args.no_progress)
    if not _is_main_rank():
        return 0
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
    return 0


def _train_samples(args) -> int:
    from maskstudio.training.make_samples import make_samples

    written = make_samples(args.dmn, args.data, resources=args.resources, count=args.count,
                           seed=args.seed, device=_device(args.device))
    for p in written:
        print(p)
    return 0


def _train_boundaries(args) -> int:
    from maskstudio.settings import SHIPPED_CHECKPOINTS
    from maskstudio.io.style_files import BOUNDARY_FOLDER
    from maskstudio.training.boundaries import train_boundaries

    out = args.out if args.out is not None else SHIPPED_CHECKPOINTS / BOUNDARY_FOLDER
    report = train_boundaries(args.dmn, args.data, out, attributes=args.attribute, method=args.method,
                              min_r2=args.min_r2, min_accuracy=args.min_accuracy, write_all=args.all,
                              size=args.size, device=_device(args.device), cache_dir=args.cache,
                              measure_size=args.measure_size, labels=args.labels, direction=args.direction)
    n = sum(1 for r in report["attributes"].values() if r["separable"] or args.all)
    print(f"{n} boundaries written to {out} (report: {out / 'report.json'})")
    if out.resolve() == (SHIPPED_CHECKPOINTS / BOUNDARY_FOLDER).resolve():
        print("shipped set changed: run `maskstudio models rehash-shipped` and commit checkpoints/")
    return 0
