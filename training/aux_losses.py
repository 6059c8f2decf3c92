"""Training-side auxiliary losses wrapped around the unchanged `WorldModel.loss`.

- Inverse dynamics (PLDM, Sobal et al. 2025, and many visual-RL encoders): an MLP predicts
  a_t from (z_t, z_{t+1}) of the online encoder. Without it a JEPA encoder on Two-Rooms can
  satisfy its variance terms with the static wall layout and ignore the small agent dot (the
  probe error then equals the positions' variance); predicting the action forces the latent to
  carry what the action changed. With `idm_horizon` K > 1 it is multi-step (after the
  multi-step inverse models of Lamb et al. 2022, "AC-State"): the head predicts the *mean* action
  over j = 1..K steps from (z_t, z_t+j, j/K). For a point robot that is the displacement, which a
  latent holding only the motion of the last frames (enough for one-step IDM) cannot give. On the
  held-out Two-Rooms split it kept the dot in seed 1, which one-step IDM lost, and gave better
  encoders in the seeds that kept it; it is no guarantee (seed 3 loses the dot with either;
  BENCHMARKS.md 7.2). `loss/idm_ratio` (IDM MSE over chance) shows a lost fit near 1.
- Reach (`fit.reach_weight`, `fit.reach` N steps): a temporal-distance head d(z_t, g) = ||φ(z_t) -
  φ(g)|| regresses the steps j <= N from a window's first stack to a frame of the same drive j steps
  later (g its static stack, as a goal image is encoded), at a low expectile (the quick ways: random
  driving takes detours), and a frame of another window to at least N. On a robot's own random
  driving, next-latent prediction and inverse dynamics are satisfied by what moves in the image
  (floor texture, optical flow) and the latent keeps little of where the robot is (a linear probe of
  odometry, BENCHMARKS.md); steps to a frame seconds away need the place and the heading, which is
  what goal-image planning needs from the latent. The head stays training-side; `moejepa-train goal`
  then learns the planner's goal distance on the frozen latents.
- Pixel reconstruction (the `pixel_recon` baseline, see `baselines.PixelReconstruction`).
The module's weights are saved in training checkpoints (`module.extra.*`) for exact resume;
the exported inference checkpoint holds only the world model.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class InverseDynamics(nn.Module):
    """a <- (z0, z1) for one step; with `multi_step` the offset j/K is a third input."""

    def __init__(self, latent_dim: int, action_dim: int, hidden: int = 128, multi_step: bool = False):
        super().__init__()
        din = 2 * latent_dim + (1 if multi_step else 0)
        self.net = nn.Sequential(nn.Linear(din, hidden), nn.SiLU(), nn.Linear(hidden, action_dim))

    def forward(self, z0: torch.Tensor, z1: torch.Tensor, offset: torch.Tensor | None = None) -> torch.Tensor:
        parts = [z0, z1] if offset is None else [z0, z1, offset]
        return self.net(torch.cat(parts, -1))


def expectile_sq(err: torch.Tensor, expectile: float) -> torch.Tensor:
    """Asymmetric squared error of `err = target - prediction`: weight `expectile` where the target is above
    the prediction, 1 - expectile below (< 0.5 learns the low, quick end of noisy step counts)."""
    return torch.where(err < 0, 1.0 - expectile, expectile) * err.pow(2)


class Reach(nn.Module):
    """d(z, g) = ||φ(z) - φ(g)|| in units of `reach` steps; the loss of `fit.reach` (see the module
    docstring). Unit-scale targets keep its gradients on the scale of the other terms (one global clip)."""

    def __init__(self, latent_dim: int, reach: int, expectile: float, hidden: int = 128, embed: int = 32):
        super().__init__()
        self.reach, self.expectile = float(reach), float(expectile)
        self.phi = nn.Sequential(nn.Linear(latent_dim, hidden), nn.SiLU(), nn.Linear(hidden, embed))

    def forward(self, z: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        return (self.phi(z) - self.phi(g)).pow(2).sum(-1).clamp_min(1e-12).sqrt()

    def loss(self, z: torch.Tensor, g: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
        near = expectile_sq(steps / self.reach - self(z, g), self.expectile)
        far = self(z, g.roll(1, 0))  # another window's frame: at least `reach` steps away
        return near.mean() + torch.relu(1.0 - far).pow(2).mean()


class AuxLosses(nn.Module):
    """`loss(model, batch, stage)` = model.loss + idm_weight·IDM + recon (if a recon module is given)."""

    def __init__(
        self,
        latent_dim: int,
        action_dim: int,
        frame_stack: int,
        idm_weight: float = 0.0,
        recon: nn.Module | None = None,
        action_scale: float | list[float] = 1.0,
        idm_horizon: int = 1,
        reach: int = 0,
        reach_weight: float = 0.0,
        expectile: float = 0.25,
    ):
        super().__init__()
        if idm_horizon < 1:
            raise ValueError(f"AuxLosses: idm_horizon={idm_horizon} must be >= 1")
        self.k, self.idm_weight = frame_stack, float(idm_weight)
        # per action dimension, so a Twist's linear.x (0.3 m/s) weighs as much as its angular.z (1.5 rad/s)
        self.register_buffer("action_scale", torch.as_tensor(action_scale, dtype=torch.float32), persistent=False)
        self.idm_horizon = int(idm_horizon)
        self.idm = InverseDynamics(latent_dim, action_dim, multi_step=idm_horizon > 1) if idm_weight > 0 else None
        self.recon = recon
        self.reach_weight = float(reach_weight)
        self.reach = Reach(latent_dim, reach, expectile) if reach_weight > 0 and reach > 0 else None

    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor], stage: int):
        if self.recon is not None:
            total, terms = self.recon.loss(model, batch, stage)
        else:
            total, terms = model.loss(batch, stage)
        if self.idm is not None:
            idm, chance = self.inverse_dynamics(model, batch)
            terms = dict(terms)
            terms["idm"] = idm.detach()
            # near 1 with loss/latent near 0: the encoder kept the static scene and dropped what moves
            terms["idm_ratio"] = (idm.detach() / chance.clamp_min(1e-8)).float()
            total = total + self.idm_weight * idm
            terms["total"] = total.detach()
        if self.reach is not None:
            terms = dict(terms)
            k = self.k
            z = model.encode(batch["frames"][:, :k])
            far = batch["far_frames"][:, None].expand(-1, k, -1, -1, -1)
            reach = self.reach.loss(z, model.encode(far), batch["far_steps"].to(z.dtype))
            terms["reach"] = reach.detach()
            total = total + self.reach_weight * reach
            terms["total"] = total.detach()
        return total, terms

    def inverse_dynamics(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple:
        """MSE of the (multi-step) inverse-dynamics head on the online encoder's latents, and the MSE
        of chance (predicting the batch's mean target), detached."""
        k, frames = self.k, batch["frames"]
        K = self.idm_horizon
        if frames.shape[1] < k + K:
            raise ValueError(
                f"fit.idm_horizon={K} needs windows of >= frame_stack + {K} = {k + K} frames, "
                f"got {frames.shape[1]} (raise data.horizon to >= {K})"
            )
        stacks = frames[:, : k + K].unfold(1, k, 1).permute(0, 1, 5, 2, 3, 4)  # [B, K+1, k, S, S, 3]
        B = frames.shape[0]
        z = model.encode(stacks.reshape(-1, *stacks.shape[2:])).reshape(B, K + 1, -1)
        acts = batch["actions"][:, k - 1 : k - 1 + K].float() / self.action_scale  # [B, K, A]
        if K == 1:
            return F.mse_loss(self.idm(z[:, 0], z[:, 1]).float(), acts[:, 0]), _chance(acts[:, 0])
        j = torch.arange(1, K + 1, device=z.device, dtype=acts.dtype)
        target = acts.cumsum(1) / j[None, :, None]  # mean action over the first j steps
        z0 = z[:, :1].expand(B, K, z.shape[-1])
        offset = (j / K)[None, :, None].expand(B, K, 1).to(z.dtype)
        return F.mse_loss(self.idm(z0, z[:, 1:], offset).float(), target), _chance(target)


def _chance(target: torch.Tensor) -> torch.Tensor:
    """MSE of predicting the batch mean of `target` [B, ...] (what an encoder that ignores the actions reaches)."""
    return (target - target.mean(0, keepdim=True)).square().mean().detach()


def build_aux(cfg, mc, action_scale: float | list[float]) -> nn.Module | None:
    """The training-side wrapper the config asks for (None: plain `model.loss`)."""
    recon = None
    if cfg.baseline.kind == "pixel_recon":
        from .baselines import PixelReconstruction

        recon = PixelReconstruction(mc, cfg.baseline.recon_weight)
    if recon is None and cfg.fit.idm_weight <= 0 and cfg.fit.reach_weight <= 0:
        return None
    return AuxLosses(
        mc.latent_dim,
        mc.action_dim,
        mc.frame_stack,
        cfg.fit.idm_weight,
        recon,
        action_scale,
        cfg.fit.idm_horizon,
        cfg.fit.reach,
        cfg.fit.reach_weight,
        cfg.goal.expectile,
    )
