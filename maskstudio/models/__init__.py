"""maskstudio.models — one network per module, plain PyTorch, official state_dict key names.

Networks are imported lazily through :mod:`maskstudio.models.registry` (``build(arch, config)``);
:mod:`maskstudio.models.checkpoints` reads official pickles safely and reads/writes our
safetensors + JSON checkpoints. Importing this package imports no network module.
"""
from maskstudio.models.registry import ARCHITECTURES, build

__all__ = ["ARCHITECTURES", "build"]
