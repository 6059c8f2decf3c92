"""`distill`: the planner (Mode-2) -> the actor head π(z) (Mode-1), DAgger-style.

Round 0 labels latents of replay-data frames with the planner's first action; later rounds
run the current actor in the simulator and label the latents it visits (so the actor learns
to recover from its own mistakes; Ross et al. 2011). Only the actor head trains, on
normalised actions ([-1, 1] per dim, the actor's tanh range). The actor takes no goal, so a
goal-conditioned task (Two-Rooms) distils the average behaviour only: use it as the planner's
`policy_prior_samples` seed there, and as a policy for reward tasks (DMC).
"""

from __future__ import annotations

import os
import time

import numpy as np
import torch

from moejepa_ros.control import LatentController
from moejepa_ros.model.checkpoint import load_checkpoint, save_derived
from moejepa_ros.planning import DEFAULT_OBJECTIVES

from .config import TrainConfig
from .datasets import open_data, run_subdir
from .export import find_model
from .logging_utils import RunLogger, log
from .probing import cache_stacks, embed


def _label(ctrl: LatentController, z: torch.Tensor, goal_z, center, half) -> torch.Tensor:
    """The control step's action from latent z (no warm start: each label is a fresh replan), normalised to
    the actor's [-1, 1]; a non-finite plan labels the zero command, as the node would publish."""
    ctrl.set_goal_latent(goal_z)  # also forgets the warm start
    a = torch.from_numpy(ctrl.decide(z).action)
    return ((a - center) / half).clamp(-1, 1)


def _actor_visits(cfg: TrainConfig, model, n: int, center, half, seed: int) -> tuple[torch.Tensor, list, list]:
    """Latents visited by the actor in the simulator (+ the goal latent of each, and returns)."""
    import gymnasium as gym

    from moejepa_ros.sim import make_env

    kw = dict(cfg.collect.env_kwargs)
    kw.update(cfg.mbrl.env_kwargs)
    env = gym.wrappers.TimeLimit(make_env(cfg.collect.env, **kw), cfg.mbrl.max_episode_steps)
    k = model.cfg.frame_stack
    zs, goals, rets = [], [], []
    ep = 0
    while len(zs) < n:
        obs, info = env.reset(seed=seed + ep)
        ep += 1
        frames = [obs] * k
        g = info.get("goal_image")
        gz = embed(model, np.stack([g] * k)[None])[0] if g is not None else None
        done, ret = False, 0.0
        while not done and len(zs) < n:
            z = embed(model, np.stack(frames[-k:])[None])[0]
            zs.append(z)
            goals.append(gz)
            with torch.no_grad():
                a = (model.actor(z[None])[0] * half + center).numpy()
            obs, r, term, trunc, info = env.step(a)
            ret += float(r)
            frames.append(obs)
            done = term or trunc
        rets.append(ret)
    env.close()
    return torch.stack(zs), goals, rets


def distill(cfg: TrainConfig, device) -> dict:
    d = cfg.distill
    src = find_model(cfg, d.checkpoint, order=("mbrl", "fit"))
    model, meta = load_checkpoint(src)
    low = torch.tensor(meta["action_low"])
    high = torch.tensor(meta["action_high"])
    center, half = (high + low) / 2, (high - low) / 2
    ctrl = LatentController(
        model,
        "cpu",
        dict(cfg.plan.planner),
        dict(cfg.plan.objectives) or DEFAULT_OBJECTIVES,
        low.tolist(),
        high.tolist(),
    )
    needs_goal = ctrl.needs_goal
    data = open_data(cfg, model.cfg.image_size, model.cfg.frame_stack)
    rng = np.random.default_rng(cfg.run.seed)
    run_dir = run_subdir(cfg, "distill")
    logger = RunLogger(run_dir, True, cfg.run.tensorboard, False, 0)
    params = list(model.actor_head.parameters())
    for p in model.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=d.lr)
    X: list[torch.Tensor] = []
    Y: list[torch.Tensor] = []
    history = []
    step = 0
    t0 = time.perf_counter()
    for r in range(d.rounds):
        if r == 0:
            st, _, _ = cache_stacks(data.cache, data.train_episodes, model.cfg.frame_stack, d.samples, rng)
            zs = embed(model, st)
            goals = [None] * len(zs)
            if needs_goal:  # goals: other replay frames (the goal image of a random state)
                gst, _, _ = cache_stacks(data.cache, data.train_episodes, model.cfg.frame_stack, d.samples, rng)
                gz = embed(model, np.repeat(gst[:, -1:], model.cfg.frame_stack, axis=1))
                goals = list(gz)
            rets = []
        else:
            zs, goals, rets = _actor_visits(cfg, model, d.samples, center, half, cfg.run.seed + 1000 * r)
        labels = torch.stack([_label(ctrl, z, g if needs_goal else None, center, half) for z, g in zip(zs, goals)])
        X.append(zs)
        Y.append(labels)
        x, y = torch.cat(X), torch.cat(Y)
        model.train()
        for _ in range(d.steps):
            idx = torch.randint(0, len(x), (min(d.batch_size, len(x)),))
            loss = (model.actor(x[idx]) - y[idx]).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            if step % cfg.run.log_every == 0:
                logger.scalars(step, {"distill/mse": loss.item(), "distill/dataset": len(x)})
        model.eval()
        with torch.no_grad():
            fit_mse = float((model.actor(x) - y).pow(2).mean())
        history.append(
            {
                "round": r,
                "labelled": int(len(x)),
                "actor_mse": fit_mse,
                "actor_return_mean": float(np.mean(rets)) if rets else None,
            }
        )
        log.info("distill round %d: %d labels, actor mse %.4f", r, len(x), fit_mse)
    logger.close()
    for p in model.parameters():
        p.requires_grad_(False)
    out = os.path.join(run_dir, "model.safetensors")
    tr = dict(meta.get("training") or {})
    tr.update(subcommand="distill", distill=history, distilled_from=src)
    save_derived(out, model, meta, tr)
    return {"checkpoint": out, "history": history, "seconds": round(time.perf_counter() - t0, 2)}
