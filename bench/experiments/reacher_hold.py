"""Does a reacher agent stay on the target? Its planner, started with the finger on the target and at rest.

reacher_easy's reward is 1 while the fingertip is within the target's radius plus its own (0.06) and 0 elsewhere,
so a return mixes two skills: bringing the finger to the target and keeping it there. The arm lies flat (gravity
acts along its hinges), so at rest on the target zero torque scores every remaining step. This isolates the second
skill, as `cartpole_upright` does for the pole: each episode resets dm_control's reacher_easy with its own seed
(the target where the task puts it), then places the arm by inverse kinematics with the fingertip on the target's
centre (elbow sign alternating between episodes), joints at rest (`env.set_state`), and runs the agent's planner
(the training config with the task's discount, as `dmc_pixels` trains it; no exploration noise) for `--steps` env
steps. Per episode it reports the steps until the fingertip first leaves the rewarded disc (`held_steps`, capped
at --steps), whether it is inside at the end, and the mean reward per env step (dm_control's, summed over the
action repeat). It also reads the agent's reward head on the first frame stack for zero torque, whose true
reward is the full repeat: `reward_seen` is that prediction over it (in the agent's reward scale; 1 = the agent
sees that it is on the target), to tell perception from control; and `prefers_staying`, whether the planner's own
objective scores zero torque over its horizon better than the plan it picked at that first step (False: the
agent's model and Q believe moving is better; True: its search missed staying). Each episode also gives the
target's polar position about the shoulder and the elbow's sign, to see which parts of the arena an agent knows.

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

TASK = "reacher_easy"
FIRST_SEED = 90_000  # episode seeds: apart from training's and the evaluation's (training.mbrl)
ZERO = "zero"  # --checkpoint value for the zero-torque agent


def zero_policy(obs, info) -> np.ndarray:
    """The agent that sends zero torque (reacher has two joints)."""
    return np.zeros(2, np.float32)


def finger_on_target(physics, elbow: int = 1) -> np.ndarray:
    """Joint angles [shoulder, wrist] that put the fingertip on the target's centre (two links; `elbow` +1 or -1
    picks the wrist's sign, both poses occur in the task)."""
    return finger_at(physics, physics.named.data.geom_xpos["target"][:2], elbow)


def finger_at(physics, point, elbow: int = 1) -> np.ndarray:
    """Joint angles [shoulder, wrist] that put the fingertip at `point` (x, y in the world); ValueError where the
    arm cannot reach it."""
    base = physics.named.data.xpos["arm"][:2]
    l1 = float(physics.named.model.body_pos["hand"][0])
    l2 = float(physics.named.model.body_pos["finger"][0])
    limit = float(physics.named.model.jnt_range["wrist"][1])
    p = np.asarray(point, np.float64)[:2] - base
    d = float(np.hypot(*p))
    c2 = (d * d - l1 * l1 - l2 * l2) / (2 * l1 * l2)
    q2 = math.acos(min(1.0, max(-1.0, c2))) * (1 if elbow >= 0 else -1)
    if not -1.0 <= c2 <= 1.0 or abs(q2) > limit:
        inner = math.sqrt(l1 * l1 + l2 * l2 + 2 * l1 * l2 * math.cos(limit))
        raise ValueError(f"reacher_hold: a point at {d:.3f} m is out of the arm's reach ({inner:.3f}-{l1 + l2:.3f} m)")
    q1 = math.atan2(p[1], p[0]) - math.atan2(l2 * math.sin(q2), l1 + l2 * math.cos(q2))
    return np.array([math.remainder(q1, 2 * math.pi), q2])


def start_on_target(env, seed: int) -> np.ndarray:
    """Reset with `seed`, then the fingertip on the target and the arm at rest (elbow sign alternating with the
    seed); returns the first frame."""
    env.reset(seed=seed)
    physics = env.unwrapped.physics
    state = np.zeros(physics.get_state().shape)  # [qpos shoulder, wrist, qvel shoulder, wrist]
    state[:2] = finger_on_target(physics, elbow=1 if seed % 2 == 0 else -1)
    obs = env.unwrapped.set_state(state)
    miss = float(physics.finger_to_target_dist())
    if miss > 1e-4:
        raise RuntimeError(f"reacher_hold: inverse kinematics missed the target by {miss:.5f} m (seed {seed})")
    return obs


def prefers_staying(policy) -> bool:
    """Whether the planner's own objective (the predicted rewards and Q of the plan it just made) scores keeping
    zero torque over the plan's horizon better than the plan it picked: False means it believes moving is better,
    True that its search missed staying."""
    import torch

    plan, problem = policy.last_plan, policy.controller.planner.last_problem
    stay = (-problem.center / problem.half_range).expand_as(plan.actions)[None]  # zero torque, normalised
    with torch.inference_mode():
        return bool(float(problem.evaluate(stay)[0]) < float(plan.predicted_cost))


