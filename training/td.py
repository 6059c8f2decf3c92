"""`TDLearner`: one gradient update of the world model, its Q ensemble and its actor from a replay batch.

The update follows TD-MPC (Hansen et al. 2022, sec. 3-4): from the online encoder's latent z_0 of a window,
the predictor imagines z_1..z_H under the recorded actions, and one loss trains the encoder, predictor,
reward head and Q ensemble together (so the encoder gets gradients from latent consistency, reward and
value):
  - latent consistency with the EMA target encoder's latents (the model's multi-step JEPA loss, rho^t);
  - reward r(z_t, a_t) against the recorded reward (squared error, or TD-MPC2's two-hot cross-entropy with
    `model.reward_bins`, as for Q);
  - every Q member Q_i(z_t, a_t) against the n-step TD target
    y_t = sum_{j<n} gamma^j r_{t+j} + gamma^n Q̄(z̄_{t+n}, π(z̄_{t+n})),
    where z̄ are target-encoder latents and Q̄ a slowly moving (EMA, rate `tau`) copy of the ensemble,
    pessimistic (`min2`: the minimum of two random members, as REDQ, Chen et al. 2021) or averaged (`mean`);
  - the MoE router's load-balancing and z-losses;
  - with `idm_weight` > 0, inverse dynamics (as `fit.idm_weight` in the other stages, training/aux_losses.py):
    a head predicts the first action a_0 (normalised to [-1, 1]) from the online encoder's z_0 and z_1, so the
    latent must carry what the action moved. Latent consistency and the TD error alone can keep the large,
    static parts of a frame and drop a thin moving one (the reacher's arm, BENCHMARKS.md 7.3).
With a prioritized replay the batch carries importance weights, which weight each window's loss, and the
update leaves each window's rho^t-weighted mean |TD error| in `last_priority` (TD-MPC's priority).
The actor π(z) (deterministic; its exploration is the planner's and the loop's noise, a std floor) is
trained after it to maximise the ensemble-mean Q on the detached latents z_0..z_H (DDPG-style, as TD-MPC),
with its own optimiser. DMC episodes end by time limit only, so no target is cut at an episode end.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import Tensor

from moejepa_ros.model import losses as L
from moejepa_ros.model.encoder import ema_update
from moejepa_ros.model.world_model import WorldModel

from .aux_losses import InverseDynamics
from .train_state import flatten_optimizer, unflatten_optimizer

Q_TARGETS = ("min2", "mean")


def td_targets(rewards: Tensor, boot: Tensor, gamma: float, n: int) -> Tensor:
    """n-step targets [B, H-n+1]: y_t = sum_{j<n} gamma^j r_{t+j} + gamma^n boot_{t+n-1}.

    rewards[B, H]: r_t for t = 0..H-1; boot[B, H]: the bootstrap value of the state after step t (z_{t+1})."""
    H = rewards.shape[1]
    if not 1 <= n <= H:
        raise ValueError(f"td_targets: n={n} must be in [1, H={H}]")
    y = gamma**n * boot[:, n - 1 :]
    for j in range(n):
        y = y + gamma**j * rewards[:, j : H - n + 1 + j]
    return y


def pessimistic(q: Tensor, how: str, gen: torch.Generator | None = None) -> Tensor:
    """Reduce an ensemble's Q [M, ...] to one value: `min2` = min of two random members, `mean` = the average."""
    if how == "mean" or q.shape[0] == 1:
        return q.mean(0)
    i = torch.randperm(q.shape[0], generator=gen)[:2].to(q.device)
    return q.index_select(0, i).min(0).values


