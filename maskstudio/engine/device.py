"""Device policy: where models live, in which precision, and what happens on GPU out-of-memory.

CPU (default when no CUDA): float32, ``torch.set_num_threads`` set once (``OMP_NUM_THREADS`` wins
when set; otherwise cores − 1, at least 1, at most 16: one core stays free for the GUI thread.
Measured on this project's shared 2-core VM: starter-size DMN stroke at 256², 1 thread p50 99 ms
vs 2 threads 213 ms under load), ``torch.inference_mode`` around every stage.

CUDA (designed, *not measured here* — this project's machine has no GPU):
- models stay resident on the device (loaded once by :class:`~maskstudio.engine.models.ModelSet`),
- ``precision="auto"`` → float16 for the generators (DMN, StyleGAN2, AgileGAN, DualStyleGAN) and
  float32 for encoders and the face parser (BatchNorm/PReLU-heavy IR-SE-50; inversion quality
  matters more than its one-off latency); ``"fp32"`` / ``"fp16"`` / ``"bf16"`` force one dtype,
- 4-D weights and inputs in ``channels_last`` (tensor-core friendly convolutions; on CPU too for
  the DMN and the encoders, where oneDNN is measurably faster with it),
- cuDNN benchmark on, TF32 matmul allowed (``precision="fp32"`` turns TF32 off for parity),
- optional ``torch.compile`` (``compile=True``; mode "max-autotune-no-cudagraphs", or
  "reduce-overhead" = CUDA graphs when ``cuda_graphs=True``) — behind a flag because the first
  call compiles for seconds-to-minutes and every new preview size recompiles.

Out of memory: :func:`is_oom` recognises ``torch.OutOfMemoryError`` (and older "CUDA out of
memory" RuntimeErrors). The pipeline then calls :meth:`DevicePolicy.fall_back_to_cpu`, which
switches the policy to CPU float32 (models are reloaded from disk on the next use, so the
result equals a plain CPU render) and returns the warning text put into the result. Fallback
is possible whenever the policy is not already CPU float32, which also makes it testable on a
CPU-only machine (a CPU bfloat16 policy falls back to CPU float32).
"""
from __future__ import annotations

import contextlib
import os
import threading
import warnings
from dataclasses import dataclass

import torch

from maskstudio.errors import ConfigError

__all__ = ["DevicePolicy", "is_oom", "configure_cpu_threads", "to_channels_last", "GENERATOR_ARCHS",
           "CPU_CHANNELS_LAST_ARCHS"]

#: Architectures whose 4-D weights/inputs go channels_last on CPU too (measured here, 1 thread,
#: CPU time: DMN ngf 16 at 256² 175 -> 110 ms; pSp IR-SE-50 at 256² 2200 -> 1900 ms).
#: StyleGAN-family modulated convs build their weights per call: no gain, not converted.
CPU_CHANNELS_LAST_ARCHS = frozenset({"maskgan_dmn", "psp_encoder", "agilegan_encoder"})

#: Architectures run in reduced precision on CUDA under ``precision="auto"``.
GENERATOR_ARCHS = frozenset({"maskgan_dmn", "stylegan2", "agilegan_generator", "dualstylegan"})

_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
_threads_lock = threading.Lock()
_threads_set = False


def configure_cpu_threads(threads: int | None = None) -> int:
    """Set torch's intra-op thread count once per process (explicit ``threads`` always applies)."""
    global _threads_set
    with _threads_lock:
        if threads is None:
            if _threads_set or os.environ.get("OMP_NUM_THREADS"):
                return torch.get_num_threads()
            n = os.cpu_count() or 1
            threads = max(1, min(16, n - 1))  # one core stays free for the GUI thread
        torch.set_num_threads(max(1, int(threads)))
        _threads_set = True
        return torch.get_num_threads()


def to_channels_last(module: torch.nn.Module) -> torch.nn.Module:
    """channels_last for every 4-D parameter/buffer (``module.to(memory_format=...)`` refuses
    modules holding 5-D tensors, e.g. StyleGAN2's modulated conv weights)."""
    with torch.no_grad():
        for t in list(module.parameters()) + list(module.buffers()):
            if t.dim() == 4:
                t.data = t.data.contiguous(memory_format=torch.channels_last)
    return module


def is_oom(exc: BaseException) -> bool:
    """True for a device out-of-memory error (CUDA/MPS/XPU), whatever torch version raised it."""
    oom_cls = getattr(torch, "OutOfMemoryError", None) or getattr(torch.cuda, "OutOfMemoryError", None)
    if oom_cls is not None and isinstance(exc, oom_cls):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


@dataclass
class _State:
    device: torch.device
    precision: str  # auto | fp32 | fp16 | bf16


