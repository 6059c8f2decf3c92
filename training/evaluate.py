"""`evaluate`: a checkpoint's report as JSON + PNG plots under `<out_dir>/eval/`.

- the verdict (`verdict`): useful or not, in one line, and what to try;
- open-loop latent error at horizons 1..H, divided by the copy-last-latent baseline
  (||ẑ_{t+j} - z_{t+j}||² / ||z_t - z_{t+j}||², targets from the online encoder);
- probes (see `probing`), also for a randomly initialised encoder of the same config;
- routing: expert load fractions, their coefficient of variation, router entropy and
  specialisation = mutual information (bits) between the top-1 expert and a known mode
  (Two-Rooms: room side, near-wall; otherwise: sign of state dim 0);
- closed loop: planner episodes in the simulator (success rate, return, final distance).
"""

from __future__ import annotations

import json
import math
import os
import time

import numpy as np
import torch

from moejepa_ros.model.checkpoint import load_checkpoint
from moejepa_ros.model.world_model import WorldModel

from .config import TrainConfig
from .datasets import open_data, run_subdir
from .export import find_model
from .logging_utils import log, read_metrics


@torch.no_grad()
def encode_windows(model, data, H: int, n: int, seed: int, val: bool = True, batch: int = 256):
    """n random windows of k + H frames (held-out episodes when `val`) -> latents z [n, H+1, D] of their
    k-frame stacks, the actions [n, H, A] after each of the first H, and the state at each stack's last
    frame [n, H+1, S] (None when the data has none)."""
    k = model.cfg.frame_stack
    b = data.sampler(k + H, n, seed, 0, val=val).sample()
    stacks = b["frames"].unfold(1, k, 1).permute(0, 1, 5, 2, 3, 4).reshape(-1, k, *b["frames"].shape[2:])
    z = torch.cat([model.encode(stacks[i : i + batch]).float() for i in range(0, len(stacks), batch)])
    state = b["state"][:, k - 1 :].float() if "state" in b else None
    return z.reshape(n, H + 1, -1), b["actions"][:, k - 1 : k - 1 + H].float(), state


@torch.no_grad()
def open_loop_of(model, z: torch.Tensor, actions: torch.Tensor) -> dict[str, list]:
    """Per-horizon mean squared latent error of the model's rollout from z[:, 0] and of copy-last
    (predicting z_0 for every later step), and their ratio, for latents z [n, H+1, D]."""
    pred = model.rollout(z[:, 0], actions).float()
    err = (pred - z[:, 1:]).pow(2).sum(-1).mean(0)
    copy = (z[:, :1] - z[:, 1:]).pow(2).sum(-1).mean(0)
    return {
        "horizon": list(range(1, z.shape[1])),
        "model": err.tolist(),
        "copy_last": copy.tolist(),
        "ratio": (err / copy.clamp_min(1e-12)).tolist(),
        "windows": int(len(z)),
    }


def open_loop(model, data, H: int, n: int, seed: int) -> dict[str, list]:
    """Per-horizon mean squared latent error of the model and of copy-last, and their ratio."""
    z, actions, _ = encode_windows(model, data, H, n, seed)
    return open_loop_of(model, z, actions)


def mutual_information(a: np.ndarray, b: np.ndarray) -> float:
    """I(A;B) in bits from paired discrete labels."""
    if len(a) == 0:
        return 0.0
    _, ai = np.unique(a, return_inverse=True)
    _, bi = np.unique(b, return_inverse=True)
    joint = np.zeros((ai.max() + 1, bi.max() + 1))
    np.add.at(joint, (ai, bi), 1)
    joint /= joint.sum()
    pa, pb = joint.sum(1, keepdims=True), joint.sum(0, keepdims=True)
    nz = joint > 0
    return float((joint[nz] * np.log2(joint[nz] / (pa @ pb)[nz])).sum())


def modes_of(states: np.ndarray, two_rooms: bool) -> dict[str, np.ndarray]:
    if states.size == 0:
        return {}
    if two_rooms:
        dx = states[:, 0] - states[:, 2]
        return {"room_side": (dx > 0).astype(int), "near_wall": (np.abs(dx) < 6.0).astype(int)}
    return {"state0_sign": (states[:, 0] > 0).astype(int)}


