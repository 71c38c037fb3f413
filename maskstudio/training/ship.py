"""Export a training run's model to ``checkpoints/<name>`` as fp16 safetensors + JSON + model card.

    python -m maskstudio.training.ship parser --run runs/parser256 --eval val_scores.json \
        --command "maskstudio train parser ..." [--command "..."] [--note "..."]
    python -m maskstudio.training.ship dmn --run runs/dmn --eval dmn_scores.json --command "..." \
        [--model runs/dmn/snapshots/dmn_7000.safetensors]   # a kept snapshot instead of the last one

The card names the data and its terms (CelebAMask-HQ / CelebA: non-commercial research use
only), the recipe (from the run's state), the exact commands, the metrics and the date.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
from pathlib import Path

import torch

from maskstudio.settings import SHIPPED_CHECKPOINTS

TERMS = (
    "Trained on CelebAMask-HQ image/mask pairs and CelebA-HQ faces (Lee et al., \"MaskGAN: Towards "
    "Diverse and Interactive Facial Image Manipulation\", CVPR 2020; CelebA, Liu et al. 2015). "
    "Those datasets are available for **non-commercial research and educational use only**, and so "
    "are these weights: do not use them commercially. The training images are not included."
)

NAMES = {"parser": ("face_parser", "face_parser", "Face parser (MaskStudio starter)"),
         "dmn": ("dmn_starter", "maskgan_dmn", "MaskGAN DMN starter (MaskStudio)")}


def _fmt(v) -> str:
    return "n/a" if v is None else (f"{v:.4f}" if isinstance(v, float) else str(v))


def _metrics_md(kind: str, ev: dict) -> str:
    lines = []
    if kind == "parser":
        lines.append(f"Held-out split ({ev.get('count', '?')} faces at 512², masks at 512²): "
                     f"**mean F1 {_fmt(ev['mean_f1'])}** over the 18 non-background classes, "
                     f"mIoU {_fmt(ev['miou'])}, pixel accuracy {_fmt(ev['pixel_acc'])}.\n")
        lines.append("| class | F1 | IoU | support (px) |\n|---|---|---|---|")
        for name, c in ev["per_class"].items():
            lines.append(f"| {name} | {_fmt(c['f1'])} | {_fmt(c['iou'])} | {c['support_px']} |")
    else:
        own, other = ev["own_exemplar"], ev["other_exemplar"]
        lines.append(f"Held-out split ({ev['count']} masks, rendered at {ev['size']}², renders parsed by "
                     f"face_parser):\n")
        lines.append("| exemplar | parse-mIoU | parse mean F1 | L1 (0..1) | PSNR (dB) |\n|---|---|---|---|---|")
        lines.append(f"| own photo | {_fmt(own['parse']['miou'])} | {_fmt(own['parse']['mean_f1'])} | "
                     f"{_fmt(own['l1'])} | {_fmt(own['psnr_db'])} |")
        lines.append(f"| a different face | {_fmt(other['parse']['miou'])} | {_fmt(other['parse']['mean_f1'])} "
                     f"| – | – |")
    return "\n".join(lines)


def ship(kind: str, run: Path, eval_json: Path | None, commands: list[str], notes: list[str],
         out_dir: Path = SHIPPED_CHECKPOINTS, model: Path | None = None) -> tuple[Path, Path, Path]:
    from maskstudio.models.checkpoints import load_checkpoint, save_checkpoint

    name, arch, title = NAMES[kind]
    src = model if model is not None else run / ("face_parser.safetensors" if kind == "parser" else "dmn.safetensors")
    loaded = load_checkpoint(src, dtype=torch.float32)
    ev = json.loads(eval_json.read_text()) if eval_json else None
    date = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    train_meta = dict(loaded.meta.get("train", {}))
    split_path = run / "split.json"
    if split_path.exists():  # file stems only (no data): which faces were held out
        split = json.loads(split_path.read_text())
        train_meta["split"] = {"rule": "maskstudio.training.data.split_stems (sha1(seed:stem) ranking)",
                               "seed": split["seed"], "val_fraction": split["val_fraction"],
                               "n_train": len(split["train"]), "val_stems": split["val"]}
    n_params = sum(p.numel() for p in loaded.module.parameters())
    n_pseudo = int(train_meta.get("pseudo_labels", 0) or 0)
    meta = {"title": title, "name": name, "license": "non-commercial research use only (CelebAMask-HQ / CelebA terms)",
            "data": "CelebAMask-HQ pairs (train split)" + (" + pseudo-labelled CelebA-HQ faces" if n_pseudo else ""),
            "date": date, "train": train_meta,
            "commands": commands, "metrics": ev, "parameters": n_params}
    if kind == "dmn":
        meta["native_size_px"] = int(train_meta.get("size", 256))
    st, js = save_checkpoint(out_dir / name, loaded.module, arch, loaded.config, meta=meta, dtype=torch.float16)
    recipe = json.dumps(train_meta.get("recipe", {}), indent=1)
    split_note = ("seeded and deterministic (`split_stems`, seed 0, 10 % held out); the held-out file stems "
                  "are listed in the JSON's `meta.train.split.val_stems`")
    card = [f"# {title}", "",
            f"`{st.name}` + `{js.name}` — architecture `{arch}`, config `{json.dumps(loaded.config)}`, "
            f"{n_params:,} parameters, stored as float16 ({st.stat().st_size / 1e6:.1f} MB).", "",
            f"Date: {date}. Trained on CPU (2 shared cores; no GPU was available).", "",
            "## Data and terms", "", TERMS, "",
            f"Train/validation split: {split_note}.", ""]
    if n_pseudo:
        card += [f"Pseudo-labels (last stage): {n_pseudo} of 1,200 unlabelled CelebA-HQ faces passed the "
                 "confidence filter of the parser that labelled them and were added to the training set.", ""]
    if kind == "dmn":
        card += [f"Native size: {meta['native_size_px']}² (render at this size and upscale for best results; "
                 "the network is fully convolutional and runs at any multiple of 32).", ""]
    card += ["## Recipe", "", "```json", recipe, "```", "", "## Commands", "", "```sh", *commands, "```", "",
             "## Metrics", "", _metrics_md(kind, ev) if ev else "(not evaluated)", ""]
    if notes:
        card += ["## Notes", "", *[f"- {n}" for n in notes], ""]
    md = out_dir / f"{name}.md"
    md.write_text("\n".join(card))
    return st, js, md


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m maskstudio.training.ship")
    p.add_argument("kind", choices=sorted(NAMES))
    p.add_argument("--run", type=Path, required=True)
    p.add_argument("--eval", type=Path, default=None, help="JSON written by maskstudio eval --json")
    p.add_argument("--command", action="append", default=[], help="training command (repeatable)")
    p.add_argument("--note", action="append", default=[])
    p.add_argument("--out", type=Path, default=SHIPPED_CHECKPOINTS)
    p.add_argument("--model", type=Path, default=None,
                   help="ship this checkpoint of the run (e.g. a snapshot) instead of its last model")
    a = p.parse_args(argv)
    for path in ship(a.kind, a.run, a.eval, a.command, a.note, a.out, a.model):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
