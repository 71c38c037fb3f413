"""Official-layout checkpoint files built in the tests from our own networks (tiny configs).

Each ``write_*`` saves a file in the layout the authors publish (bare state_dict,
``{g_ema, latent_avg}``, ``{state_dict, opts, latent_avg}``, exstyle dict ``.npy``, bare
direction tensors) with ``torch.save`` / ``np.save``, and returns ``(path, module)``.
``tiny_registry(store_registry, **overrides)`` swaps registry configs for these tiny ones.
"""
from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np
import torch

from maskstudio.io.registry import RegistryEntry, RegistryFile
from maskstudio.models import registry

TINY = {
    "maskgan_dmn": {"ngf": 4, "n_downsample": 2, "n_blocks": 1, "label_nc": 19, "output_nc": 3},
    "stylegan2": {"size": 8, "style_dim": 8, "n_mlp": 2, "channel_multiplier": 2, "channels": {4: 8, 8: 8}},
    "psp_encoder": {"units": [1, 1, 1, 1], "depths": [8, 8, 8, 16], "se_reduction": 4, "n_styles": 4,
                    "input_size": 64, "coarse_ind": 1, "middle_ind": 2, "latent_space": "zplus",
                    "decoder": {"size": 8, "style_dim": 16, "n_mlp": 1, "channels": {4: 8, 8: 8}}},
    "agilegan_encoder": {"units": [1, 1, 1, 1], "depths": [8, 8, 8, 16], "se_reduction": 4, "n_styles": 4,
                         "input_size": 64, "coarse_ind": 1, "middle_ind": 2,
                         "decoder": {"size": 8, "style_dim": 16, "n_mlp": 1, "channels": {4: 8, 8: 8}}},
    "dualstylegan": {"size": 8, "style_dim": 512, "n_mlp": 1, "channels": {4: 4, 8: 4}, "res_index": 2},
    "agilegan_generator": {"size": 128, "style_dim": 8, "n_mlp": 1,
                           "channels": {4: 4, 8: 4, 16: 4, 32: 4, 64: 4, 128: 4}},
}


def build_tiny(arch: str, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    m = registry.build(arch, TINY[arch]).eval()
    with torch.no_grad():  # non-trivial values everywhere (zero-initialised biases too)
        for t in m.state_dict().values():
            if t.is_floating_point():
                t.add_(0.05 * torch.randn_like(t))
    return m


def write_dmn(path: Path) -> tuple[Path, torch.nn.Module]:
    m = build_tiny("maskgan_dmn")
    torch.save(m.state_dict(), path)
    return path, m


def write_stylegan2(path: Path, seed: int = 1) -> tuple[Path, torch.nn.Module]:
    m = build_tiny("stylegan2", seed)
    torch.save({"g_ema": m.state_dict(), "latent_avg": torch.randn(8)}, path)
    return path, m


def write_psp(path: Path) -> tuple[Path, torch.nn.Module]:
    m = build_tiny("psp_encoder", 2)
    opts = {"start_from_latent_avg": False, "encoder_type": "GradualStyleEncoder", "input_nc": 3,
            "output_size": 8, "lr": 1e-4}
    torch.save({"state_dict": m.state_dict(), "opts": opts, "latent_avg": torch.randn(4, 16)}, path)
    return path, m


def write_dualstylegan(folder: Path) -> tuple[Path, Path, torch.nn.Module]:
    m = build_tiny("dualstylegan", 3)
    g = folder / "generator.pt"
    torch.save({"g_ema": m.state_dict()}, g)
    rng = np.random.default_rng(0)
    n = m.n_latent  # the official codes are [1, 18, 512] for the 1024 px generator
    codes = {"Cartoons_00038_07.jpg": rng.standard_normal((1, n, 512)).astype(np.float32),
             "Cartoons_00002_01.jpg": rng.standard_normal((1, n, 512)).astype(np.float32)}
    c = folder / "refined_exstyle_code.npy"
    np.save(c, codes, allow_pickle=True)
    return g, c, m


def write_directions(folder: Path) -> dict[str, bytes]:
    g = torch.Generator().manual_seed(5)
    out = {}
    for name, shape in (("age.pt", (1, 512)), ("smile.pt", (1, 512)), ("pose.pt", (1, 18, 512))):
        t = torch.randn(*shape, generator=g)
        torch.save(t / t.norm(), folder / name)
        out[name] = (folder / name).read_bytes()
    return out


class Payload:
    """Unpickling this object would run code that creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('code ran')",))


def write_malicious(path: Path, marker: Path) -> Path:
    torch.save({"g_ema": {"conv1.conv.weight": torch.zeros(1)}, "payload": Payload(marker)}, path)
    return path


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tiny_registry(base: dict[str, RegistryEntry], **changes: dict) -> dict[str, RegistryEntry]:
    """Copy of ``base`` with every model's config made tiny; ``changes[id]`` = dict of fields
    to replace (``files`` may be a list of dicts with name/urls/sha256 overrides)."""
    out = {}
    for mid, e in base.items():
        cfg = e.config
        if e.arch in TINY and not e.shipped:
            cfg = dict(TINY[e.arch])
            if e.arch == "psp_encoder":
                cfg["latent_space"] = (e.config or {}).get("latent_space", "zplus")
        e = dataclasses.replace(e, config=cfg)
        if mid in changes:
            ch = dict(changes[mid])
            if "files" in ch:
                files = []
                for rf in e.files:
                    upd = ch["files"].get(rf.name, {})
                    files.append(dataclasses.replace(rf, **{k: (tuple(v) if k == "urls" else v)
                                                            for k, v in upd.items()}))
                ch["files"] = tuple(files)
            e = dataclasses.replace(e, **ch)
        out[mid] = e
    return out


__all__ = ["TINY", "build_tiny", "write_dmn", "write_stylegan2", "write_psp", "write_dualstylegan",
           "write_directions", "write_malicious", "sha256", "tiny_registry", "RegistryFile"]