@torch.no_grad()
def routing(model, data, n: int, seed: int, two_rooms: bool) -> dict:
    """Top-k routing of one-step transitions from the data: loads, CV, entropy, MI with modes."""
    from .probing import cache_stacks, embed

    pred = model.predictor
    E = model.cfg.experts
    rng = np.random.default_rng(seed + 1)
    st, states, acts = cache_stacks(data.cache, data.train_episodes, model.cfg.frame_stack, n, rng)
    z = embed(model, st)
    e = pred.embed(torch.from_numpy(acts))
    logits, idx, _ = pred.moe.route(z, e)
    counts = torch.bincount(idx.reshape(-1), minlength=E).double()
    load = (counts / counts.sum()).numpy()
    out = {
        "experts": E,
        "top_k": model.cfg.active_k,
        "load": load.tolist(),
        "load_cv": float(load.std() / max(load.mean(), 1e-12)),
    }
    if logits is not None:
        p = torch.softmax(logits, -1)
        out["router_entropy"] = float(-(p * p.clamp_min(1e-9).log()).sum(-1).mean())
    top1 = idx[:, 0].numpy()
    out["specialisation_bits"] = {}
    out["mode_expert_load"] = {}
    for name, m in modes_of(states, two_rooms).items():
        out["specialisation_bits"][name] = mutual_information(top1, m)
        tab = np.zeros((int(m.max()) + 1, E))
        np.add.at(tab, (m, top1), 1)
        out["mode_expert_load"][name] = (tab / tab.sum(1, keepdims=True).clip(1)).tolist()
    return out


def closed_loop(
    cfg: TrainConfig,
    model,
    meta: dict,
    episodes: int,
    max_steps: int,
    device,
    env_kwargs: dict | None = None,
    seed: int = 10_000,
) -> dict:
    """Planner episodes in `collect.env` (goal mode for Two-Rooms): success, return, final distance."""
    import gymnasium as gym

    from moejepa_ros.control import PlannerPolicy
    from moejepa_ros.sim import make_env
    from moejepa_ros.sim.registry import GOAL_EVAL

    kw = dict(cfg.collect.env_kwargs)
    if cfg.collect.env in GOAL_EVAL:
        kw["mode"] = "goal"
    kw.update(env_kwargs or {})
    env = gym.wrappers.TimeLimit(make_env(cfg.collect.env, **kw), max_steps)
    pol = PlannerPolicy(model, cfg.plan.planner, cfg.plan.objectives, meta["action_low"], meta["action_high"], device)
    rets, succ, dists, starts, plan_ms = [], [], [], [], []
    for ep in range(episodes):
        obs, info = env.reset(seed=seed + ep)
        starts.append(info.get("distance", float("nan")))
        pol.reset()
        ret, done = 0.0, False
        while not done:
            a = pol(obs, info)
            plan_ms.append(pol.last_plan.elapsed_ms)
            obs, r, term, trunc, info = env.step(a)
            ret += float(r)
            done = term or trunc
        rets.append(ret)
        succ.append(bool(info.get("success", False)))
        dists.append(float(info.get("distance", float("nan"))))
    env.close()
    return {
        "episodes": episodes,
        "success_rate": float(np.mean(succ)),
        "return_mean": float(np.mean(rets)),
        "returns": rets,
        "final_distance": dists,
        "start_distance": starts,
        "plan_ms_mean": float(np.mean(plan_ms)) if plan_ms else float("nan"),
        "horizon": (pol.controller.planner or pol.controller).cfg.horizon,  # the horizon it planned with
    }