def reward_seen(policy, full: float) -> float:
    """The agent's reward head on its current frame stack for zero torque, over the true reward at rest (`full`:
    the repeat times the training's reward scale)."""
    import torch

    c = policy.controller
    frames = torch.as_tensor(policy.frames.snapshot().frames)[None]
    with torch.no_grad():
        z = c.model.encode(frames.to(c.device))
        r = c.model.reward(z, torch.zeros(1, len(c.low), device=c.device))
    return round(float(r.reshape(-1)[0]) / full, 3)


def hold_episode(env, policy, seed: int, steps: int, reward_scale: float = 1.0) -> dict:
    """One episode from the fingertip on the target, at rest; `policy` is a PlannerPolicy or `zero_policy`;
    `reward_scale` is the agent's training scale of the reward (`data.reward_scale`)."""
    obs = start_on_target(env, seed)
    physics = env.unwrapped.physics
    radii = float(physics.named.model.geom_size[["target", "finger"], 0].sum())
    target = physics.named.data.geom_xpos["target"][:2] - physics.named.data.xpos["arm"][:2]
    info, rewards, left, inside, seen, stay = {"step": 0}, [], None, 0, None, None
    for t in range(steps):
        a = policy(obs, info)
        if t == 0 and policy is not zero_policy:
            seen = reward_seen(policy, env.unwrapped.action_repeat * reward_scale)
            stay = prefers_staying(policy)
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
        "prefers_staying": stay,
        "target_angle_deg": round(math.degrees(math.atan2(target[1], target[0])), 1),
        "target_radius": round(float(np.hypot(*target)), 3),
        "elbow": 1 if physics.named.data.qpos["wrist"][0] >= 0 else -1,
    }


def summary(episodes) -> dict:
    """Mean held steps, share of episodes inside at the end, reward per step, the reward head's reading and the
    share of episodes whose planner objective prefers staying."""
    episodes = list(episodes)
    seen = [e["reward_seen"] for e in episodes if e["reward_seen"] is not None]
    stays = [e["prefers_staying"] for e in episodes if e["prefers_staying"] is not None]
    return {
        "held_steps_mean": round(float(np.mean([e["held_steps"] for e in episodes])), 2),
        "inside_at_end": round(float(np.mean([e["inside_at_end"] for e in episodes])), 3),
        "reward_per_step_mean": round(float(np.mean([e["reward_per_step"] for e in episodes])), 3),
        "reward_seen_mean": round(float(np.mean(seen)), 3) if seen else None,
        "seen_half": round(float(np.mean([x >= 0.5 for x in seen])), 3) if seen else None,
        "prefers_staying": round(float(np.mean(stays)), 3) if stays else None,
    }


def main(argv: list[str] | None = None) -> dict:
    import torch

    from bench.experiments.dmc_pixels import task_settings
    from bench.experiments.dmc_planner_eval import agent_policy, variant_config
    from moejepa_ros.sim import make_env

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--checkpoint",
        required=True,
        nargs="+",
        help=f"agents of `moejepa-train mbrl -c dmc` on reacher_easy (seeds or snapshots); '{ZERO}': zero torque",
    )
    ap.add_argument("--config", default=os.path.join(str(record.ROOT), "config", "train", "dmc.yaml"))
    ap.add_argument("--episodes", type=int, default=20, help=f"episodes per agent (seeds {FIRST_SEED} on)")
    ap.add_argument("--steps", type=int, default=50, help="env steps per episode (at most the task's episode)")
    ap.add_argument(
        "--set", nargs="*", default=[], metavar="key=value", help="overrides (plan.*, collect.env_kwargs.render)"
    )
    record.add_arguments(ap, "reacher_hold")
    a = ap.parse_args(argv)
    episode = task_settings(TASK)["steps"]
    if not 1 <= a.steps <= episode:
        ap.error(f"--steps={a.steps}: one episode of {TASK} is 1-{episode} env steps")
    torch.set_num_threads(1)
    cfg = variant_config(TASK, a.set, [], a.config)  # the planner as in training: the task's discount
    env = make_env(f"dmc:{TASK}", **cfg.collect.env_kwargs)
    agents = []
    for path in a.checkpoint:
        scale = 1.0
        if path == ZERO:
            policy = zero_policy
        else:
            policy, meta = agent_policy(path, cfg, "reacher_hold")
            scale = float((meta.get("training") or {}).get("reward_scale", 1.0))
        seeds = range(FIRST_SEED, FIRST_SEED + a.episodes)
        episodes = {str(s): hold_episode(env, policy, s, a.steps, scale) for s in seeds}
        agents.append({"checkpoint": path, "episodes": episodes, **summary(episodes.values())})
        print(json.dumps({k: v for k, v in agents[-1].items() if k != "episodes"}), flush=True)
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
