"""Semantic boundaries in the DMN's style space (InterFaceGAN's method on our own labels).

The DMN's style code is the AdaIN parameter vector its SFT style encoder computes from an
exemplar (``encode_style``; 4096 values for the starter). For the training faces of the seeded
split (:func:`maskstudio.training.data.split_stems`, val fraction 0.1, seed 0 — the same split
the trainers use) we compute the codes at the DMN's native size and measure attributes from the
photos inside their masks (:mod:`maskstudio.training.attributes`). Per attribute a linear
boundary is fitted on the train faces:

* ``ridge`` (default): ridge regression of the standardised attribute on the centred code, in
  its dual form (N ≪ dim), the penalty picked by 5-fold cross-validation on the train faces;
  the boundary normal is the unit weight vector (the direction along which the predicted
  attribute grows fastest);
* ``svm``: InterFaceGAN's recipe — a linear SVM (L2-regularised squared hinge, exact dual
  coordinate descent) on the train faces in the top / bottom ``quantile`` of the attribute.

Both report the held-out (val split) R² of the linear predictor and InterFaceGAN's accuracy on
the val faces in the top / bottom ``quantile`` (threshold = midpoint of the train classes' mean
predictions). The normal is saved in InterFaceGAN's layout with a JSON sidecar
(:func:`maskstudio.io.style_files.write_boundary`), including the std of the training codes'
projections on it: slider units.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from maskstudio.errors import ConfigError
from maskstudio.training.attributes import ATTRIBUTES, BY_NAME, Attribute, measure_batch

__all__ = ["fit_ridge", "fit_svm", "fit_boundary", "evaluate_boundary", "train_boundaries", "BoundaryFit"]


class BoundaryFit(dict):
    """normal (unit [dim]), bias (predictor = normal·x·scale + bias), scale, lam, cv_r2."""


def _standardise(y: np.ndarray) -> tuple[np.ndarray, float, float]:
    mu, sd = float(y.mean()), float(y.std())
    return (y - mu) / (sd or 1.0), mu, sd or 1.0


def _centred_gram(g: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """(x_r - m)·(x_c - m) for the mean m of the ``cols`` codes, from the Gram matrix ``g`` = XXᵀ."""
    gc = g[np.ix_(rows, cols)]
    return gc - g[np.ix_(rows, cols)].mean(1, keepdims=True) - g[np.ix_(cols, cols)].mean(0, keepdims=True) \
        + g[np.ix_(cols, cols)].mean()


def fit_ridge(codes: np.ndarray, y: np.ndarray, lams: Sequence[float] | None = None, folds: int = 5,
              seed: int = 0) -> BoundaryFit:
    """Ridge regression y ≈ w·(x - mean) + b in its dual form (N ≪ dim), the penalty picked by
    ``folds``-fold CV from ``lams`` (relative to tr(XcXcᵀ)/N, so scale-free)."""
    x = np.asarray(codes, np.float64)
    y = np.asarray(y, np.float64)
    mean = x.mean(0)
    xc = x - mean
    ys, ymu, ysd = _standardise(y)
    g = xc @ xc.T  # centring by any mean is done on the Gram matrix below
    n = len(x)
    base = float(np.trace(g)) / n
    lams = tuple(lams) if lams is not None else (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
    rng = np.random.default_rng(seed)
    fold = rng.permutation(n) % folds
    cv = []
    for rel in lams:
        pred = np.zeros_like(ys)
        for f in range(folds):
            tr, te = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
            yt = ys[tr] - ys[tr].mean()
            alpha = np.linalg.solve(_centred_gram(g, tr, tr) + rel * base * np.eye(len(tr)), yt)
            ktr = g[np.ix_(te, tr)] - g[np.ix_(te, tr)].mean(1, keepdims=True) \
                - g[np.ix_(tr, tr)].mean(0, keepdims=True) + g[np.ix_(tr, tr)].mean()
            pred[te] = ktr @ alpha + ys[tr].mean()
        cv.append(1.0 - float(((pred - ys) ** 2).sum() / ((ys - ys.mean()) ** 2).sum()))
    best = int(np.argmax(cv))
    alpha = np.linalg.solve(g + lams[best] * base * np.eye(n), ys)
    w = xc.T @ alpha
    norm = float(np.linalg.norm(w))
    return BoundaryFit(normal=w / norm, mean=mean, scale=norm * ysd, bias=ymu, lam=lams[best], cv_r2=cv[best],
                       cv_curve=dict(zip(map(float, lams), map(float, cv))), method="ridge")


def fit_svm(codes: np.ndarray, y: np.ndarray, quantile: float = 0.3, c: float = 1.0, iters: int = 200,
            seed: int = 0) -> BoundaryFit:
    """Linear SVM (squared hinge, L2) on the top/bottom ``quantile`` faces — InterFaceGAN's recipe.
    Exact dual coordinate descent (Hsieh et al. 2008) on standardised codes, bias as a feature."""
    x = np.asarray(codes, np.float64)
    y = np.asarray(y, np.float64)
    mean = x.mean(0)
    sd = x.std(0) + 1e-8
    lo, hi = np.quantile(y, [quantile, 1 - quantile])
    sel = (y <= lo) | (y >= hi)
    xs = np.concatenate([(x[sel] - mean) / sd, np.ones((int(sel.sum()), 1))], 1)
    lab = np.where(y[sel] >= hi, 1.0, -1.0)
    n = len(xs)
    alpha = np.zeros(n)
    w = np.zeros(xs.shape[1])
    diag = 0.5 / c
    qii = np.einsum("ij,ij->i", xs, xs) + diag
    rng = np.random.default_rng(seed)
    for _ in range(iters):
        biggest = 0.0
        for i in rng.permutation(n):
            g = lab[i] * (w @ xs[i]) - 1 + diag * alpha[i]
            new = max(alpha[i] - g / qii[i], 0.0)
            d = new - alpha[i]
            if d:
                w += d * lab[i] * xs[i]
                alpha[i] = new
                biggest = max(biggest, abs(d))
        if biggest < 1e-6:
            break
    direction = w[:-1] / sd  # back to raw code units: score = direction·(x - mean) + w_b
    norm = float(np.linalg.norm(direction))
    normal = direction / norm
    # a linear predictor of y along the normal (least squares on all train faces) for R² / slider units
    proj = (x - mean) @ normal
    slope, intercept = np.polyfit(proj, y, 1)
    return BoundaryFit(normal=normal, mean=mean, scale=float(slope), bias=float(intercept), lam=float(c),
                       cv_r2=float("nan"), method="svm")


def pattern_direction(codes: np.ndarray, y: np.ndarray) -> BoundaryFit:
    """The direction along which the codes co-vary with the attribute: cov(x, y) (the "activation
    pattern" of a linear model; for least squares it is Σ·w). In a whitened latent space (StyleGAN's
    Z, where InterFaceGAN fits) it equals the boundary normal; in the DMN's strongly correlated code
    space moving along the raw normal w mostly changes dimensions the generator ignores, while
    Σ·w moves the code the way codes of lighter / redder / ... faces actually differ. The linear
    predictor here is a 1-D least-squares fit of y on the projection."""
    x = np.asarray(codes, np.float64)
    y = np.asarray(y, np.float64)
    mean = x.mean(0)
    a = (x - mean).T @ (y - y.mean()) / len(y)
    normal = a / np.linalg.norm(a)
    proj = (x - mean) @ normal
    slope, intercept = np.polyfit(proj, y, 1)
    return BoundaryFit(normal=normal, mean=mean, scale=float(slope), bias=float(intercept), lam=float("nan"),
                       cv_r2=float("nan"), method="pattern")


def fit_boundary(codes, y, method: str = "ridge", **kw) -> BoundaryFit:
    if method == "ridge":
        return fit_ridge(codes, y, **kw)
    if method == "svm":
        return fit_svm(codes, y, **kw)
    raise ConfigError(f"unknown boundary method {method!r} (ridge or svm)")


def evaluate_boundary(fit: BoundaryFit, codes_train, y_train, codes_val, y_val, quantile: float = 0.3) -> dict:
    """Held-out R² of the linear predictor, and accuracy on the val faces in the top/bottom quantile."""
    pred_tr = (codes_train - fit["mean"]) @ fit["normal"] * fit["scale"] + fit["bias"]
    pred = (codes_val - fit["mean"]) @ fit["normal"] * fit["scale"] + fit["bias"]
    r2 = 1.0 - float(((pred - y_val) ** 2).sum() / max(1e-12, ((y_val - y_val.mean()) ** 2).sum()))
    lo, hi = np.quantile(y_train, [quantile, 1 - quantile])
    thr = 0.5 * (pred_tr[y_train >= hi].mean() + pred_tr[y_train <= lo].mean())
    pos, neg = y_val >= hi, y_val <= lo
    n = int(pos.sum() + neg.sum())
    acc = float(((pred[pos] >= thr).sum() + (pred[neg] < thr).sum()) / n) if n else float("nan")
    corr = float(np.corrcoef(pred, y_val)[0, 1]) if len(y_val) > 2 else float("nan")
    return {"r2": round(r2, 4), "accuracy": round(acc, 4), "n": int(len(y_val)), "n_accuracy": n,
            "pearson": round(corr, 4), "quantile": quantile}


@torch.no_grad()
def reconstructions(G, codes: np.ndarray, masks: np.ndarray, batch_size: int = 8) -> np.ndarray:
    """uint8 [N,S,S,3]: the DMN's render of each mask with its own style code."""
    from maskstudio.models.dense_mapping import one_hot

    dev = next(G.parameters()).device
    out = []
    for i in range(0, len(codes), batch_size):
        oh = one_hot(torch.from_numpy(masks[i:i + batch_size].astype(np.int64)).to(dev), G.cfg.label_nc)
        img = G.generate(oh, torch.from_numpy(np.asarray(codes[i:i + batch_size], np.float32)).to(dev))
        out.append(((img.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy())
    return np.concatenate(out)


def _dmn_identity(dmn_path: Path) -> dict:
    js = dmn_path.with_suffix(".json")
    try:
        doc = json.loads(js.read_text())
    except (OSError, ValueError):
        doc = {}
    return {"id": dmn_path.stem, "file": dmn_path.name, "sha256": doc.get("sha256")}


def train_boundaries(dmn_path, data_dir, out_dir, *, attributes: Sequence[str] | None = None,
                     method: str = "ridge", min_r2: float = 0.25, min_accuracy: float = 0.8,
                     quantile: float = 0.3, device: str = "cpu", size: int | None = None,
                     val_fraction: float = 0.1, seed: int = 0, write_all: bool = False,
                     cache_dir=None, measure_size: int | None = None, labels: str = "reconstruction",
                     direction: str = "normal",
                     log: Callable[[str], None] = print) -> dict:
    """Fit a boundary per attribute and write the separable ones (held-out R² >= ``min_r2`` and
    accuracy >= ``min_accuracy``; every one with ``write_all``). Returns the report (also written
    to ``<out>/report.json``)."""

    from maskstudio.io.style_files import write_boundary
    from maskstudio.training.common import load_dmn
    from maskstudio.training.data import find_pairs, read_labels, read_rgb, split_stems
    from maskstudio.training.make_samples import style_codes

    if direction not in ("pattern", "normal"):
        raise ConfigError(f"unknown direction {direction!r} (pattern or normal)")
    if labels not in ("photo", "reconstruction"):
        raise ConfigError(f"unknown label source {labels!r} (photo or reconstruction)")
    dmn_path = Path(dmn_path)
    out_dir = Path(out_dir)
    attrs: list[Attribute] = list(ATTRIBUTES) if not attributes else []
    for attr_name in attributes or ():
        if attr_name not in BY_NAME:
            raise ConfigError(f"unknown attribute {attr_name!r} (known: {', '.join(BY_NAME)})")
        attrs.append(BY_NAME[attr_name])
    t0 = time.perf_counter()
    G, loaded = load_dmn(dmn_path, device)
    size = size or int(loaded.meta.get("native_size_px") or loaded.meta.get("train", {}).get("size", 256))
    pairs = find_pairs(data_dir)
    split = split_stems(pairs.stems, val_fraction, seed)
    out: dict = {"dmn": _dmn_identity(dmn_path), "size_px": size,
                 "measure_size_px": size if labels == "reconstruction" else (measure_size or size),
                 "labels": labels, "direction": direction,
                 "method": method, "quantile": quantile,
                 "split": {"rule": "maskstudio.training.data.split_stems", "seed": seed,
                           "val_fraction": val_fraction, "n_train": len(split["train"]), "n_val": len(split["val"])},
                 "attributes": {}}
    data = {}
    msize = measure_size or size
    for part in ("train", "val"):
        stems = split[part]
        images = np.stack([read_rgb(pairs.images[s], size) for s in stems])
        masks = np.stack([read_labels(pairs.masks[s], size) for s in stems])
        codes = None
        cache = None
        if cache_dir is not None:
            import hashlib

            h = hashlib.sha1(f"{out['dmn'].get('sha256')}:{size}:{','.join(stems)}".encode()).hexdigest()[:16]
            cache = Path(cache_dir) / f"dmn_style_codes_{h}.npy"
            if cache.is_file():
                codes = np.load(cache, allow_pickle=False)
        if codes is None:
            codes = style_codes(G, images, masks)
            if cache is not None:
                cache.parent.mkdir(parents=True, exist_ok=True)
                np.save(cache, codes, allow_pickle=False)
        ycache = None if cache is None else cache.with_name(cache.stem.replace("codes", f"labels_{labels}_{msize}") + ".npy")
        if ycache is not None and ycache.is_file():
            yall = np.load(ycache, allow_pickle=False)
        else:
            if labels == "reconstruction":  # what the generator makes of each code: the DMN's own render
                images = reconstructions(G, codes, masks)
            elif msize != size:
                images = np.stack([read_rgb(pairs.images[s], msize) for s in stems])
                masks = np.stack([read_labels(pairs.masks[s], msize) for s in stems])
            yall = measure_batch(images, masks, ATTRIBUTES)
            if ycache is not None:
                np.save(ycache, yall, allow_pickle=False)
        cols = [ATTRIBUTES.index(a) for a in attrs]
        data[part] = (codes.astype(np.float64), yall[:, cols])
        log(f"{part}: {len(stems)} faces encoded and measured ({time.perf_counter() - t0:.0f} s)")
    (ctr, ytr_all), (cva, yva_all) = data["train"], data["val"]
    dim = ctr.shape[1]
    for j, a in enumerate(attrs):
        ok_tr, ok_va = np.isfinite(ytr_all[:, j]), np.isfinite(yva_all[:, j])
        xtr, ytr, xva, yva = ctr[ok_tr], ytr_all[ok_tr, j], cva[ok_va], yva_all[ok_va, j]
        fit = fit_boundary(xtr, ytr, method)
        ev_model = evaluate_boundary(fit, xtr, ytr, xva, yva, quantile)
        if direction == "pattern":
            fit = pattern_direction(xtr, ytr)
        ev = evaluate_boundary(fit, xtr, ytr, xva, yva, quantile)
        proj = (ctr - fit["mean"]) @ fit["normal"]
        std = float(proj.std())
        separable = ev["r2"] >= min_r2 and ev["accuracy"] >= min_accuracy
        measured_on = ("the photo" if labels == "photo" else
                       "the DMN's reconstruction of the photo (its own mask and style code, at the encoding size)")
        rec = {"attribute": a.name, "what": a.what, "measurement": f"{a.measurement}; measured on {measured_on}",
               "labels": labels, "method": method, "direction": direction,
               "held_out": ev, "held_out_full_model": ev_model, "train": {"n": int(len(ytr)), "cv_r2": round(float(fit["cv_r2"]), 4),
                                         "lambda_rel": fit["lam"], "y_mean": round(float(ytr.mean()), 3),
                                         "y_std": round(float(ytr.std()), 3)},
               "std": std, "mean": float(fit["mean"] @ fit["normal"]),
               "attribute_per_std": round(float(fit["scale"] * std), 4), "separable": separable}
        out["attributes"][a.name] = rec
        log(f"{a.name:22s} held-out R² {ev['r2']:+.3f}  acc {ev['accuracy']:.3f}  "
            f"(n={ev['n']}; {method} model R² {ev_model['r2']:+.3f} acc {ev_model['accuracy']:.3f})  "
            f"{'ship' if separable else 'not separable'}")
        if separable or write_all:
            write_boundary(out_dir, a.name, fit["normal"],
                           {k: rec[k] for k in ("what", "measurement", "labels", "method", "direction", "std",
                                                "mean", "attribute_per_std", "held_out", "held_out_full_model",
                                                "train")}
                           | {"dmn": out["dmn"], "size_px": size, "dim": dim,
                              "split": out["split"]})
    out["seconds"] = round(time.perf_counter() - t0, 1)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.json").write_text(json.dumps(out, indent=1) + "\n")
    return out
