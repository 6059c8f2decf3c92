"""Train one part of a world model while the rest stays bit-identical (`refine`, `goal`, `pose`, `joints`)."""

from __future__ import annotations

import dataclasses

import torch

from moejepa_ros.model.world_model import WorldModel


def with_new_part(
    model: WorldModel, prefix: str | tuple[str, ...], overrides: dict, seed: int, device: torch.device
) -> WorldModel:
    """A model with `overrides` applied to its config: the tensors under `prefix` (e.g. "predictor.", or a tuple)
    start from a fresh initialisation (seeded), every other tensor is carried over. ValueError /
    TypeError from the config name a bad override."""
    cfg = dataclasses.replace(model.cfg, **overrides)
    cfg.validate()
    torch.manual_seed(seed)
    fresh = WorldModel(cfg).to(device)
    keep = {k: v for k, v in model.state_dict().items() if not k.startswith(prefix)}
    missing, unexpected = fresh.load_state_dict(keep, strict=False)
    if unexpected or any(not k.startswith(prefix) for k in missing):
        raise RuntimeError(
            f"could not carry the model over outside {prefix!r} (missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    return fresh


def train_only(model: WorldModel, prefix: str | tuple[str, ...]) -> dict[str, torch.Tensor]:
    """Gradients for the tensors under `prefix` (one or a tuple) only; returns a snapshot of all the others."""
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith(prefix))
    return {k: v.detach().clone() for k, v in model.state_dict().items() if not k.startswith(prefix)}


def check_unchanged(model: WorldModel, snapshot: dict[str, torch.Tensor], command: str) -> None:
    """The contract of `train_only`: RuntimeError when any tensor outside the trained part moved."""
    sd = model.state_dict()
    changed = [k for k, v in snapshot.items() if not torch.equal(sd[k], v)]
    if changed:
        raise RuntimeError(f"{command} changed frozen tensors {changed[:3]}")


def fit_part(module: torch.nn.Module, steps: int, lr: float, step_loss, what: str, on_step) -> None:
    """A small part's fit: `steps` Adam steps (cosine schedule) on `module`'s parameters of the loss `step_loss()`
    returns (a fresh batch each call); FloatingPointError names a non-finite loss; `on_step(step, loss)` after
    each step. The module is in train mode during the fit and in eval mode after it."""
    module.train()
    opt = torch.optim.Adam(module.parameters(), lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for step in range(1, steps + 1):
        loss = step_loss()
        if not torch.isfinite(loss):
            raise FloatingPointError(f"{what}: non-finite loss at step {step}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        on_step(step, loss)
    module.eval()
