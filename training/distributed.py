"""DDP plumbing: init from torchrun's environment (gloo on CPU, NCCL on GPU), rank helpers.

Under `torchrun --nproc_per_node N`, RANK / WORLD_SIZE / LOCAL_RANK are set; without them the
run is a single process and every helper degrades to a no-op.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> DistInfo:
    """Join the process group torchrun describes (no-op when WORLD_SIZE is unset or 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def resolve_device(spec: str) -> torch.device:
    """`auto` -> this rank's GPU if any (LOCAL_RANK under torchrun), else CPU."""
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")) % torch.cuda.device_count())
        return torch.device("cpu")
    dev = torch.device(spec)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"run.device={spec!r} but CUDA is not available")
        if dev.index is None:
            dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")) % torch.cuda.device_count())
    return dev


def all_gather_json(obj: Any, info: DistInfo) -> list[Any]:
    """Every rank's JSON-able `obj`, in rank order (single process: `[obj]`)."""
    if not info.enabled:
        return [obj]
    # JSON bytes in a uint8 tensor (not all_gather_object, which pickles)
    data = torch.frombuffer(bytearray(json.dumps(obj).encode()), dtype=torch.uint8)
    dev = _comm_device()
    size = torch.tensor([data.numel()], device=dev)
    sizes = [torch.zeros_like(size) for _ in range(info.world_size)]
    dist.all_gather(sizes, size)
    n = int(max(s.item() for s in sizes))
    buf = torch.zeros(n, dtype=torch.uint8, device=dev)
    buf[: data.numel()] = data.to(dev)
    bufs = [torch.zeros_like(buf) for _ in range(info.world_size)]
    dist.all_gather(bufs, buf)
    return [json.loads(bytes(b[: int(s.item())].cpu().tolist()).decode()) for b, s in zip(bufs, sizes)]


def broadcast_json(obj: Any, info: DistInfo) -> Any:
    """Rank 0's `obj` on every rank."""
    if not info.enabled:
        return obj
    return all_gather_json(obj if info.is_main else None, info)[0]


def _comm_device() -> torch.device:
    """NCCL needs CUDA tensors; gloo CPU ones."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_reduce_mean(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if info.enabled:
        t = t.clone()
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        t /= info.world_size
    return t


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def cleanup(info: DistInfo) -> None:
    """Leave the group together: a barrier first (rank 0 still writes the final model while the
    others are done, and a rank tearing gloo down under a busy peer can abort), then collect any
    DDP reducer still alive in a reference cycle before its process group goes away."""
    if info.enabled and dist.is_initialized():
        import gc

        try:
            dist.barrier()
        finally:
            gc.collect()
            dist.destroy_process_group()
