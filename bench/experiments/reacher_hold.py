"""Does a reacher agent stay on the target? Its planner, started with the finger on the target and at rest.

reacher_easy's reward is 1 while the fingertip is within the target's radius plus its own (0.06) and 0 elsewhere,
so a return mixes two skills: bringing the finger to the target and keeping it there. The arm has no gravity, so
at rest on the target doing nothing scores every remaining step; an agent that leaves is not seeing (or not
valuing) where it is. This isolates the second skill, as `cartpole_upright` does for the pole: each episode
resets dm_control's reacher_easy with its own seed (the target where the task puts it), then places the arm by
inverse kinematics with the fingertip on the target's centre, joints at rest (`env.set_state`), and runs the
agent's planner (the training config's, no exploration noise) for `--steps` env steps. Per episode it reports the
steps until the fingertip first leaves the rewarded disc (`held_steps`, capped at --steps), the steps it is back
inside by the end, and the mean reward per env step (summed over the repeat of 4: at most 4). It also reads the
agent's reward head on the first frame stack for zero torque, whose true reward is the full 4: `reward_seen` is that
prediction over 4 (1 = the agent sees that it is on the target), which tells perception from control. Each episode
also gives the target's polar position about the shoulder, to see which parts of the arena an agent knows.

    MUJOCO_GL=egl python -m bench.experiments.reacher_hold --checkpoint runs/dmc/mbrl/model.safetensors [...]

Several checkpoints (training seeds, or one seed's snapshots) are measured one after the other on the same
episodes; the summary gives each agent's means and the mean over all their episodes. `--checkpoint zero` is the
agent that sends zero torque: it holds every step, which checks the starts (it is left out of the overall means).
"""

from __future__ import annotations

import argparse
import json
import math
import os

import numpy as np

from bench import record

FIRST_SEED = 90_000  # episode seeds: apart from training's and the evaluation's (training.mbrl)
ZERO = "zero"  # --checkpoint value for the zero-torque agent


def zero_policy(obs, info) -> np.ndarray:
    """The agent that sends zero torque (reacher has two joints)."""
    return np.zeros(2, np.float32)


def finger_on_target(physics) -> np.ndarray:
    """Joint angles [shoulder, wrist] that put the fingertip on the target's centre (two links, elbow positive)."""
    base = physics.named.data.xpos["arm"][:2]
    l1 = float(physics.named.model.body_pos["hand"][0])
    l2 = float(physics.named.model.body_pos["finger"][0])
    p = physics.named.data.geom_xpos["target"][:2] - base
    d = float(np.hypot(*p))
    c2 = (d * d - l1 * l1 - l2 * l2) / (2 * l1 * l2)
    if not -1.0 <= c2 <= 1.0:
        reach = f"{abs(l1 - l2):.3f}-{l1 + l2:.3f}"
        raise ValueError(f"reacher_hold: target at {d:.3f} m is out of the arm's reach ({reach} m)")
    q2 = math.acos(c2)
    q1 = math.atan2(p[1], p[0]) - math.atan2(l2 * math.sin(q2), l1 + l2 * math.cos(q2))
    return np.array([q1, q2])


def start_on_target(env, seed: int) -> np.ndarray:
    """Reset with `seed`, then the fingertip on the target and the arm at rest; returns the first frame."""
    env.reset(seed=seed)
    physics = env.unwrapped.physics
    state = np.zeros(physics.get_state().shape)  # [qpos shoulder, wrist, qvel shoulder, wrist]
    state[:2] = finger_on_target(physics)
    obs = env.unwrapped.set_state(state)
    miss = float(physics.finger_to_target_dist())
    if miss > 1e-4:
        raise RuntimeError(f"reacher_hold: inverse kinematics missed the target by {miss:.5f} m (seed {seed})")
    return obs


def reward_seen(policy, repeat: int) -> float:
    """The agent's reward head on its current frame stack for zero torque, over the true reward at rest (`repeat`)."""
    import torch

    c = policy.controller
    frames = torch.as_tensor(policy.frames.snapshot().frames)[None]
    with torch.no_grad():
        z = c.model.encode(frames.to(c.device))
        r = c.model.reward(z, torch.zeros(1, len(c.low), device=c.device))
    return round(float(r.reshape(-1)[0]) / repeat, 3)


