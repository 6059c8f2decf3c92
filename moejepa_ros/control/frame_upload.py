"""`FrameUpload`: a uint8 frame stack from host memory onto the control step's device.

On CUDA the stack is copied into a pinned (page-locked) staging buffer and from there to a device
buffer with `non_blocking=True`, so the copy is one DMA transfer queued on the stream the encoder
then runs on, instead of a pageable copy through a driver bounce buffer. Elsewhere the frames are
wrapped as they are (no copy).
"""

from __future__ import annotations

import numpy as np
import torch


class FrameUpload:
    """`upload(frames[k, S, S, 3] uint8)` → a [1, k, S, S, 3] tensor on `device`, valid until the next call."""

    def __init__(self, device: str | torch.device):
        self.device = torch.device(device)
        self.pinned = self.device.type == "cuda"
        self._host: torch.Tensor | None = None  # pinned staging buffer
        self._dev: torch.Tensor | None = None
        self._copied: torch.cuda.Event | None = None  # recorded after each copy out of the staging buffer

    def __call__(self, frames: np.ndarray) -> torch.Tensor:
        src = torch.from_numpy(frames)
        if not self.pinned:
            return src.to(self.device)[None]
        if self._host is None or self._host.shape != src.shape:
            self._host = torch.empty(src.shape, dtype=torch.uint8, pin_memory=True)
            self._dev = torch.empty(src.shape, dtype=torch.uint8, device=self.device)
            self._copied = torch.cuda.Event()
        else:
            self._copied.synchronize()  # the last copy has left the staging buffer before it is overwritten
        self._host.copy_(src)
        self._dev.copy_(self._host, non_blocking=True)
        self._copied.record(torch.cuda.current_stream(self.device))
        return self._dev[None]
