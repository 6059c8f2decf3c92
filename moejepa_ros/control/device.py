"""The torch device the control step runs on, and the encoder precisions that device supports.

`resolve_device` turns planner_node's `device` parameter into a torch device name with a one-line
error for each way a CUDA request can fail (a CPU-only torch build, no visible card, an index past
the last card); `encoder_autocast` is the `encoder_precision` option: autocast of the encoder to fp16
(CUDA only) or bf16 (CUDA cards that have it, and CPU).
"""

from __future__ import annotations

import contextlib

import torch

ENCODER_PRECISIONS = ("fp32", "fp16", "bf16")
_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


def resolve_device(name: str) -> str:
    """`auto` → cuda if available else cpu; `cpu`, `cuda`, `cuda:<i>` checked against this torch and machine."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ValueError(f"device={name!r} is not a torch device: use auto, cpu, cuda or cuda:<i>") from None
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device={name!r} is not supported: use auto, cpu, cuda or cuda:<i>")
    if dev.type == "cuda":
        if torch.version.cuda is None and getattr(torch.version, "hip", None) is None:  # ROCm says cuda too
            raise ValueError(
                f"device={name!r} but this torch ({torch.__version__}) is built without CUDA: "
                "install a CUDA build of torch (on a Jetson, the one for its JetPack)"
            )
        if not torch.cuda.is_available():
            raise ValueError(f"device={name!r} but torch sees no CUDA device (driver, CUDA_VISIBLE_DEVICES)")
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise ValueError(f"device={name!r} but torch sees {count} CUDA device(s): cuda:0 … cuda:{count - 1}")
    return str(dev)


def check_encoder_precision(precision: str, device: str | torch.device) -> None:
    """ValueError naming the problem when `device` cannot run the encoder at `precision`."""
    if precision not in ENCODER_PRECISIONS:
        raise ValueError(f"encoder_precision={precision!r} is invalid: must be one of {list(ENCODER_PRECISIONS)}")
    dev = torch.device(device)
    if precision == "fp16" and dev.type != "cuda":
        raise ValueError(f"encoder_precision='fp16' needs a cuda device, not {str(dev)!r}: use bf16 or fp32 there")
    if precision == "bf16" and dev.type == "cuda" and not torch.cuda.is_bf16_supported():
        name = torch.cuda.get_device_name(dev)
        raise ValueError(f"encoder_precision='bf16' but {name} has no bf16: use fp16")


def encoder_autocast(precision: str, device: str | torch.device) -> contextlib.AbstractContextManager:
    """The context the encoder runs in: autocast to fp16/bf16 on `device`'s type, nothing for fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=_DTYPES[precision])