def hold_episode(env, policy, seed: int, steps: int) -> dict:
    """One episode from the fingertip on the target, at rest; `policy` is a PlannerPolicy or `zero_policy`."""
    obs = start_on_target(env, seed)
    physics = env.unwrapped.physics
    radii = float(physics.named.model.geom_size[["target", "finger"], 0].sum())
    target = physics.named.data.geom_xpos["target"][:2] - physics.named.data.xpos["arm"][:2]
    info, rewards, left, inside, seen = {"step": 0}, [], None, 0, None
    for t in range(steps):
        a = policy(obs, info)
        if t == 0 and policy is not zero_policy:
            seen = reward_seen(policy, env.unwrapped.action_repeat)
        obs, r, _, _, info = env.step(a)
        rewards.append(float(r))
        inside = int(physics.finger_to_target_dist() <= radii)
        if left is None and not inside:
            left = t
    return {
        "held_steps": steps if left is None else left,
        "inside_at_end": inside,
        "reward_per_step": round(float(np.mean(rewards)), 3),
        "reward_seen": seen,
        "target_angle_deg": round(math.degrees(math.atan2(target[1], target[0])), 1),
        "target_radius": round(float(np.hypot(*target)), 3),
    }


def summary(episodes) -> dict:
    """Mean held steps, share of episodes inside at the end, reward per step, and the reward head's reading."""
    episodes = list(episodes)
    seen = [e["reward_seen"] for e in episodes if e["reward_seen"] is not None]
    return {
        "held_steps_mean": round(float(np.mean([e["held_steps"] for e in episodes])), 2),
        "inside_at_end": round(float(np.mean([e["inside_at_end"] for e in episodes])), 3),
        "reward_per_step_mean": round(float(np.mean([e["reward_per_step"] for e in episodes])), 3),
        "reward_seen_mean": round(float(np.mean(seen)), 3) if seen else None,
        "seen_half": round(float(np.mean([x >= 0.5 for x in seen])), 3) if seen else None,
    }


def main(argv: list[str] | None = None) -> dict:
    import torch

    from moejepa_ros.control import PlannerPolicy
    from moejepa_ros.model.checkpoint import load_checkpoint
    from moejepa_ros.sim import make_env
    from training.config import load_config

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--checkpoint",
        required=True,
        nargs="+",
        help=f"agents of `moejepa-train mbrl -c dmc` on reacher_easy (seeds or snapshots); '{ZERO}': zero torque",
    )
    ap.add_argument("--config", default=os.path.join(str(record.ROOT), "config", "train", "dmc.yaml"))
    ap.add_argument("--episodes", type=int, default=20, help=f"episodes per agent (seeds {FIRST_SEED} on)")
    ap.add_argument("--steps", type=int, default=50, help="env steps per episode (50 = 200 frames at repeat 4)")
    ap.add_argument("--set", nargs="*", default=[], metavar="key=value", help="planner overrides (plan.*)")
    record.add_arguments(ap, "reacher_hold")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    cfg = load_config([a.config], a.set)
    env = make_env("dmc:reacher_easy")
    agents = []
    for path in a.checkpoint:
        if path == ZERO:
            policy = zero_policy
        else:
            model, meta = load_checkpoint(path)
            model.eval()
            low, high = meta["action_low"], meta["action_high"]
            policy = PlannerPolicy(model, cfg.plan.planner, cfg.plan.objectives, low, high, torch.device("cpu"))
        episodes = {str(s): hold_episode(env, policy, s, a.steps) for s in range(FIRST_SEED, FIRST_SEED + a.episodes)}
        agents.append({"checkpoint": path, "episodes": episodes, **summary(episodes.values())})
        print(json.dumps({"checkpoint": path, **summary(episodes.values())}), flush=True)
    env.close()
    learnt = [g for g in agents if g["checkpoint"] != ZERO] or agents  # the zero agent only checks the starts
    res = {
        "steps": a.steps,
        "episodes": a.episodes,
        "agents": agents,
        **summary([e for g in learnt for e in g["episodes"].values()]),
    }
    res["held_steps_per_agent"] = [g["held_steps_mean"] for g in learnt]
    record.write_result(a, res)
    print(json.dumps({k: v for k, v in res.items() if k != "agents"}))
    return res


if __name__ == "__main__":
    main()