class DevicePolicy:
    """Decides device and dtype per model and prepares modules / inputs accordingly."""

    def __init__(
        self,
        device: str = "auto",
        *,
        precision: str = "auto",
        compile: bool = False,
        cuda_graphs: bool = False,
        threads: int | None = None,
    ) -> None:
        if precision not in ("auto", *_DTYPES):
            raise ConfigError(f"precision must be auto, fp32, fp16 or bf16, not {precision!r}")
        dev = self._resolve(device)
        self._state = _State(dev, precision)
        self.compile = bool(compile)
        self.cuda_graphs = bool(cuda_graphs)
        self.fallbacks = 0
        self.generation = 0  # bumps when device/dtype change: model caches key on it
        if dev.type == "cpu":
            configure_cpu_threads(threads)
        elif dev.type == "cuda":
            torch.backends.cudnn.benchmark = True
            torch.backends.cuda.matmul.allow_tf32 = precision != "fp32"
            torch.backends.cudnn.allow_tf32 = precision != "fp32"

    @staticmethod
    def _resolve(name: str) -> torch.device:
        name = (name or "auto").strip().lower()
        if name == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        try:
            dev = torch.device(name)
        except (RuntimeError, ValueError) as e:
            raise ConfigError(f"unknown device {name!r} (auto, cpu, cuda, cuda:N)") from e
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError(f"device {name!r} requested but this PyTorch has no usable CUDA device "
                              f"(torch {torch.__version__}); use --device cpu or auto")
        if dev.type not in ("cpu", "cuda"):
            raise ConfigError(f"unsupported device {name!r} (auto, cpu, cuda, cuda:N)")
        return dev

    # -- queries ------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return self._state.device

    @property
    def precision(self) -> str:
        return self._state.precision

    @property
    def is_cuda(self) -> bool:
        return self._state.device.type == "cuda"

    def dtype_for(self, arch: str) -> torch.dtype:
        p = self._state.precision
        if p != "auto":
            return _DTYPES[p]
        if self.is_cuda and arch in GENERATOR_ARCHS:
            return torch.float16
        return torch.float32

    @property
    def can_fall_back(self) -> bool:
        return not (self._state.device.type == "cpu" and self.dtype_for("maskgan_dmn") == torch.float32
                    and self.dtype_for("psp_encoder") == torch.float32)

    def describe(self) -> str:
        return f"{self.device} ({self.precision})"

    # -- preparation --------------------------------------------------------------------------
    def prepare(self, module: torch.nn.Module, arch: str) -> torch.nn.Module:
        """Move, cast, freeze and (on CUDA) channels_last / optionally compile a loaded module."""
        module = module.to(device=self.device, dtype=self.dtype_for(arch)).eval()
        for p in module.parameters():
            p.requires_grad_(False)
        if self.channels_last(arch):
            to_channels_last(module)
        if self.is_cuda:
            if self.compile:
                mode = "reduce-overhead" if self.cuda_graphs else "max-autotune-no-cudagraphs"
                module = torch.compile(module, mode=mode, dynamic=False)  # type: ignore[assignment]
        return module

    def channels_last(self, arch: str) -> bool:
        return self.is_cuda or arch in CPU_CHANNELS_LAST_ARCHS

    def tensor(self, x: torch.Tensor, arch: str) -> torch.Tensor:
        """An input tensor on the policy device in the dtype of ``arch`` (channels_last where used)."""
        x = x.to(device=self.device, dtype=self.dtype_for(arch), non_blocking=True)
        if x.dim() == 4 and self.channels_last(arch):
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def inference(self) -> contextlib.AbstractContextManager:
        return torch.inference_mode()

    def synchronize(self) -> None:
        if self.is_cuda:
            torch.cuda.synchronize(self.device)

    # -- fallback -----------------------------------------------------------------------------
    def fall_back_to_cpu(self, reason: str) -> str:
        """Switch to CPU float32 after an out-of-memory error; returns the warning text."""
        old = self.describe()
        if self.is_cuda:
            with contextlib.suppress(Exception):
                torch.cuda.empty_cache()
        self._state = _State(torch.device("cpu"), "fp32")
        self.compile = False
        self.fallbacks += 1
        self.generation += 1
        configure_cpu_threads(None)
        msg = f"{reason}: out of memory on {old}; continuing on CPU float32 (slower)"
        warnings.warn(msg, RuntimeWarning, stacklevel=2)
        return msg

    def memory_stats(self) -> dict[str, float]:
        """Peak memory in MiB: CUDA allocator peak on CUDA, process peak RSS on CPU."""
        if self.is_cuda:
            return {"cuda_peak_mib": torch.cuda.max_memory_allocated(self.device) / 2**20}
        try:
            import resource

            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
            return {"cpu_peak_rss_mib": rss / 1024}
        except Exception:  # noqa: BLE001 - not available on every platform
            return {}