def plots(out_dir: str, report: dict, runs: dict[str, list]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    if runs:
        fig, ax = plt.subplots(figsize=(6, 4))
        for name, rows in runs.items():
            for key in ("loss/total", "loss/latent"):
                xs = [r["step"] for r in rows if key in r]
                if xs:
                    ax.plot(xs, [r[key] for r in rows if key in r], label=f"{name} {key[5:]}")
        ax.set_xlabel("step"), ax.set_ylabel("loss"), ax.set_yscale("log"), ax.legend(fontsize=7)
        ax.set_title("training losses")
        paths.append(_save(fig, out_dir, "loss_curves.png"))
    ol = report.get("open_loop")
    if ol:
        fig, ax = plt.subplots(figsize=(5, 4))
        ax.plot(ol["horizon"], ol["model"], "o-", label="model")
        ax.plot(ol["horizon"], ol["copy_last"], "s--", label="copy last latent")
        ax.set_xlabel("horizon (steps)"), ax.set_ylabel("latent squared error"), ax.legend()
        ax2 = ax.twinx()
        ax2.plot(ol["horizon"], ol["ratio"], "k:", label="ratio")
        ax2.set_ylabel("model / copy-last")
        ax.set_title("open-loop error vs horizon")
        paths.append(_save(fig, out_dir, "error_vs_horizon.png"))
    rt = report.get("routing")
    if rt:
        rows = [("all", rt["load"])]
        for mode, tab in rt.get("mode_expert_load", {}).items():
            rows += [(f"{mode}={i}", r) for i, r in enumerate(tab)]
        fig, ax = plt.subplots(figsize=(1 + 0.6 * rt["experts"], 1 + 0.4 * len(rows)))
        im = ax.imshow(np.array([r for _, r in rows]), aspect="auto", cmap="viridis", vmin=0, vmax=1)
        ax.set_yticks(range(len(rows)), [n for n, _ in rows]), ax.set_xlabel("expert")
        ax.set_xticks(range(rt["experts"]))
        fig.colorbar(im, ax=ax, label="top-1 share")
        ax.set_title("expert load by mode")
        paths.append(_save(fig, out_dir, "expert_heatmap.png"))
    return paths


def _save(fig, out_dir: str, name: str) -> str:
    p = os.path.join(out_dir, name)
    fig.tight_layout()
    fig.savefig(p, dpi=80)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return p


def evaluate(cfg: TrainConfig, device) -> dict:
    e = cfg.eval
    t0 = time.perf_counter()
    ckpt = find_model(cfg, e.checkpoint)
    model, meta = load_checkpoint(ckpt, device)
    mc = model.cfg
    two_rooms = cfg.collect.env == "two_rooms" and not cfg.data.bags
    data = open_data(cfg, mc.image_size, mc.frame_stack + e.horizon)
    out_dir = run_subdir(cfg, "eval")
    os.makedirs(out_dir, exist_ok=True)
    report: dict = {
        "checkpoint": ckpt,
        "model": {"experts": mc.experts, "top_k": mc.active_k, "latent_dim": mc.latent_dim, "dense": mc.dense},
    }
    report["open_loop"] = open_loop(model, data, e.horizon, e.windows, cfg.run.seed)
    from .verdict import judge, run_idm_ratio

    idm = run_idm_ratio(os.path.dirname(os.path.abspath(ckpt)), run_subdir(cfg, "fit"))
    verdict = judge(model, data, e.windows, cfg.run.seed, idm)
    report["verdict"] = verdict.to_dict()
    log.info("%s", verdict.line())
    report["routing"] = routing(model, data, max(64, e.windows), cfg.run.seed, two_rooms)
    if e.probe:
        from .probing import probe

        report["probe"] = probe(model, data, e.probe_samples, e.probe_epochs, cfg.run.seed, two_rooms)
        torch.manual_seed(cfg.run.seed)
        rand = WorldModel(mc).to(device).eval()
        report["probe_random_init"] = probe(rand, data, e.probe_samples, e.probe_epochs, cfg.run.seed, two_rooms)
    if e.closed_loop_episodes > 0 and not cfg.data.bags:
        report["closed_loop"] = closed_loop(cfg, model, meta, e.closed_loop_episodes, e.max_episode_steps, device)
    runs = {n: read_metrics(run_subdir(cfg, n)) for n in ("pretrain", "fit")}
    runs = {n: r for n, r in runs.items() if r}
    report["plots"] = plots(out_dir, report, runs) if e.plots else []
    report["seconds"] = round(time.perf_counter() - t0, 2)
    path = os.path.join(out_dir, "report.json")
    with open(path, "w") as f:
        json.dump(report, f, indent=1, default=_json_default)
    log.info("evaluation report: %s", path)
    return {
        "report": path,
        "verdict": verdict.line(),
        "open_loop_ratio": report["open_loop"]["ratio"],
        "probe": report.get("probe"),
        "closed_loop": {k: v for k, v in report.get("closed_loop", {}).items() if k in ("success_rate", "return_mean")},
        "plots": report["plots"],
    }


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, float) and not math.isfinite(o):
        return None
    return str(o)
