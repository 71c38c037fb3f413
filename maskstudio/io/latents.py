"""Latent files: a W+ latent written as ``.npy`` (the official [1, n_latent, 512] float32 layout)
or ``.pt`` (a torch tensor). The one writer used by the CLI (``render --save-latent``) and the
GUI (File > Export latents). Reading directions / boundaries is
:func:`maskstudio.models.latent_ops.load_direction`.
"""
from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from maskstudio.errors import LatentFileError, file_error
from maskstudio.files import atomic_write

__all__ = ["LATENT_DIM", "write_latent"]

#: Width of a StyleGAN2 W / W+ row.
LATENT_DIM = 512


def write_latent(path: str | os.PathLike[str], latent: np.ndarray, *, dim: int | None = LATENT_DIM,
                 parents: bool = False) -> Path:
    """Write a W+ latent ``[1, n_latent, dim]`` (``[n_latent, dim]`` gets the leading 1).

    ``.pt`` suffix: a torch tensor (``torch.save``); anything else is written as ``.npy``
    (the suffix is changed to ``.npy`` when it is another one). ``dim``: the row width required
    (None: any, e.g. for tiny test models). Atomic; ``parents`` creates
    missing folders. Returns the path written; :class:`LatentFileError` on a wrong shape or a
    failed write.
    """
    path = Path(path)
    lat = np.asarray(latent, dtype=np.float32)
    if lat.ndim == 2:
        lat = lat[None]
    if lat.ndim != 3 or lat.shape[0] != 1 or (dim is not None and lat.shape[2] != dim):
        raise file_error(LatentFileError, path, f"latent must be [1, n_latent, {dim or 'dim'}], got {list(lat.shape)}")
    buf = io.BytesIO()
    if path.suffix.lower() == ".pt":
        import torch

        torch.save(torch.from_numpy(np.ascontiguousarray(lat).copy()), buf)
    else:
        if path.suffix.lower() != ".npy":
            path = path.with_suffix(".npy")
        np.save(buf, np.ascontiguousarray(lat), allow_pickle=False)
    return atomic_write(path, buf.getvalue(), parents=parents, error=LatentFileError)
