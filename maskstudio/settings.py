"""Settings read at the edge (environment, CLI flags) and passed down as one frozen dataclass."""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

#: Folder of the source tree / installed package root that holds ``checkpoints/`` and ``resources/``.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHIPPED_CHECKPOINTS = PROJECT_ROOT / "checkpoints"
RESOURCES = PROJECT_ROOT / "resources"

ENV_MODELS_DIR = "MASKSTUDIO_MODELS_DIR"
ENV_DEVICE = "MASKSTUDIO_DEVICE"


def default_models_dir() -> Path:
    """Per-user folder for installed models (platform conventions), overridable by env var."""
    env = os.environ.get(ENV_MODELS_DIR)
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("MaskStudio", appauthor=False)) / "models"


@dataclass(frozen=True)
class Settings:
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    models_dir: Path = field(default_factory=default_models_dir)
    shipped_checkpoints: Path = SHIPPED_CHECKPOINTS
    resources: Path = RESOURCES

    @classmethod
    def from_env(cls, **overrides) -> "Settings":
        s = cls(device=os.environ.get(ENV_DEVICE, "auto"))
        overrides = {k: v for k, v in overrides.items() if v is not None}
        return replace(s, **overrides)


def resolve_device(name: str = "auto") -> str:
    """``auto`` -> ``cuda`` when a CUDA device exists, else ``cpu``. Imports torch lazily."""
    if name != "auto":
        return name
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
