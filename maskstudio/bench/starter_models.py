"""Benchmark the shipped starter models on this machine: median latencies, printed and as JSON.

    python -m maskstudio.bench.starter_models [--device cpu] [--repeats 7] [--json out.json]

Measures: loading both checkpoints; the DMN style encoding and generation (template mask) at
128², 256² and 512²; the face parser on a 512² image (resized to its input size, flip TTA), and
any ``--parser`` given, in the same run. No assertions:
the numbers are for people and CI dashboards, not unit tests.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch


def _median_ms(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return round(statistics.median(times), 2)


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--json", default=None)
    p.add_argument("--parser", action="append", default=None, metavar="SAFETENSORS",
                   help="also time this face parser on the same 512² photo (repeatable; compares layouts "
                        "in one run)")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)

    from PIL import Image

    from maskstudio.io.images import is_exemplar_image, read_rgb, sibling_mask
    from maskstudio.io.masks import read_label_png
    from maskstudio.models.dense_mapping import one_hot
    from maskstudio.models.face_parser import parse_image
    from maskstudio.settings import RESOURCES, SHIPPED_CHECKPOINTS
    from maskstudio.training.common import load_dmn, load_parser

    res: dict[str, float] = {}
    t = time.perf_counter()
    G, _ = load_dmn(SHIPPED_CHECKPOINTS / "dmn_starter.safetensors", a.device)
    parser = load_parser(SHIPPED_CHECKPOINTS / "face_parser.safetensors", a.device)
    res["load_both_ms"] = round((time.perf_counter() - t) * 1000, 1)
    template = read_label_png(RESOURCES / "sample" / "template_mask.png", resize=False).labels
    ex = sorted(p for p in (RESOURCES / "gallery").glob("*.png") if is_exemplar_image(p))[0]
    ex_rgb = read_rgb(ex)
    ex_mask_path = sibling_mask(ex)
    assert ex_mask_path is not None, f"{ex}: a shipped exemplar without its mask"
    ex_mask = read_label_png(ex_mask_path, resize=False).labels

    def tens(mask, size):
        m = np.asarray(Image.fromarray(mask).resize((size, size), Image.Resampling.NEAREST)).astype(np.int64)
        return one_hot(torch.from_numpy(m)[None].to(a.device))

    with torch.no_grad():
        for size in (128, 256, 512):
            oh, roh = tens(template, size), tens(ex_mask, size)
            rimg = torch.from_numpy(np.array(Image.fromarray(ex_rgb).resize((size, size), Image.Resampling.BICUBIC)))
            rimg = rimg.permute(2, 0, 1)[None].float().div(127.5).sub(1).to(a.device)
            style = G.encode_style(roh, rimg)
            res[f"dmn_encode_style_{size}_ms"] = _median_ms(lambda roh=roh, rimg=rimg: G.encode_style(roh, rimg), a.repeats)
            res[f"dmn_generate_{size}_ms"] = _median_ms(lambda oh=oh, style=style: G.generate(oh, style), a.repeats)
        res["parser_512_input_ms"] = _median_ms(lambda: parse_image(parser, ex_rgb), a.repeats)
        for extra in a.parser or ():
            other = load_parser(extra, a.device)
            n = sum(t.numel() for t in other.parameters())
            res[f"parser_512_input_ms[{extra}, {n / 1e6:.2f} M params]"] = _median_ms(
                lambda other=other: parse_image(other, ex_rgb), a.repeats)
    res["threads"] = torch.get_num_threads()
    res["device"] = a.device
    for k, v in res.items():
        print(f"{k:28s} {v}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
