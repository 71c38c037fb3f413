"""Shared training plumbing: seeding, threads, resumable state, model files, progress bars."""
from __future__ import annotations

import json
import os
import random
import sys
from pathlib import Path

import numpy as np
import torch

from maskstudio.errors import CheckpointError, file_error


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def setup_threads(num_threads: int | None) -> None:
    if num_threads:
        torch.set_num_threads(int(num_threads))


def lr_at(step: int, total: int, base_lr: float, warmup: int = 50, final_frac: float = 0.02) -> float:
    """Linear warm-up, then cosine decay to ``final_frac * base_lr`` at ``total`` steps."""
    if step < warmup:
        return float(base_lr * (step + 1) / warmup)
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    return float(base_lr * (final_frac + (1 - final_frac) * 0.5 * (1 + np.cos(np.pi * t))))


def set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    for g in opt.param_groups:
        g["lr"] = lr


def save_state(path: "str | os.PathLike[str]", state: dict) -> None:
    """Training state (optimizer state dicts, counters): a torch file of tensors/containers only,
    so it loads with ``weights_only=True``. Written atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_state(path: "str | os.PathLike[str]") -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling problem is a bad checkpoint
        raise file_error(CheckpointError, path, f"cannot read training state: {e}") from e


def save_model(path: "str | os.PathLike[str]", module: torch.nn.Module, arch: str, config: dict,
               meta: dict | None = None, dtype: torch.dtype | None = None) -> Path:
    """``<path>.safetensors`` + ``<path>.json`` through the project's checkpoint writer."""
    from maskstudio.models.checkpoints import save_checkpoint

    save_checkpoint(path, module, arch, config, meta=meta, dtype=dtype)
    p = Path(path)
    return p if p.suffix == ".safetensors" else p.with_suffix(".safetensors")


def weights_sha256(*modules: torch.nn.Module) -> str:
    """sha256 of the modules' parameters (names, shapes, bytes): equal on every data-parallel
    rank while the replicas stay in sync. (Buffers such as BatchNorm running statistics are
    left out: each rank updates them from its own shard; DDP re-broadcasts rank 0's.)"""
    import hashlib

    h = hashlib.sha256()
    for m in modules:
        for k, v in m.named_parameters():
            t = v.detach().to("cpu").contiguous()
            h.update(f"{k}:{tuple(t.shape)}:{t.dtype}".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def append_jsonl(path: "str | os.PathLike[str]", record: dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


def progress(total: int, initial: int = 0, desc: str = "", enabled: bool = True):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, disable=not enabled, dynamic_ncols=True,
                file=sys.stderr, mininterval=2.0)


def _load_arch(path, arch: str, device: str, dtype=None):
    import torch as _t

    from maskstudio.errors import CheckpointError, file_error
    from maskstudio.models.checkpoints import load_checkpoint

    loaded = load_checkpoint(path, device=device, dtype=dtype or _t.float32)
    if loaded.arch != arch:
        raise file_error(CheckpointError, path, f"is a {loaded.arch!r} checkpoint, expected {arch!r}")
    model = loaded.module.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model, loaded


def load_parser(path, device: str = "cpu"):
    """Frozen, eval-mode :class:`FaceParser` from ``<name>.safetensors`` + ``.json`` (float32)."""
    return _load_arch(path, "face_parser", device)[0]


def load_dmn(path, device: str = "cpu"):
    """``(DenseMappingNetwork, LoadedModel)`` from our checkpoint files, eval mode, float32."""
    return _load_arch(path, "maskgan_dmn", device)
