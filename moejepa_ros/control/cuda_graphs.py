"""`GraphedRollout`: a world model whose no-grad planning rollouts replay captured CUDA graphs.

A plan runs a few batched rollouts of a few horizon steps each; on a GPU their cost is mostly the
launch of many small kernels, which one `CUDAGraph.replay()` per rollout removes. One graph is
captured per rollout shape (samples, horizon; the population decay and the final mean give a few)
on first use, from static input buffers the call's inputs are copied into. The captured function
is `graph_rollout`: the predictor's steps with the `TRACE_IMPL` expert evaluation of the ONNX graph,
the same maths as `Predictor.rollout` without its data-dependent `bincount` (a host sync, which a
capture refuses). Each new graph is replayed once against the eager function before it is used;
a capture that fails or disagrees switches the wrapper to eager rollouts with one warning.
Rollouts with autograd (the gradient planners), off CUDA, or of models without a predictor run
eagerly.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from moejepa_ros.model.onnx_graphs import TRACE_IMPL

MAX_GRAPHS = 16  # captured shapes kept (oldest dropped): live tuning of `samples` must not grow memory


def graph_rollout(model: Any, z0: Tensor, actions: Tensor) -> Tensor:
    """z0[N or 1, D], actions[N, H, A] → [N, H, D] without data-dependent shapes or host syncs
    (`model.predictor`'s steps with the `TRACE_IMPL` experts), or `model.rollout` without a predictor."""
    p = getattr(model, "predictor", None)
    n, horizon, _ = actions.shape
    z = z0.expand(n, -1)
    if p is None or not callable(getattr(p, "step", None)):
        return model.rollout(z, actions)
    e = p.embed(actions)
    out = []
    for t in range(horizon):
        z, _ = p.step(z, e[:, t], need_aux=False, impl=TRACE_IMPL)
        out.append(z)
    return torch.stack(out, 1)


class _Graph:
    """One captured rollout shape: static inputs, the graph, its static output."""

    def __init__(self, z0: Tensor, actions: Tensor, fn: Callable[[Tensor, Tensor], Tensor]):
        self.z0, self.actions = z0.clone(), actions.clone()
        side = torch.cuda.Stream(z0.device)
        side.wait_stream(torch.cuda.current_stream(z0.device))
        with torch.cuda.stream(side):  # warm-up off the capture stream (lazy init, workspace allocation)
            for _ in range(2):
                expected = fn(self.z0, self.actions)
        torch.cuda.current_stream(z0.device).wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        # its own memory pool, so graphs replay in any order; thread_local: another thread's CUDA calls
        # (planner_node encodes goal images on the executor while inactive) cannot void the capture
        with torch.cuda.graph(self.graph, capture_error_mode="thread_local"):
            self.out = fn(self.z0, self.actions)
        self.graph.replay()
        if not torch.allclose(self.out, expected, rtol=1e-4, atol=1e-5):
            err = (self.out - expected).abs().max().item()
            raise RuntimeError(f"the replayed graph differs from the eager rollout by {err:.3g}")

    def __call__(self, z0: Tensor, actions: Tensor) -> Tensor:
        self.z0.copy_(z0)
        self.actions.copy_(actions)
        self.graph.replay()
        return self.out.clone()  # the static output is overwritten by the next replay


class GraphedRollout:
    """A `LatentModel` view of `model` (every other attribute is the model's) whose no-grad CUDA
    rollouts replay one captured graph per shape."""

    def __init__(self, model: Any, log: Callable[[str], None] | None = None):
        self.model = model
        self.log = log or logging.getLogger(__name__).warning
        self.graphs: OrderedDict[tuple, _Graph] = OrderedDict()
        self.disabled: str | None = None  # why rollouts went back to eager, once a capture failed

    def __getattr__(self, name: str) -> Any:
        if name == "model":  # not set yet (copy, pickle): no recursion through self.model
            raise AttributeError(name)
        return getattr(self.model, name)

    def rollout(self, z0: Tensor, actions: Tensor) -> Tensor:
        if self.disabled or torch.is_grad_enabled() or actions.device.type != "cuda":
            return self.model.rollout(z0, actions)
        shared = z0.shape[0] == 1 or z0.stride(0) == 0
        z_in = z0[:1] if shared else z0
        key = (tuple(z_in.shape), tuple(actions.shape), z0.dtype, actions.dtype, actions.device)
        g = self.graphs.get(key)
        if g is None:
            g = self._capture(key, z_in, actions)
            if g is None:
                return self.model.rollout(z0, actions)
        self.graphs.move_to_end(key)
        return g(z_in, actions)

    def _capture(self, key: tuple, z0: Tensor, actions: Tensor) -> _Graph | None:
        """Capture the rollout for this shape; None (and eager from now on) if the capture fails."""
        # static buffers are ordinary tensors (not inference tensors), so later copies work in any grad mode
        with torch.inference_mode(False), torch.no_grad():
            try:
                g = _Graph(z0, actions, lambda z, a: graph_rollout(self.model, z, a))
            except RuntimeError as e:
                self.disabled = str(e).splitlines()[0] if str(e) else type(e).__name__
                self.graphs.clear()
                self.log(f"cuda_graphs: capturing the planning rollout failed ({self.disabled}); rollouts run eagerly")
                return None
        self.graphs[key] = g
        while len(self.graphs) > MAX_GRAPHS:
            self.graphs.popitem(last=False)
        return g
