"""Which targets does a reacher agent reach, and which does it keep? Its planner from the task's own starts.

A reacher_easy return mixes the target's position with two skills, bringing the fingertip to the target and
keeping it there (`reacher_hold` measures the second alone). This plays whole episodes from dm_control's own
resets (seeds 90000 on, the targets `reacher_hold` uses), with the agent's planner as `dmc_pixels` trains it (the
task's discount, no exploration noise), and reports per episode the return, the target's polar position about the
shoulder, the first env step with reward (`first_reward`, None if it never gets there) and `kept`: the reward per
env step from then on over the most it can be (the action repeat; 1 = never left once there). The summary splits
the episodes into bands of the target's distance from the shoulder (the task draws it uniformly from 0.05-0.20 m;
the arm's two links reach 0.24 m): an agent whose returns split into ~950 and ~0 shows where it fails, and whether
it fails to get there (`reached`) or to stay (`kept`).

    MUJOCO_GL=egl python -m bench.experiments.reacher_targets --checkpoint runs/dmc/mbrl/model.safetensors [...]

Several checkpoints (training seeds, or one seed's snapshots) are measured on the same episodes, each with its
summary, then one over all their episodes. An agent that learnt on other pixels than the default (fast, 64 px)
needs its own: `--set collect.env_kwargs.render=suite collect.env_kwargs.size=84`.
"""

from __future__ import annotations

import argparse
import json
import math
import os

import numpy as np

from bench import record
from bench.experiments.reacher_hold import FIRST_SEED, TASK

BANDS = (0.05, 0.10, 0.15, 0.20)  # metres from the shoulder: the task's annulus in thirds


def target_polar(physics) -> tuple[float, float]:
    """The target's distance (m) and angle (degrees) about the shoulder."""
    p = physics.named.data.geom_xpos["target"][:2] - physics.named.data.xpos["arm"][:2]
    return float(np.hypot(*p)), math.degrees(math.atan2(p[1], p[0]))


def task_episode(env, policy, seed: int, steps: int) -> dict:
    """One episode from the task's reset with `seed`; `policy(obs, info)` -> action."""
    obs, info = env.reset(seed=seed)
    info = dict(info, step=0)  # a PlannerPolicy starts its episode (frames, warm start)
    radius, angle = target_polar(env.unwrapped.physics)
    repeat = env.unwrapped.action_repeat
    rewards = []
    for _ in range(steps):
        obs, r, _, _, info = env.step(policy(obs, info))
        rewards.append(float(r))
    got = [t for t, r in enumerate(rewards) if r > 0]
    first = got[0] if got else None
    return {
        "return": round(float(np.sum(rewards)), 1),
        "target_radius": round(radius, 3),
        "target_angle_deg": round(angle, 1),
        "first_reward": first,
        "kept": None if first is None else round(float(np.mean(rewards[first:])) / repeat, 3),
    }


def band_of(radius: float) -> str:
    i = min(max(int(np.searchsorted(BANDS, radius, side="right")) - 1, 0), len(BANDS) - 2)
    return f"{BANDS[i]:.2f}-{BANDS[i + 1]:.2f}"


def summary(episodes) -> dict:
    """Mean return; per band of the target's distance: episodes, mean return, the share reached and the mean
    `kept` of those reached."""
    episodes = list(episodes)
    bands = {}
    for e in episodes:
        bands.setdefault(band_of(e["target_radius"]), []).append(e)
    per_band = {}
    for name in sorted(bands):
        es = bands[name]
        kept = [e["kept"] for e in es if e["kept"] is not None]
        per_band[name] = {
            "episodes": len(es),
            "return_mean": round(float(np.mean([e["return"] for e in es])), 1),
            "reached": round(len(kept) / len(es), 3),
            "kept_mean": round(float(np.mean(kept)), 3) if kept else None,
        }
    return {"return_mean": round(float(np.mean([e["return"] for e in episodes])), 1), "bands": per_band}


def main(argv: list[str] | None = None) -> dict:
    import torch

    from bench.experiments.dmc_pixels import task_settings
    from bench.experiments.dmc_planner_eval import agent_policy, variant_config
    from moejepa_ros.sim import make_env

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", required=True, nargs="+", help="agents of `moejepa-train mbrl -c dmc`")
    ap.add_argument("--config", default=os.path.join(str(record.ROOT), "config", "train", "dmc.yaml"))
    ap.add_argument("--episodes", type=int, default=20, help=f"episodes per agent (seeds {FIRST_SEED} on)")
    episode = task_settings(TASK)["steps"]
    ap.add_argument("--steps", type=int, default=episode, help=f"env steps per episode (the task's: {episode})")
    ap.add_argument(
        "--set", nargs="*", default=[], metavar="key=value", help="overrides (plan.*, collect.env_kwargs.*)"
    )
    record.add_arguments(ap, "reacher_targets")
    a = ap.parse_args(argv)
    if not 1 <= a.steps <= episode:
        ap.error(f"--steps={a.steps}: one episode of {TASK} is 1-{episode} env steps")
    torch.set_num_threads(1)
    cfg = variant_config(TASK, a.set, [], a.config)
    env = make_env(f"dmc:{TASK}", **cfg.collect.env_kwargs)
    agents = []
    for path in a.checkpoint:
        policy, _ = agent_policy(path, cfg, "reacher_targets")
        seeds = range(FIRST_SEED, FIRST_SEED + a.episodes)
        episodes = {str(s): task_episode(env, policy, s, a.steps) for s in seeds}
        agents.append({"checkpoint": path, "episodes": episodes, **summary(episodes.values())})
        print(json.dumps({k: v for k, v in agents[-1].items() if k != "episodes"}), flush=True)
    env.close()
    res = {
        "steps": a.steps,
        "episodes": a.episodes,
        "env_kwargs": dict(cfg.collect.env_kwargs),
        "agents": agents,
        **summary([e for g in agents for e in g["episodes"].values()]),
    }
    res["return_per_agent"] = [g["return_mean"] for g in agents]
    record.write_result(a, res)
    print(json.dumps({k: v for k, v in res.items() if k != "agents"}))
    return res


if __name__ == "__main__":
    main()