class TDLearner:
    """Owns the optimisers and the target Q ensemble of `model`; `update(batch)` is one TD-MPC step."""

    def __init__(
        self,
        model: WorldModel,
        action_low,
        action_high,
        gamma: float,
        lr: float = 1e-3,
        encoder_lr_scale: float = 1.0,
        grad_clip: float = 10.0,
        tau: float = 0.01,
        n_step: int = 1,
        q_target: str = "min2",
        idm_weight: float = 0.0,
        seed: int = 0,
    ):
        if model.q_heads is None:
            raise ValueError("TDLearner: the model has no Q heads (model.num_q must be >= 1)")
        if q_target not in Q_TARGETS:
            raise ValueError(f"TDLearner: q_target={q_target!r} must be one of {list(Q_TARGETS)}")
        if not 0.0 < tau <= 1.0:
            raise ValueError(f"TDLearner: tau={tau} must be in (0, 1]")
        if idm_weight < 0:
            raise ValueError(f"TDLearner: idm_weight={idm_weight} must be >= 0")
        self.model, self.gamma, self.grad_clip = model, float(gamma), float(grad_clip)
        self.tau, self.n_step, self.q_target = float(tau), int(n_step), q_target
        dev = next(model.parameters()).device
        low = torch.as_tensor(np.asarray(action_low, np.float32), device=dev).reshape(-1)
        high = torch.as_tensor(np.asarray(action_high, np.float32), device=dev).reshape(-1)
        self.center, self.half = (high + low) / 2, (high - low) / 2
        self.target_q = copy.deepcopy(model.q_heads).requires_grad_(False)
        self.idm_weight, self.idm = float(idm_weight), None
        if self.idm_weight > 0:
            self.idm = InverseDynamics(model.cfg.latent_dim, model.cfg.action_dim).to(dev)
        enc = list(model.encoder.parameters())
        skip = {id(p) for p in enc} | {id(p) for p in model.actor_head.parameters()}
        skip |= {id(p) for p in model.target_encoder.parameters()}
        rest = [p for p in model.parameters() if id(p) not in skip and p.requires_grad]
        rest += [] if self.idm is None else list(self.idm.parameters())
        self.opt = torch.optim.Adam([{"params": enc, "lr": lr * encoder_lr_scale}, {"params": rest, "lr": lr}])
        self.actor_opt = torch.optim.Adam(model.actor_head.parameters(), lr=lr)
        self.gen = torch.Generator().manual_seed(seed)
        self.updates = 0
        self.last_priority: np.ndarray | None = None  # per window of the last batch: rho^t-weighted |TD error|

    def to_actions(self, u: Tensor) -> Tensor:
        """Normalised [-1, 1] (the actor's range) -> command units (the replay's and the planner's)."""
        return self.center + u * self.half

    def losses(self, batch: dict[str, Tensor]) -> dict:
        """The model + Q loss of one batch (on the learner's device), term by term with the graph kept:
        `terms` {latent, reward, value[, idm]}: per-window losses [B] (rho^t-weighted over the horizon; idm on the
        first step), unweighted;
        `weights`: each term's weight in the total; `per_window` [B]: the weighted sum of the terms; `aux`: the
        router's load-balancing and z-losses (scalars);
        `z0`, `pred`: the online latent and the imagined ones; `q` [M, B, H-n+1]; `priority` [B]: the
        rho^t-weighted mean |TD error| per window (TD-MPC's priority)."""
        m, lw = self.model, self.model.cfg.losses
        dev = self.center.device
        stacks, actions, rewards, H = m._split_window(batch)
        n = min(self.n_step, H)
        z0 = m.encode(stacks[:, 0])
        with torch.no_grad():
            z_tgt = m.encode_target(stacks[:, 1:])  # z̄_1..z̄_H [B, H, D]
            q_next = self.target_q(z_tgt, self.to_actions(m.actor(z_tgt)))  # [M, B, H]
            y = td_targets(rewards, pessimistic(q_next, self.q_target, self.gen), self.gamma, n)
        pred = m.predictor.rollout(z0, actions)
        aux = m.predictor.last_aux
        w = L.decay_weights(H, lw.rho, dev)
        latent = L.multistep_latent_loss(pred, z_tgt, lw.rho, per_window=True)
        z_before = torch.cat([z0.unsqueeze(1), pred[:, :-1]], 1)  # z_0..z_{H-1}
        rew = (m.reward_head.loss(z_before, actions, rewards) * w).sum(1)
        q_raw = m.q_heads.raw(z_before[:, : H - n + 1], actions[:, : H - n + 1])  # [M, B, H-n+1, out]
        q = m.q_heads.reg.decode(q_raw)  # [M, B, H-n+1]
        wq = L.decay_weights(H - n + 1, lw.rho, dev)
        q_loss = (m.q_heads.reg.loss(q_raw, y.expand_as(q)).mean(0) * wq).sum(1)
        priority = ((q.detach() - y.unsqueeze(0)).abs().mean(0) * wq).sum(1)
        bal, zl = L.moe_aux_loss(aux, lw.load_balance, lw.router_z)
        terms = {"latent": latent, "reward": rew, "value": q_loss}
        weights = {"latent": lw.latent_weight(m.cfg.latent_norm), "reward": lw.reward, "value": lw.value}
        if self.idm is not None:
            a0 = (actions[:, 0] - self.center) / self.half
            terms["idm"] = (self.idm(z0, m.encode(stacks[:, 1])) - a0).square().mean(-1)
            weights["idm"] = self.idm_weight
        return {
            "terms": terms,
            "weights": weights,
            "per_window": sum(weights[k] * t for k, t in terms.items()),
            "aux": bal + zl,
            "z0": z0,
            "pred": pred,
            "q": q,
            "priority": priority,
        }

    def update(self, batch: dict[str, Tensor]) -> dict[str, float]:
        """One model + Q step, one actor step, then the EMA of the target encoder and target Q."""
        m, lw = self.model, self.model.cfg.losses
        dev = self.center.device
        batch = {k: v.to(dev, non_blocking=True) for k, v in batch.items()}
        m.train()
        out = self.losses(batch)
        terms, z0, pred, q = out["terms"], out["z0"], out["pred"], out["q"]
        H = pred.shape[1]
        self.last_priority = out["priority"].cpu().numpy()
        # per-window losses [B], averaged with the replay's importance weights when it samples by priority
        per_window = out["per_window"]
        iw = batch.get("weight")
        total = (per_window.mean() if iw is None else (per_window * iw).mean()) + out["aux"]
        latent, rew, q_loss = (terms[k].mean() for k in ("latent", "reward", "value"))
        self.opt.zero_grad(set_to_none=True)
        total.backward()
        gn = torch.nn.utils.clip_grad_norm_(
            [p for g in self.opt.param_groups for p in g["params"]], self.grad_clip or float("inf")
        )
        self.opt.step()
        # actor: maximise the ensemble-mean Q on the (detached) latents it would act in
        zs = torch.cat([z0.unsqueeze(1), pred], 1).detach()
        qa = m.q(zs, self.to_actions(m.actor(zs))).mean(0)  # [B, H+1]
        actor_loss = -(qa.mean(0) * L.decay_weights(H + 1, lw.rho, dev)).sum()
        self.actor_opt.zero_grad(set_to_none=True)
        actor_loss.backward()
        torch.nn.utils.clip_grad_norm_(m.actor_head.parameters(), self.grad_clip or float("inf"))
        self.actor_opt.step()
        with torch.no_grad():
            m.update_target()
            ema_update(self.target_q, m.q_heads, 1.0 - self.tau)
        m.eval()
        self.updates += 1
        logged = dict(total=total, latent=latent, reward=rew, q=q_loss, q_mean=q.mean(), actor=actor_loss, grad_norm=gn)
        if "idm" in terms:
            logged["idm"] = terms["idm"].mean()
        return {k: float(v.detach()) for k, v in logged.items()}

    # ------------------------------------------------------------------ resume
    def state(self) -> tuple[dict, dict[str, Tensor]]:
        """(JSON, tensors) of everything but the model's own weights: optimisers, target Q, generator."""
        js, tensors = {"updates": self.updates, "gen": self.gen.get_state().tolist()}, {}
        for name, opt in (("opt", self.opt), ("actor_opt", self.actor_opt)):
            js[name], t = flatten_optimizer(opt)
            tensors.update({f"{name}.{k}": v for k, v in t.items()})
        tensors.update({f"target_q.{k}": v.detach().cpu().clone() for k, v in self.target_q.state_dict().items()})
        if self.idm is not None:
            tensors.update({f"idm.{k}": v.detach().cpu().clone() for k, v in self.idm.state_dict().items()})
        return js, tensors

    def load_state(self, js: dict, tensors: dict[str, Tensor]) -> None:
        """Inverse of `state` (the model's weights are loaded by the caller)."""
        self.updates = int(js["updates"])
        self.gen.set_state(torch.tensor(js["gen"], dtype=torch.uint8))
        for name, opt in (("opt", self.opt), ("actor_opt", self.actor_opt)):
            pre = f"{name}."
            unflatten_optimizer(opt, js[name], {k[len(pre) :]: v for k, v in tensors.items() if k.startswith(pre)})
        pre = "target_q."
        self.target_q.load_state_dict({k[len(pre) :]: v for k, v in tensors.items() if k.startswith(pre)})
        if self.idm is not None:
            self.idm.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("idm.")})
