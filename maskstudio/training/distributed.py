"""Data-parallel plumbing for ``torchrun``: process group, per-rank device, sharding, rank-0 I/O.

``torchrun --nproc-per-node N -m maskstudio train dmn ...`` starts N processes with ``RANK``,
``LOCAL_RANK`` and ``WORLD_SIZE`` in their environment; :func:`setup` then joins the process
group (NCCL when the device is CUDA, gloo on CPU) and gives each process its own GPU
(``cuda:<LOCAL_RANK>``). Without those variables (or with ``WORLD_SIZE=1``) nothing is
initialised and everything runs exactly as a single process.

Sharding is the DistributedSampler rule, on top of the trainers' deterministic batches: every
rank draws the same global batch of ``batch_size × world_size`` indices and keeps every
``world_size``-th one from its rank on (:func:`shard`), so the ranks see disjoint samples and
the union is the global batch. Only rank 0 writes files (state, model, history, split).
"""
from __future__ import annotations

import atexit
import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Sequence, TypeVar

import torch

from maskstudio.errors import ConfigError

_T = TypeVar("_T")


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: str = "cpu"
    backend: str | None = None   # None: single process, no process group
    owns_group: bool = False     # setup() created the group (destroyed at process exit)

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_world() -> tuple[int, int, int]:
    """(rank, world_size, local_rank) from the torchrun environment (0, 1, 0 without it)."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError as e:
        raise ConfigError(f"torchrun environment: RANK/LOCAL_RANK/WORLD_SIZE must be integers ({e})") from e
    if world < 1 or not 0 <= rank < world:
        raise ConfigError(f"torchrun environment: RANK {rank} is not in 0..WORLD_SIZE-1 ({world})")
    return rank, world, local


def shard_for_this_rank(files: Sequence[_T], device: str | None) -> tuple[list[_T], str | None]:
    """Batch ``render``/``parse`` under torchrun: this rank's share of ``files`` (``shard``) and
    its device (a CUDA request becomes ``cuda:<LOCAL_RANK>``, one GPU each). No process group is
    needed: the ranks share nothing but the file list. Outside torchrun: everything, unchanged."""
    rank, world, local = env_world()
    if world == 1:
        return list(files), device
    if device is not None and str(device).startswith("cuda") and ":" not in str(device):
        device = f"cuda:{local}"
    elif device in (None, "auto") and torch.cuda.is_available():
        device = f"cuda:{local % torch.cuda.device_count()}"
    return shard(files, rank, world), device


def setup(device: str) -> DistInfo:
    """Join the process group when started by torchrun with more than one process.

    ``device`` is the requested one (``cpu``, ``cuda``, ``cuda:N``); under torchrun a CUDA request
    becomes ``cuda:<LOCAL_RANK>`` (one GPU per process)."""
    import torch.distributed as dist

    rank, world, local = env_world()
    if world == 1:
        return DistInfo(device=device)
    cuda = str(device).startswith("cuda")
    if cuda:
        if not torch.cuda.is_available():
            raise ConfigError("--device cuda under torchrun, but no CUDA device is available")
        if local >= torch.cuda.device_count():
            raise ConfigError(f"LOCAL_RANK {local} but only {torch.cuda.device_count()} CUDA device(s): "
                              f"use --nproc-per-node <= the GPU count")
        device = f"cuda:{local}"
        torch.cuda.set_device(local)
    backend = "nccl" if cuda else "gloo"
    owns = False
    if not dist.is_initialized():
        # kept for the life of the process (a second trainer call reuses it: joining a new group
        # after destroying one under the same torchrun rendezvous hangs), destroyed at exit
        dist.init_process_group(backend=backend)
        atexit.register(_destroy)
        owns = True
    return DistInfo(rank, world, local, device, backend, owns)


def _destroy() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def rank_log(log, info: DistInfo):
    """``log`` on the main rank, a no-op elsewhere (only rank 0 prints, as only it writes)."""
    return log if info.is_main else _quiet


def _quiet(*args, **kwargs) -> None:
    pass


def teardown(info: DistInfo) -> None:
    """End of a training call: wait until every rank (rank 0 writing files) is done."""
    barrier(info)


def barrier(info: DistInfo) -> None:
    if info.enabled:
        import torch.distributed as dist

        dist.barrier()


@contextmanager
def main_first(info: DistInfo):
    """Rank 0 runs the block first (e.g. writes caches), the others after it, reading them."""
    if info.enabled and not info.is_main:
        barrier(info)
    try:
        yield
    finally:
        if info.enabled and info.is_main:
            barrier(info)


def shard(items: Sequence[_T], rank: int, world_size: int) -> list[_T]:
    """This rank's items: ``items[rank::world_size]`` (disjoint across ranks, union = all)."""
    return list(items[rank::world_size])


def wrap(module: torch.nn.Module, info: DistInfo) -> torch.nn.Module:
    """``DistributedDataParallel(module)`` when distributed, else ``module`` itself."""
    if not info.enabled:
        return module
    from torch.nn.parallel import DistributedDataParallel

    ids = [info.local_rank] if str(info.device).startswith("cuda") else None
    return DistributedDataParallel(module, device_ids=ids)
