"""Small real networks for the engine tests, saved with checkpoints.save_checkpoint.

Every model is the real architecture with a narrow config and seeded random weights (no
fixtures, no mocks). Written into a models dir laid out like the model manager's:
``<dir>/<id>/<id>.safetensors|.json``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

SG_SIZE = 32
SG_DIM = 16
SG_CHANNELS = {4: 16, 8: 16, 16: 8, 32: 8}
N_LATENT = 8  # 2*log2(32) - 2
SG_CFG = {"size": SG_SIZE, "style_dim": SG_DIM, "n_mlp": 2, "channel_multiplier": 1, "lr_mlp": 0.01,
          "channels": SG_CHANNELS}


def _save(models_dir: Path, mid: str, module, arch: str, cfg, extras=None, meta=None) -> None:
    from maskstudio.models.checkpoints import save_checkpoint

    folder = models_dir / mid
    folder.mkdir(parents=True, exist_ok=True)
    save_checkpoint(folder / mid, module, arch, cfg, extra_tensors=extras, meta=meta)


def _perturb(module, seed: int) -> None:
    """Random values for every float tensor (so zero-initialised biases matter too)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if t.is_floating_point() and not name.endswith(".kernel"):
                t.add_(0.05 * torch.randn(t.shape, generator=g))


def _seeded_net(build, cfg, seed: int):
    """``build(cfg)`` after ``torch.manual_seed(seed)``, then :func:`_perturb`-ed with ``seed``."""
    torch.manual_seed(seed)
    net = build(cfg)
    _perturb(net, seed)
    return net


def write_dmn(models_dir: Path, mid: str = "dmn_tiny", seed: int = 0, ngf: int = 4, meta=None) -> None:
    from maskstudio.models.dense_mapping import DenseMappingConfig, DenseMappingNetwork

    cfg = DenseMappingConfig(ngf=ngf, n_downsample=4, n_blocks=2)
    net = _seeded_net(DenseMappingNetwork, cfg, seed)
    _save(models_dir, mid, net, "maskgan_dmn", cfg, meta=meta)


def write_parser(models_dir: Path, mid: str = "parser_tiny", seed: int = 0) -> None:
    from maskstudio.models.face_parser import FaceParser, FaceParserConfig

    torch.manual_seed(seed)
    cfg = FaceParserConfig(channels=(4, 4, 8, 8, 8), blocks=(0, 0, 0, 0, 0), decoder=(8, 8, 4, 4), input_size=64)
    _save(models_dir, mid, FaceParser(cfg), "face_parser", cfg)


def _encoder_kwargs() -> dict:
    return dict(n_styles=N_LATENT, input_size=64, units=(1, 1, 1, 1), depths=(8, 8, 16, SG_DIM),
                se_reduction=4, coarse_ind=2, middle_ind=4, decoder=dict(SG_CFG))


def write_psp(models_dir: Path, mid: str = "psp_tiny", seed: int = 1, latent_space: str = "zplus") -> None:
    from maskstudio.models.psp import PSPConfig, PSPEncoderModel

    cfg = PSPConfig(latent_space=latent_space, **_encoder_kwargs())
    net = _seeded_net(PSPEncoderModel, cfg, seed)
    _save(models_dir, mid, net.eval(), "psp_encoder", cfg,
          extras={"latent_avg": 0.1 * torch.randn(N_LATENT, SG_DIM, generator=torch.Generator().manual_seed(seed))})


def write_agile_encoder(models_dir: Path, mid: str = "agile_enc_tiny", seed: int = 2) -> None:
    from maskstudio.models.agilegan_encoder import AgileEncoderConfig, AgileEncoderModel

    cfg = AgileEncoderConfig(**_encoder_kwargs())
    net = _seeded_net(AgileEncoderModel, cfg, seed)
    _save(models_dir, mid, net.eval(), "agilegan_encoder", cfg)


def write_stylegan(models_dir: Path, mid: str = "sg_tiny", seed: int = 3) -> None:
    from maskstudio.models.stylegan2 import StyleGAN2Config, StyleGAN2Generator

    cfg = StyleGAN2Config.from_dict(dict(SG_CFG))
    net = _seeded_net(StyleGAN2Generator, cfg, seed)
    _save(models_dir, mid, net, "stylegan2", cfg)


def write_agile(models_dir: Path, mid: str = "agile_tiny", seed: int = 4) -> None:
    from maskstudio.models.agilegan import AgileGeneratorConfig, AgileGANGenerator

    cfg = AgileGeneratorConfig.from_dict(dict(SG_CFG))
    net = _seeded_net(AgileGANGenerator, cfg, seed)
    _save(models_dir, mid, net, "agilegan_generator", cfg)


def write_dual(models_dir: Path, mid: str = "dual_tiny", seed: int = 5) -> None:
    from maskstudio.models.dualstylegan import DualStyleGAN, DualStyleGANConfig

    cfg = DualStyleGANConfig.from_dict({**SG_CFG, "res_index": 4})
    net = _seeded_net(DualStyleGAN, cfg, seed)
    g = torch.Generator().manual_seed(seed)
    codes = {f"exstyle_code.style{i}": torch.randn(1, N_LATENT, SG_DIM, generator=g) for i in range(2)}
    _save(models_dir, mid, net, "dualstylegan", cfg, extras=codes)


def write_boundary(models_dir: Path, name: str = "boundary_Smiling", seed: int = 6, space: str = "z") -> None:
    folder = models_dir / "boundaries_tiny"
    folder.mkdir(parents=True, exist_ok=True)
    v = np.random.default_rng(seed).standard_normal((1, SG_DIM)).astype(np.float32)
    v /= np.linalg.norm(v)
    stem = name if space == "z" else f"{name}_w_boundary"
    np.save(folder / f"{stem}.npy", v)


def write_all(models_dir: Path) -> None:
    write_dmn(models_dir)
    write_parser(models_dir)
    write_psp(models_dir)
    write_agile_encoder(models_dir)
    write_stylegan(models_dir)
    write_agile(models_dir)
    write_dual(models_dir)
    write_boundary(models_dir)
    write_boundary(models_dir, "age", space="w")


def face_inputs(size: int = 64, seed: int = 0):
    """A blocky synthetic mask (face-like layout of classes) and an exemplar image + mask."""
    yy, xx = np.mgrid[:size, :size]
    c = size / 2
    r = np.hypot(yy - c, xx - c)
    labels = np.zeros((size, size), np.uint8)
    labels[r < 0.45 * size] = 13  # hair
    labels[r < 0.35 * size] = 1   # skin
    labels[(np.abs(yy - 0.4 * size) < 0.05 * size) & (np.abs(xx - 0.35 * size) < 0.07 * size)] = 4
    labels[(np.abs(yy - 0.4 * size) < 0.05 * size) & (np.abs(xx - 0.65 * size) < 0.07 * size)] = 5
    labels[(np.abs(yy - 0.7 * size) < 0.04 * size) & (np.abs(xx - c) < 0.12 * size)] = 11
    rng = np.random.default_rng(seed)
    image = (rng.random((size, size, 3)) * 80 + np.array([150, 110, 90])).clip(0, 255).astype(np.uint8)
    return labels, image
