"""Training-side auxiliary losses wrapped around the unchanged `WorldModel.loss`.

- Inverse dynamics (PLDM, Sobal et al. 2025, and many visual-RL encoders): an MLP predicts
  a_t from (z_t, z_{t+1}) of the online encoder. Without it a JEPA encoder on Two-Rooms can
  satisfy its variance terms with the static wall layout and ignore the small agent dot (the
  probe error then equals the positions' variance); predicting the action forces the latent to
  carry what the action changed.
- Pixel reconstruction (the `pixel_recon` baseline, see `baselines.PixelReconstruction`).
The module's weights are saved in training checkpoints (`module.extra.*`) for exact resume;
the exported inference checkpoint holds only the world model.
"""
from __future__ import annotations

from typing import Dict, Optional

import torch
import torch.nn.functional as F
from torch import nn


class InverseDynamics(nn.Module):
    def __init__(self, latent_dim: int, action_dim: int, hidden: int = 128):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2 * latent_dim, hidden), nn.SiLU(), nn.Linear(hidden, action_dim))

    def forward(self, z0: torch.Tensor, z1: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([z0, z1], -1))


class AuxLosses(nn.Module):
    """`loss(model, batch, stage)` = model.loss + idm_weight·IDM + recon (if a recon module is given)."""

    def __init__(self, latent_dim: int, action_dim: int, frame_stack: int, idm_weight: float = 0.0,
                 recon: Optional[nn.Module] = None, action_scale: float = 1.0):
        super().__init__()
        self.k, self.idm_weight, self.action_scale = frame_stack, float(idm_weight), float(action_scale)
        self.idm = InverseDynamics(latent_dim, action_dim) if idm_weight > 0 else None
        self.recon = recon

    def loss(self, model: nn.Module, batch: Dict[str, torch.Tensor], stage: int):
        if self.recon is not None:
            total, terms = self.recon.loss(model, batch, stage)
        else:
            total, terms = model.loss(batch, stage)
        if self.idm is not None:
            k = self.k
            frames = batch["frames"]
            stacks = frames[:, :k + 1].unfold(1, k, 1).permute(0, 1, 5, 2, 3, 4)  # [B, 2, k, S, S, 3]
            z = model.encode(stacks.reshape(-1, *stacks.shape[2:])).reshape(frames.shape[0], 2, -1)
            a = batch["actions"][:, k - 1].float() / self.action_scale
            idm = F.mse_loss(self.idm(z[:, 0], z[:, 1]).float(), a)
            terms = dict(terms)
            terms["idm"] = idm.detach()
            total = total + self.idm_weight * idm
            terms["total"] = total.detach()
        return total, terms


def build_aux(cfg, mc, action_scale: float) -> Optional[nn.Module]:
    """The training-side wrapper the config asks for (None: plain `model.loss`)."""
    recon = None
    if cfg.baseline.kind == "pixel_recon":
        from .baselines import PixelReconstruction
        recon = PixelReconstruction(mc, cfg.baseline.recon_weight)
    if recon is None and cfg.fit.idm_weight <= 0:
        return None
    return AuxLosses(mc.latent_dim, mc.action_dim, mc.frame_stack, cfg.fit.idm_weight, recon, action_scale)
