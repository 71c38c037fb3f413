"""Per-region styles with the starter DMN: compositing renders vs mixing style codes in space.

    python -m maskstudio.bench.region_styles [--data ../shared/data] [--pairs 12] [--json out.json]

For ``--pairs`` triples of held-out faces (val split; without ``--data`` the shipped gallery
exemplars and template mask) — main exemplar A, hair exemplar B (the hair-lightness extreme of
the other faces), target mask M — the face M is rendered with A, with B, and with A + hair from B
by two methods:

* ``composite`` (what the engine does): generate with A and with B, blend inside the hair
  (feathered mask, :func:`maskstudio.engine.dmn_style.feather_alpha`);
* ``spatial``: one generator pass whose AdaIN γ/β vary in space — A's code outside the hair,
  B's inside, the mask pooled to the bottleneck (:func:`maskstudio.engine.dmn_style.spatial_mix_generate`).

Printed per method (means over the triples, CIELAB inside the target mask's classes):
``hair→B`` = |hair(mix) − hair(B)| / |hair(A) − hair(B)| (0 = B's hair exactly, 1 = unchanged);
``skin leak`` = |skin(mix) − skin(A)| / |skin(B) − skin(A)| (0 = A's skin kept); and the median
generator time. No assertions: numbers for the model card / README.
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from maskstudio.bench import write_json


def _faces(data: Path | None, size: int):
    if data is not None:
        from maskstudio.training.data import find_pairs, read_labels, read_rgb, split_stems

        pairs = find_pairs(data)
        val = split_stems(pairs.stems, 0.1, 0)["val"]
        return [(read_rgb(pairs.images[s], size), read_labels(pairs.masks[s], size)) for s in val], "held-out faces"
    from maskstudio.settings import RESOURCES
    from maskstudio.training.data import read_labels, read_rgb

    g = RESOURCES / "gallery"
    items = sorted(p for p in g.glob("*.png") if not p.name.endswith(".mask.png"))
    return [(read_rgb(p, size), read_labels(p.with_name(p.stem + ".mask.png"), size)) for p in items], "gallery"


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--data", type=Path, default=None)
    p.add_argument("--pairs", type=int, default=12)
    p.add_argument("--json", type=Path, default=None)
    a = p.parse_args(argv)

    from maskstudio.engine.dmn_style import composite, feather_alpha, spatial_mix_generate
    from maskstudio.engine.pipeline import to_uint8_image
    from maskstudio.models.dense_mapping import one_hot
    from maskstudio.settings import SHIPPED_CHECKPOINTS
    from maskstudio.training.attributes import measure, to_lab
    from maskstudio.training.common import load_dmn
    from maskstudio.training.make_samples import style_codes

    net, _ = load_dmn(SHIPPED_CHECKPOINTS / "dmn_starter.safetensors", "cpu")
    size = 256
    faces, source = _faces(a.data, size)
    faces = [(im, lb) for im, lb in faces if (lb == 13).sum() > 3000 and (lb == 1).sum() > 3000]
    codes = style_codes(net, np.stack([f[0] for f in faces]), np.stack([f[1] for f in faces]))
    light = np.array([measure(im, lb)["hair_lightness"] for im, lb in faces])
    rng = np.random.default_rng(0)
    res: dict[str, dict[str, list[float]]] = {"composite": {"hair": [], "skin": [], "ms": []},
                                              "spatial": {"hair": [], "skin": [], "ms": []}}
    n = min(a.pairs, len(faces) // 3) if len(faces) >= 3 else 0
    for _ in range(n):
        ia, im_ = rng.choice(len(faces), 2, replace=False)
        others = [j for j in range(len(faces)) if j not in (ia, im_)]
        ib = max(others, key=lambda j: abs(light[j] - light[ia]))  # the most different hair
        mask = faces[im_][1]
        oh = one_hot(torch.from_numpy(mask[None].astype(np.int64)))
        ca, cb = (torch.from_numpy(codes[i][None]) for i in (ia, ib))
        with torch.no_grad():
            fa, fb = net.generate(oh, ca), net.generate(oh, cb)
            t0 = time.perf_counter()
            comp = composite(fa, [(net.generate(oh, cb), feather_alpha(mask, (13,), size, "cpu"))])
            res["composite"]["ms"].append((time.perf_counter() - t0) * 1e3)
            hair = torch.from_numpy((mask == 13).astype(np.float32))[None, None]
            t0 = time.perf_counter()
            spat = spatial_mix_generate(net, oh, [ca, cb], [1 - hair, hair])
            res["spatial"]["ms"].append((time.perf_counter() - t0) * 1e3)
        imgs = {k: to_lab(to_uint8_image(v)) for k, v in (("a", fa), ("b", fb), ("composite", comp), ("spatial", spat))}

        def mean(k, cls, imgs=imgs, mask=mask):
            return imgs[k][mask == cls].mean(0)

        for m in ("composite", "spatial"):
            res[m]["hair"].append(float(np.linalg.norm(mean(m, 13) - mean("b", 13)) /
                                        max(1e-6, np.linalg.norm(mean("a", 13) - mean("b", 13)))))
            res[m]["skin"].append(float(np.linalg.norm(mean(m, 1) - mean("a", 1)) /
                                        max(1e-6, np.linalg.norm(mean("b", 1) - mean("a", 1)))))
    out = {"source": source, "triples": n, "size_px": size, "threads": torch.get_num_threads()}
    for m, r in res.items():
        out[m] = {"hair_to_b": round(float(np.mean(r["hair"])), 3), "skin_leak": round(float(np.mean(r["skin"])), 3),
                  "extra_ms_p50": round(statistics.median(r["ms"]), 1) if r["ms"] else None}
        print(f"{m:10s} hair→B {out[m]['hair_to_b']:.3f}  skin leak {out[m]['skin_leak']:.3f}  "
              f"time p50 {out[m]['extra_ms_p50']} ms  ({n} triples, {source})")
    if a.json:
        write_json(a.json, out, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
