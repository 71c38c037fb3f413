"""Latent-space operations on StyleGAN2 codes (pure tensor functions, no Qt).

* InterFaceGAN edits (``shared/reference/official_formats.md`` section 5):
  Z space, measured from the hyperplane: ``z + (d - z.n) n`` (:func:`edit_z`);
  W / W+ space, additive: ``w + d n`` on every row or selected rows (:func:`edit_w`).
* Image2StyleGAN (section 6) on W+ codes [B, N, D]: morph ``lam w1 + (1 - lam) w2``,
  crossover (rows < split from the content, rows >= split from the style), expression transfer
  ``w1 + lam (w3 - w2)``, and the W+ embedding optimiser :func:`embed` (Image2StyleGAN loss:
  pixel MSE + VGG-16 perceptual; Image2StyleGAN++ noise-map stage and masked embedding).
* Direction files: InterFaceGAN ``.npy`` (1, 512) boundaries (``*_w_boundary.npy`` = W space,
  others Z space) and e4e/PTI ``.pt`` tensors [1, 512] (W) or [1, 18, 512] (W+), which are often
  saved on a CUDA device: they are loaded with ``map_location="cpu"`` and ``weights_only=True``.
  Problems raise :class:`~maskstudio.errors.LatentFileError` naming the file.
"""
from __future__ import annotations

import math
import os
import pickle
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, cast

import numpy as np
import torch
import torch.nn.functional as F

from maskstudio.errors import LatentFileError, file_error
from maskstudio.files import check_regular_file, read_npy, refuse_html
from maskstudio.roles import DIRECTION_SUFFIXES

__all__ = [
    "SPACES",
    "Direction",
    "edit_z",
    "edit_w",
    "apply_direction",
    "morph",
    "crossover",
    "expression_transfer",
    "direction_name_and_space",
    "load_direction",
    "load_direction_folder",
    "DIRECTION_SUFFIXES",
    "EmbedProgress",
    "EmbedResult",
    "mean_latent",
    "embed",
    "image2stylegan_loss",
    "perceptual_features",
    "masked_mse",
    "stored_noise",
]

SPACES = ("z", "w", "wplus")


@dataclass(frozen=True, eq=False)
class Direction:
    """A semantic direction / boundary normal.

    ``space`` is ``"z"`` (hyperplane rule), ``"w"`` (one [1, D] vector added to every selected
    row) or ``"wplus"`` (a per-row [1, N, D] direction). ``vector`` is float32 on the CPU.
    """

    name: str
    space: str
    vector: torch.Tensor
    source: str | None = None

    def __post_init__(self) -> None:
        if self.space not in SPACES:
            raise ValueError(f"direction space must be one of {SPACES}, got {self.space!r}")
        want = 3 if self.space == "wplus" else 2
        if self.vector.dim() != want or self.vector.shape[0] != 1:
            raise ValueError(f"{self.space} direction needs shape [1, ...] with {want} dims, "
                             f"got {list(self.vector.shape)}")

    @property
    def dim(self) -> int:
        return int(self.vector.shape[-1])


