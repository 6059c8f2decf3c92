"""Can a cartpole agent hold the pole up? Its planner, started with the pole upright and still.

Swing-up returns mix two skills: pumping the pole up (learnt early; a pole kept spinning scores ~200-300)
and balancing it at the top (what separates ~250 from ~800). This isolates the second: each episode sets
dm_control's cartpole to the cart centred, the pole at one of seven small angles from upright and everything at rest
(`env.set_state`), then runs the agent's planner (the training config's, no exploration noise) for
`--steps` env steps. It reports, per start angle, the steps until the pole first leaves |angle| < 30 deg
(`held_steps`, capped at --steps) and the mean reward per env step (dm_control's, summed over the repeat
of 8: at most 8). A model that never saw the pole slow near the top lets it fall in a few steps.

    MUJOCO_GL=egl python -m bench.experiments.cartpole_upright --checkpoint runs/dmc/mbrl/model.safetensors [...]

Several checkpoints (one per training seed) are measured one after the other; the summary gives each
agent's mean and the mean over all their episodes.
"""

from __future__ import annotations

import argparse
import json
import math
import os

import numpy as np

from bench import record

ANGLES_DEG = (-6.0, -4.0, -2.0, 0.0, 2.0, 4.0, 6.0)  # start angles from upright
HELD_COS = math.cos(math.radians(30))  # the pole counts as up while cos(angle) stays above this


def upright_episode(env, policy, angle_rad: float, steps: int) -> dict:
    """One episode from the pole at `angle_rad` from upright, all at rest."""
    obs, info = env.reset(seed=0)
    state = np.zeros_like(info["physics_state"])  # [cart x, hinge angle, their velocities]
    state[1] = angle_rad
    obs = env.unwrapped.set_state(state)
    info = dict(info, step=0)
    rewards, held = [], None
    for t in range(steps):
        a = policy(obs, info)
        obs, r, _, _, info = env.step(a)
        rewards.append(float(r))
        if held is None and info["state"][1] < HELD_COS:  # the observation's cos(angle)
            held = t
    return {"held_steps": steps if held is None else held, "reward_per_step": round(float(np.mean(rewards)), 3)}


def summary(episodes) -> dict:
    """Mean held steps and reward per step over episodes."""
    episodes = list(episodes)
    return {
        "held_steps_mean": round(float(np.mean([e["held_steps"] for e in episodes])), 2),
        "reward_per_step_mean": round(float(np.mean([e["reward_per_step"] for e in episodes])), 3),
    }


def main(argv: list[str] | None = None) -> dict:
    import torch

    from bench.experiments.dmc_planner_eval import agent_policy
    from moejepa_ros.sim import make_env
    from training.config import load_config

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--checkpoint", required=True, nargs="+", help="agents of `moejepa-train mbrl -c dmc` on cartpole (seeds)"
    )
    ap.add_argument("--config", default=os.path.join(str(record.ROOT), "config", "train", "dmc.yaml"))
    ap.add_argument("--steps", type=int, default=40, help="env steps per episode (40 = 3.2 s at repeat 8)")
    ap.add_argument(
        "--set", nargs="*", default=[], metavar="key=value", help="overrides (plan.*, collect.env_kwargs.render)"
    )
    record.add_arguments(ap, "cartpole_upright")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    cfg = load_config([a.config], a.set)
    env = make_env("dmc:cartpole_swingup", **cfg.collect.env_kwargs)
    agents = []
    for path in a.checkpoint:
        policy, _ = agent_policy(path, cfg, "cartpole_upright")
        episodes = {str(d): upright_episode(env, policy, math.radians(d), a.steps) for d in ANGLES_DEG}
        agents.append({"checkpoint": path, "episodes": episodes, **summary(episodes.values())})
    env.close()
    res = {"steps": a.steps, "agents": agents, **summary([e for g in agents for e in g["episodes"].values()])}
    res["held_steps_per_agent"] = [g["held_steps_mean"] for g in agents]
    record.write_result(a, res)
    print(json.dumps(res))
    return res


if __name__ == "__main__":
    main()