def _as(t: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    return t.to(device=ref.device, dtype=ref.dtype)


def edit_z(z: torch.Tensor, normal: torch.Tensor, distance: float | torch.Tensor) -> torch.Tensor:
    """InterFaceGAN Z-space edit: move z to signed distance ``distance`` from the hyperplane.

    ``z`` [B, D], ``normal`` [1, D] or [D] (a unit normal, as the published boundaries are).
    Result ``z + (distance - z.n) n``; ``distance`` may be a float or a [B] tensor.
    """
    n = _as(normal.reshape(1, -1), z)
    if z.dim() != 2 or z.shape[1] != n.shape[1]:
        raise ValueError(f"edit_z needs z [B, {n.shape[1]}], got {list(z.shape)}")
    d = torch.as_tensor(distance, dtype=z.dtype, device=z.device).reshape(-1, 1)
    proj = (z * n).sum(dim=1, keepdim=True)
    return z + (d - proj) * n


def _row_mask(n_rows: int, rows: Iterable[int] | None, ref: torch.Tensor) -> torch.Tensor:
    mask = torch.zeros(n_rows, dtype=ref.dtype, device=ref.device)
    if rows is None:
        mask.fill_(1.0)
        return mask
    for r in rows:
        r = int(r)
        if not -n_rows <= r < n_rows:
            raise IndexError(f"row {r} out of range for {n_rows} latent rows")
        mask[r] = 1.0
    return mask


def edit_w(
    w: torch.Tensor,
    direction: torch.Tensor,
    factor: float | torch.Tensor,
    rows: Iterable[int] | None = None,
) -> torch.Tensor:
    """Additive W / W+ edit ``w + factor * direction``.

    ``w`` [B, D] (W) or [B, N, D] (W+). ``direction`` [1, D]/[D] (added to every row, or only to
    ``rows`` for W+) or [1, N, D] (per-row; ``rows`` then selects which rows change).
    ``factor`` is a float or a [B] tensor.
    """
    f = torch.as_tensor(factor, dtype=w.dtype, device=w.device)
    d = _as(direction, w)
    if w.dim() == 2:
        if rows is not None:
            raise ValueError("rows can only be selected on W+ codes [B, N, D]")
        if d.numel() != w.shape[1]:
            raise ValueError(f"direction {list(d.shape)} does not fit W code {list(w.shape)}")
        return w + f.reshape(-1, 1) * d.reshape(1, -1)
    if w.dim() != 3:
        raise ValueError(f"expected W [B, D] or W+ [B, N, D], got {list(w.shape)}")
    n_rows, dim = w.shape[1], w.shape[2]
    if d.numel() == dim:
        d = d.reshape(1, 1, dim)
    elif d.numel() == n_rows * dim:
        d = d.reshape(1, n_rows, dim)
    else:
        raise ValueError(f"direction {list(direction.shape)} does not fit W+ code {list(w.shape)}")
    mask = _row_mask(n_rows, rows, w).reshape(1, n_rows, 1)
    return w + f.reshape(-1, 1, 1) * d * mask


def apply_direction(
    code: torch.Tensor,
    direction: Direction,
    amount: float | torch.Tensor,
    rows: Iterable[int] | None = None,
) -> torch.Tensor:
    """Edit ``code`` with ``direction`` by its space's rule.

    Z directions act on Z codes [B, D] (``amount`` = target distance from the hyperplane) or, row
    by row, on Z+ codes [B, N, D] (``rows`` selects the rows). W / W+ directions add
    ``amount * vector`` (see :func:`edit_w`).
    """
    if direction.space == "z":
        if code.dim() == 2:
            if rows is not None:
                raise ValueError("rows can only be selected on Z+ codes [B, N, D]")
            return edit_z(code, direction.vector, amount)
        if code.dim() != 3:
            raise ValueError(f"expected Z [B, D] or Z+ [B, N, D], got {list(code.shape)}")
        b, n, dim = code.shape
        amt = torch.as_tensor(amount, dtype=code.dtype, device=code.device).reshape(-1)
        amt = amt.expand(b).repeat_interleave(n)
        edited = edit_z(code.reshape(b * n, dim), direction.vector, amt).reshape(b, n, dim)
        mask = _row_mask(n, rows, code).reshape(1, n, 1)
        return code + (edited - code) * mask
    return edit_w(code, direction.vector, amount, rows)


def morph(w1: torch.Tensor, w2: torch.Tensor, lam: float | torch.Tensor) -> torch.Tensor:
    """Image2StyleGAN morph: ``lam * w1 + (1 - lam) * w2`` (lam = 1 gives w1)."""
    if w1.shape != w2.shape:
        raise ValueError(f"morph needs equal shapes, got {list(w1.shape)} and {list(w2.shape)}")
    lam_t = torch.as_tensor(lam, dtype=w1.dtype, device=w1.device)
    return lam_t * w1 + (1 - lam_t) * w2


def crossover(content: torch.Tensor, style: torch.Tensor, split: int = 9) -> torch.Tensor:
    """Style transfer by layer crossover on W+ [B, N, D]: rows < ``split`` from ``content``,
    rows >= ``split`` from ``style`` (default 9: rows 0..8 content, 9..17 style)."""
    if content.shape != style.shape or content.dim() != 3:
        raise ValueError(f"crossover needs two W+ codes of equal shape [B, N, D], got "
                         f"{list(content.shape)} and {list(style.shape)}")
    n = content.shape[1]
    if not 0 <= split <= n:
        raise ValueError(f"split {split} outside 0..{n}")
    return torch.cat([content[:, :split], style[:, split:]], dim=1)


def expression_transfer(
    w1: torch.Tensor, w2: torch.Tensor, w3: torch.Tensor, lam: float | torch.Tensor = 1.0
) -> torch.Tensor:
    """Image2StyleGAN expression transfer: ``w1 + lam * (w3 - w2)`` (w2 neutral, w3 expression)."""
    if not (w1.shape == w2.shape == w3.shape):
        raise ValueError("expression_transfer needs three codes of equal shape")
    lam_t = torch.as_tensor(lam, dtype=w1.dtype, device=w1.device)
    return w1 + lam_t * (w3 - w2)


# --------------------------------------------------------------------------- direction files


def direction_name_and_space(path: str | os.PathLike[str]) -> tuple[str, str | None]:
    """Display name and space implied by a file name.

    ``boundary_Smiling.npy`` -> ("Smiling", "z"); ``age_w_boundary.npy`` -> ("age", "w");
    ``smile.pt`` -> ("smile", None: decided by the tensor's shape).
    """
    p = Path(path)
    stem, suffix = p.stem, p.suffix.lower()
    space: str | None = None
    name = stem
    if stem.endswith("_w_boundary"):
        name, space = stem[: -len("_w_boundary")], "w"
    elif stem.endswith("_boundary"):
        name = stem[: -len("_boundary")]
    if name.startswith("boundary_"):
        name = name[len("boundary_"):]
    if space is None and suffix == ".npy":
        space = "z"
    return (name or stem), space


#: Largest direction file read (a W+ direction for 1024 px is 18 x 512 floats: 36 kB).
MAX_DIRECTION_BYTES = 64 << 20


def _read_array(path: Path) -> np.ndarray | torch.Tensor:
    suffix = path.suffix.lower()
    check_regular_file(path, "direction file", LatentFileError)
    refuse_html(path, "a direction file", LatentFileError)
    if suffix == ".npy":
        # header checked against the data first: a header claiming 10^12 values is refused
        return read_npy(path, error=LatentFileError, max_bytes=MAX_DIRECTION_BYTES)
    if suffix in (".pt", ".pth"):
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as e:
            raise file_error(LatentFileError, path,
                             "refused: the file holds more than plain tensors (weights_only loading)") from e
        except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as e:
            raise file_error(LatentFileError, path, f"not a readable torch tensor file ({e})") from e
        except MemoryError as e:
            raise file_error(LatentFileError, path, "not a direction: it asks for more memory than there is") from e
        if isinstance(obj, dict) and len(obj) == 1:
            (obj,) = obj.values()
        if not isinstance(obj, torch.Tensor):
            raise file_error(LatentFileError, path, f"expected a tensor, found {type(obj).__name__}")
        return obj
    raise file_error(LatentFileError, path, f"unsupported direction file type {suffix or '(none)'!r} "
                                            f"(expected one of {', '.join(DIRECTION_SUFFIXES)})")


def load_direction(
    path: str | os.PathLike[str],
    *,
    space: str | None = None,
    name: str | None = None,
    dim: int = 512,
    n_latent: int | None = None,
) -> Direction:
    """Load one boundary / direction file as a :class:`Direction` (float32, CPU).

    Accepted: ``.npy`` (1, dim) or (dim,) float arrays (InterFaceGAN; Z space unless the name ends
    in ``_w_boundary``); ``.pt``/``.pth`` bare tensors (or a one-entry dict) of shape [1, dim] /
    [dim] (W) or [1, N, dim] / [N, dim] with N > 1 (W+). ``space`` overrides the inferred space.
    ``n_latent`` (if given) is the required N of W+ directions.
    """
    p = Path(path)
    if not p.is_file():
        raise file_error(LatentFileError, p, "no such file")
    raw = _read_array(p)
    if isinstance(raw, np.ndarray):
        if raw.dtype.kind not in "fiu":
            raise file_error(LatentFileError, p, f"values must be real numbers, found dtype {raw.dtype}")
        arr = torch.from_numpy(np.ascontiguousarray(raw))
    else:
        arr = raw
        if arr.dtype == torch.bool or arr.dtype.is_complex:
            raise file_error(LatentFileError, p, f"values must be real numbers, found dtype {arr.dtype}")
    vec = arr.detach().to("cpu", torch.float32).contiguous()
    shape = list(arr.shape)
    inferred_name, inferred_space = direction_name_and_space(p)
    if shape == [dim] or shape == [1, dim]:
        vec = vec.reshape(1, dim)
        shape_space = "w"
    elif len(shape) == 3 and shape[0] == 1 and shape[2] == dim and shape[1] > 1:
        shape_space = "wplus"
    elif len(shape) == 2 and shape[1] == dim and shape[0] > 1:
        vec = vec.reshape(1, shape[0], dim)
        shape_space = "wplus"
    else:
        raise file_error(LatentFileError, p, f"shape {shape} is not a direction: expected [1, {dim}], "
                                             f"[{dim}] or [1, N, {dim}]")
    if space is not None and space not in SPACES:
        raise ValueError(f"space must be one of {SPACES}, got {space!r}")
    chosen = space or (inferred_space if shape_space == "w" and inferred_space else shape_space)
    if (chosen == "wplus") != (shape_space == "wplus"):
        raise file_error(LatentFileError, p, f"shape {shape} does not fit a {chosen!r} direction")
    if chosen == "wplus" and n_latent is not None and vec.shape[1] != n_latent:
        raise file_error(LatentFileError, p, f"W+ direction has {vec.shape[1]} rows, the generator "
                                             f"needs {n_latent}")
    if not torch.isfinite(vec).all():
        raise file_error(LatentFileError, p, "contains NaN or infinite values")
    if float(vec.abs().max()) == 0.0:
        raise file_error(LatentFileError, p, "is all zeros (not a direction)")
    return Direction(name=name or inferred_name, space=chosen, vector=vec, source=os.fspath(p))


def load_direction_folder(
    folder: str | os.PathLike[str],
    *,
    dim: int = 512,
    n_latent: int | None = None,
    strict: bool = True,
) -> tuple[dict[str, Direction], list[LatentFileError]]:
    """Load every ``.npy``/``.pt``/``.pth`` file of ``folder`` (not recursive), keyed by file stem.

    Returns ``(directions, problems)``. With ``strict`` the first bad file raises its
    :class:`LatentFileError`; otherwise bad files are skipped and their errors returned.
    Two files with the same stem (``smile.npy`` + ``smile.pt``) are a problem too.
    """
    root = Path(folder)
    if not root.is_dir():
        raise file_error(LatentFileError, root, "not a folder")
    out: dict[str, Direction] = {}
    problems: list[LatentFileError] = []
    for p in sorted(root.iterdir()):
        if not p.is_file() or p.suffix.lower() not in DIRECTION_SUFFIXES:
            continue
        try:
            if p.stem in out:
                raise file_error(LatentFileError, p, f"duplicate direction name {p.stem!r} "
                                                     f"(also {out[p.stem].source})")
            out[p.stem] = load_direction(p, dim=dim, n_latent=n_latent)
        except LatentFileError as e:
            if strict:
                raise
            problems.append(e)
    return out, problems


# --------------------------------------------------------------------------- embedding


@dataclass(frozen=True)
class EmbedProgress:
    step: int  # 1-based number of finished optimisation steps (both stages together)
    steps: int  # all steps of the run (W+ steps + noise steps)
    loss: float
    stage: str = "wplus"  # "wplus" | "noise"

    @property
    def fraction(self) -> float:
        return self.step / self.steps if self.steps else 1.0


@dataclass
class EmbedResult:
    wplus: torch.Tensor  # [1, N, D], detached
    losses: list[float] = field(default_factory=list)  # loss of each finished W+ step
    cancelled: bool = False
    image: torch.Tensor | None = None  # generator output for ``wplus`` (+ ``noise``), detached
    noise: list[torch.Tensor] | None = None  # optimised noise maps (noise stage), detached
    noise_losses: list[float] = field(default_factory=list)  # pixel loss of each noise step


FeatureNet = Callable[[torch.Tensor], "torch.Tensor | Sequence[torch.Tensor]"]


def _features(net: FeatureNet, x: torch.Tensor) -> list[torch.Tensor]:
    out = net(x)
    return [out] if isinstance(out, torch.Tensor) else list(out)


class _StyleGenerator(Protocol):
    """The generator attributes embedding reads (set in ``__init__`` by the rosinality-style
    generators; ``num_layers``/``noises`` only for the noise stage, ``style_dim`` optional)."""

    n_latent: int
    num_layers: int
    style_dim: int
    noises: torch.nn.Module

    def get_latent(self, z: torch.Tensor) -> torch.Tensor: ...


def _style_generator(generator: torch.nn.Module) -> _StyleGenerator:
    """``generator`` seen through :class:`_StyleGenerator`: nn.Module types attributes it does
    not declare as ``Tensor | Module``, these are plain ints and a method."""
    return cast(_StyleGenerator, generator)


def _render(generator: torch.nn.Module, wplus: torch.Tensor,
            noise: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
    if noise is None:
        out = generator([wplus], input_is_latent=True, randomize_noise=False)
    else:
        out = generator([wplus], input_is_latent=True, randomize_noise=False, noise=list(noise))
    return out[0] if isinstance(out, (tuple, list)) else out


def stored_noise(generator: torch.nn.Module) -> list[torch.Tensor]:
    """The generator's stored noise maps ``noises.noise_i`` (what ``randomize_noise=False`` uses)."""
    if not hasattr(generator, "noises") or not hasattr(generator, "num_layers"):
        raise ValueError(f"{type(generator).__name__} has no stored noise maps to optimise")
    g = _style_generator(generator)
    n = int(g.num_layers)
    return [getattr(g.noises, f"noise_{i}") for i in range(n)]


@torch.no_grad()
def mean_latent(generator: torch.nn.Module, n: int = 4096, seed: int = 0) -> torch.Tensor:
    """Mean of the mapping network over ``n`` seeded z draws -> [1, D]."""
    gen = _style_generator(generator)
    style_dim = int(gen.style_dim) if hasattr(generator, "style_dim") else 512
    ref = next(generator.parameters())
    g = torch.Generator(device="cpu").manual_seed(int(seed))
    z = torch.randn(n, style_dim, generator=g).to(ref)
    return gen.get_latent(z).mean(0, keepdim=True)


def masked_mse(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error, over the pixels where ``mask`` [1,1,H,W] is 1 when given."""
    if mask is None:
        return F.mse_loss(a, b)
    m = mask.to(a)
    return ((a - b) ** 2 * m).sum() / (m.sum() * a.shape[1]).clamp_min(1.0)


def _shrink(x: torch.Tensor, size: int | None) -> torch.Tensor:
    if size is None or max(x.shape[-2:]) <= size:
        return x
    return F.interpolate(x, size=(size, size), mode="area")


def image2stylegan_loss(img: torch.Tensor, target: torch.Tensor, *, mask: torch.Tensor | None = None,
                        feature_net: FeatureNet | None = None,
                        target_features: Sequence[torch.Tensor] | None = None,
                        mse_weight: float = 1.0, perceptual_weight: float = 1.0,
                        perceptual_size: int | None = 256) -> torch.Tensor:
    """The Image2StyleGAN loss: ``mse_weight`` · pixel MSE + ``perceptual_weight`` · Σ_layers
    MSE(features(img), features(target)) (the paper: VGG-16 conv1_1, conv1_2, conv3_2, conv4_2).
    ``mask`` (Image2StyleGAN++ masked embedding): only those pixels count; the images are
    multiplied by it before the feature network. Images larger than ``perceptual_size`` are
    area-shrunk for the feature network (cost). ``target_features``: precomputed for the
    (masked, shrunk) target."""
    loss = mse_weight * masked_mse(img, target, mask)
    if feature_net is not None and perceptual_weight:
        if target_features is None:
            target_features = perceptual_features(feature_net, target, mask, perceptual_size)
        for a, b in zip(perceptual_features(feature_net, img, mask, perceptual_size), target_features):
            loss = loss + perceptual_weight * F.mse_loss(a, b)
    return loss


def perceptual_features(feature_net: FeatureNet, x: torch.Tensor, mask: torch.Tensor | None = None,
                        perceptual_size: int | None = 256) -> list[torch.Tensor]:
    """Features of ``x`` (masked, then shrunk to ``perceptual_size``) as the loss compares them."""
    if mask is not None:
        x = x * mask.to(x)
    return _features(feature_net, _shrink(x, perceptual_size))


def _prepare_mask(mask: torch.Tensor | None, target: torch.Tensor) -> torch.Tensor | None:
    if mask is None:
        return None
    m = torch.as_tensor(mask).to(device=target.device, dtype=target.dtype)
    while m.dim() < 4:
        m = m.unsqueeze(0)
    if m.shape[:2] != (1, 1):
        raise ValueError(f"mask must be [H, W] or [1, 1, H, W], got {list(torch.as_tensor(mask).shape)}")
    if m.shape[-2:] != target.shape[-2:]:
        m = F.interpolate(m, size=target.shape[-2:], mode="nearest")
    m = (m > 0.5).to(target.dtype)
    if float(m.sum()) == 0:
        raise ValueError("the embedding mask selects no pixel")
    return m


def embed(
    generator: torch.nn.Module,
    target_image: torch.Tensor,
    steps: int = 1000,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    callback: Callable[[EmbedProgress], bool | None] | None = None,
    *,
    lr: float = 0.01,
    feature_net: FeatureNet | None = None,
    perceptual_weight: float = 1.0,
    mse_weight: float = 1.0,
    init_wplus: torch.Tensor | None = None,
    n_mean: int = 4096,
    seed: int = 0,
    mask: torch.Tensor | None = None,
    noise_steps: int = 0,
    noise_lr: float = 0.05,
    perceptual_size: int | None = 256,
) -> EmbedResult:
    """Image2StyleGAN embedding: optimise a W+ code so that ``generator`` reproduces the target.

    ``generator``: a StyleGAN2 generator (``forward([wplus], input_is_latent=True,
    randomize_noise=False, noise=...)``, ``get_latent``, ``n_latent``); its weights are not
    changed and get no gradients. ``target_image`` [1, 3, H, W] in [-1, 1]; the generator output
    is resized (area) to H x W when sizes differ. Start: the mean latent over ``n_mean`` seeded z
    (or ``init_wplus``). Loss: ``loss_fn(image, target)`` if given, else
    :func:`image2stylegan_loss` (``mse_weight`` · pixel MSE + ``perceptual_weight`` · feature
    MSEs of ``feature_net`` when given). Adam, ``lr``.

    Image2StyleGAN++ options: ``mask`` ([H, W] or [1, 1, H, W], 1 = fit; any size, resized
    nearest): only that region is fitted (masked embedding). ``noise_steps`` > 0: after the W+
    stage, the W+ code is kept and the generator's noise maps (starting from the stored ones)
    are optimised for that many steps with Adam(``noise_lr``) on the pixel MSE alone (masked),
    as the paper's sequential W+ -> noise algorithm does; the result has ``noise``.

    ``callback(EmbedProgress)`` runs after every step of both stages; returning True cancels
    (the result then has ``cancelled=True`` and the best code / noise so far).
    """
    if target_image.dim() != 4 or target_image.shape[0] != 1:
        raise ValueError(f"target_image must be [1, C, H, W], got {list(target_image.shape)}")
    ref = next(generator.parameters())
    target = target_image.detach().to(ref)
    m = _prepare_mask(mask, target)
    base_noise = stored_noise(generator) if noise_steps > 0 else None
    n_latent = int(_style_generator(generator).n_latent)
    if init_wplus is None:
        w0 = mean_latent(generator, n_mean, seed)
        w0 = w0.unsqueeze(1).repeat(1, n_latent, 1)
    else:
        w0 = init_wplus.detach().to(ref).reshape(1, n_latent, -1)
    wplus = w0.clone().requires_grad_(True)
    opt = torch.optim.Adam([wplus], lr=lr)
    target_feats = None
    if loss_fn is None and feature_net is not None and perceptual_weight:
        with torch.no_grad():
            target_feats = [f.detach() for f in perceptual_features(feature_net, target, m, perceptual_size)]

    def fit(img: torch.Tensor) -> torch.Tensor:
        if img.shape[-2:] != target.shape[-2:]:
            img = F.interpolate(img, size=target.shape[-2:], mode="area")
        return img

    def compute_loss(img: torch.Tensor) -> torch.Tensor:
        img = fit(img)
        if loss_fn is not None:
            return loss_fn(img, target)
        return image2stylegan_loss(img, target, mask=m, feature_net=feature_net if target_feats else None,
                                   target_features=target_feats, mse_weight=mse_weight,
                                   perceptual_weight=perceptual_weight, perceptual_size=perceptual_size)

    total = steps + max(0, noise_steps)
    losses: list[float] = []
    best_loss, best_w = math.inf, w0.clone()
    cancelled = False
    with torch.enable_grad():
        for step in range(1, steps + 1):
            loss = compute_loss(_render(generator, wplus))
            (grad,) = torch.autograd.grad(loss, [wplus])
            value = float(loss.detach())
            if value < best_loss:
                best_loss, best_w = value, wplus.detach().clone()
            opt.zero_grad(set_to_none=True)
            wplus.grad = grad
            opt.step()
            losses.append(value)
            if callback is not None and callback(EmbedProgress(step, total, value, "wplus")):
                cancelled = True
                break
    if not cancelled and steps > 0:  # the last update has not been scored yet
        with torch.no_grad():
            value = float(compute_loss(_render(generator, wplus)))
        if value < best_loss:
            best_loss, best_w = value, wplus.detach().clone()

    best_noise: list[torch.Tensor] | None = None
    noise_losses: list[float] = []
    if base_noise is not None and not cancelled:
        best_noise = [n.detach().clone() for n in base_noise]
        noise = [n.detach().clone().requires_grad_(True) for n in base_noise]
        nopt = torch.optim.Adam(noise, lr=noise_lr)

        def pixel_loss(ns: Sequence[torch.Tensor]) -> torch.Tensor:
            return masked_mse(fit(_render(generator, best_w, ns)), target, m)

        with torch.no_grad():
            best_pix = float(pixel_loss(best_noise))
        with torch.enable_grad():
            for k in range(1, noise_steps + 1):
                loss = pixel_loss(noise)
                grads = torch.autograd.grad(loss, noise)
                value = float(loss.detach())
                if value < best_pix:
                    best_pix, best_noise = value, [n.detach().clone() for n in noise]
                nopt.zero_grad(set_to_none=True)
                for n, g in zip(noise, grads):
                    n.grad = g
                nopt.step()
                noise_losses.append(value)
                if callback is not None and callback(EmbedProgress(steps + k, total, value, "noise")):
                    cancelled = True
                    break
        if not cancelled:
            with torch.no_grad():
                value = float(pixel_loss(noise))
            if value < best_pix:
                best_pix, best_noise = value, [n.detach().clone() for n in noise]
    with torch.no_grad():
        image = _render(generator, best_w, best_noise)
    return EmbedResult(wplus=best_w, losses=losses, cancelled=cancelled, image=image, noise=best_noise,
                       noise_losses=noise_losses)
