"""Does a model variant's reward head carry to targets it never trained on? The online loop's update, offline.

A DMC agent's returns answer slowly (reacher's swing by +-200 between evaluations, and a three-seed run to 20k
takes ~45 min here), so a change to the encoder or the latent is first judged here: the online loop's learner
(training/td.py, the same losses, optimisers, prioritized replay and augmentation as `mbrl.loop=online`) fits a
fresh model of the variant (`--set model.*=...`) for `--updates` updates on the recorded episodes of some runs
(`--train`, run directories of `bench.experiments.dmc_pixels`), and every `--eval-every` updates reads its reward
head r(z_t, a_t) on every step of other runs' episodes (`--test`: other targets, the same kind of behaviour) and
of its own. A step is "on" where its recorded reward is at least half the most it can be (the action repeat x
data.reward_scale); recall is the share of on steps where the head says at least half, false alarms the share of
the others where it does, AUC the chance an on step is scored above an off one (threshold-free).

A replay's rewarded steps come in runs: most of them in the few episodes where the agent reached and kept its
target, so a reading on other runs' episodes is one on a handful of targets. On reacher `--poses N` adds a test
with one target per state: N of reacher_easy's own resets (seeds 95000 on, apart from training's, the
evaluation's and the other reacher benches'), the arm at rest with its fingertip placed by inverse kinematics at a
point drawn uniformly within 0.12 m of the target's centre (twice the rewarded radius, so about a third of the
states are on the target; elbow sign alternating), each joint moving at a speed drawn within +-3 rad/s (the stack's
two earlier frames are the poses one and two env steps before at those speeds), read with zero torque. A pose's
reward is the env's own for one step of zero torque from it, what the head predicts for a_t = 0 (the fingertip
moves on at its speed during the step); the earlier poses keep the wrist within its limit. Records before
session 26 labelled a pose by the fingertip in its newest frame (4.7% of poses disagree) and let the earliest
frame pass the wrist's limit (14 of 900).

    python -m bench.experiments.reward_offline --train <runs>/reacher_easy/seed0 <runs>/reacher_easy/seed1 \\
        --test <runs>/reacher_easy/seed2 --updates 3000 --set model.latent_dim=256 --record --name <variant>

`--checkpoint` reads trained agents (`moejepa-train mbrl`) on the same test episodes and poses instead of fitting
a model, so an online run's agents and the offline fits are measured alike. The same seed (`--seed`) draws the
same batches for every variant. A diagnosis of perception, not a return: the
fixed replay is one agent's behaviour, and the head is read on the encoder's latent of each step's own stack
(as the planner's first step), not on imagined ones.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import time

import numpy as np

from bench import record


def load_episodes(run_dirs: list[str]) -> list[dict]:
    """Every recorded episode (frames, actions, rewards) under each run directory's mbrl/episodes/."""
    eps = []
    for d in run_dirs:
        files = sorted(glob.glob(os.path.join(d, "mbrl", "episodes", "episode_*[0-9].npz")))
        if not files:
            raise FileNotFoundError(f"reward_offline: no episodes under {os.path.join(d, 'mbrl', 'episodes')}")
        for f in files:
            with np.load(f) as z:
                eps.append({"frames": z["frames"], "actions": z["actions"], "rewards": z["rewards"], "file": f})
    return eps


def auc(scores: np.ndarray, on: np.ndarray) -> float | None:
    """P(score of an on step > score of an off step), ties counted half (Mann-Whitney U / n_on n_off)."""
    n_on, n_off = int(on.sum()), int((~on).sum())
    if not n_on or not n_off:
        return None
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    s = scores[order]
    i = 0
    while i < len(s):  # average ranks over ties
        j = i
        while j + 1 < len(s) and s[j + 1] == s[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[on].sum() - n_on * (n_on + 1) / 2) / (n_on * n_off))


FIRST_POSE_SEED = 95_000
POSE_REACH = 0.12  # m from the target's centre: twice reacher's rewarded radius (target 0.05 + fingertip 0.01)
POSE_SPEED = 3.0  # rad/s, each joint within +-this (random torques move a joint at 2.1 median, 4.3 at the 90th %)


def reacher_poses(n: int, env_kwargs: dict) -> dict:
    """`n` reacher states in motion, one reset (target) each: stacks [n, 3, S, S, 3] uint8, actions (zero) [n, 2] and
    rewards [n] (the env's reward for one step of zero torque from the pose, in [0, repeat]), as an episode's
    arrays."""
    from bench.experiments.reacher_hold import TASK, finger_at
    from moejepa_ros.sim import make_env

    env = make_env(f"dmc:{TASK}", **env_kwargs)
    rng = np.random.default_rng(FIRST_POSE_SEED)
    stacks, rewards = [], []
    for i in range(n):
        env.reset(seed=FIRST_POSE_SEED + i)
        physics = env.unwrapped.physics
        target = physics.named.data.geom_xpos["target"][:2].copy()
        while True:  # a point the arm reaches
            r, a = POSE_REACH * rng.random() ** 0.5, rng.uniform(-np.pi, np.pi)
            try:
                q = finger_at(physics, target + r * np.array([np.cos(a), np.sin(a)]), elbow=1 if i % 2 else -1)
                break
            except ValueError:
                continue
        step = physics.timestep() * env.unwrapped.action_repeat
        limit = float(physics.named.model.jnt_range["wrist"][1])
        while True:  # joint speeds whose earlier poses keep the wrist within its limit
            dq = rng.uniform(-POSE_SPEED, POSE_SPEED, 2) * step
            if abs(q[1] - 2 * dq[1]) <= limit:
                break
        state = np.zeros(physics.get_state().shape)
        frames = []
        for back in (2, 1, 0):  # the two frames before at the same joint speeds, then the pose
            state[:2], state[2:] = q - back * dq, dq / step
            frames.append(env.unwrapped.set_state(state))
        stacks.append(np.stack(frames))
        rewards.append(env.step(np.zeros(2))[1])  # the step the head predicts: zero torque from the pose
    env.close()
    return {"stacks": np.stack(stacks), "actions": np.zeros((n, 2), np.float32), "rewards": np.array(rewards)}


def read_reward_head(model, episodes: list[dict], full: float, chunk: int = 256) -> dict:
    """The head on every step of `episodes`: r(encode(stack_t), a_t) against the recorded reward."""
    import torch

    k = model.cfg.frame_stack
    preds, rewards = [], []
    with torch.no_grad():
        for ep in episodes:
            T = len(ep["rewards"])
            if "stacks" in ep:
                stacks = ep["stacks"]
            else:
                f = np.concatenate([np.repeat(ep["frames"][:1], k - 1, 0), ep["frames"]], 0)
                stacks = np.stack([f[t : t + k] for t in range(T)])
            for i in range(0, T, chunk):
                z = model.encode(torch.as_tensor(stacks[i : i + chunk]))
                preds.append(model.reward(z, torch.as_tensor(ep["actions"][i : i + chunk])).reshape(-1).numpy())
            rewards.append(ep["rewards"])
    pred, rew = np.concatenate(preds) / full, np.concatenate(rewards) / full
    on = rew >= 0.5
    return {
        "recall": round(float((pred[on] >= 0.5).mean()), 3) if on.any() else None,
        "false_alarms": round(float((pred[~on] >= 0.5).mean()), 3),
        "auc": None if auc(pred, on) is None else round(auc(pred, on), 4),
        "mse_on": round(float(np.square(pred[on] - rew[on]).mean()), 4) if on.any() else None,
        "mse_off": round(float(np.square(pred[~on] - rew[~on]).mean()), 4),
        "on_steps": int(on.sum()),
        "steps": int(len(on)),
    }


def read_agents(a, cfg, test: list[dict], repeat: int) -> dict:
    """`--checkpoint`: each agent's reward head on the test episodes and the poses (in its own reward scale)."""
    from moejepa_ros.model.checkpoint import load_checkpoint
    from moejepa_ros.sim.dmc import check_same_pixels, trained_env_kwargs

    env_kwargs = dict(cfg.collect.env_kwargs)
    poses = reacher_poses(a.poses, env_kwargs) if a.poses else None
    agents = []
    for path in a.checkpoint:
        model, meta = load_checkpoint(path)
        check_same_pixels(trained_env_kwargs(meta), env_kwargs, f"reward_offline: {path}")
        full = repeat * float((meta.get("training") or {}).get("reward_scale", 1.0))
        row = {"checkpoint": path, "test": read_reward_head(model.eval(), test, full)}
        if poses:
            row["poses"] = read_reward_head(model, [poses], full)
        agents.append(row)
        print(json.dumps(row), flush=True)
    res = {"task": a.task, "test_runs": a.test, "test_episodes": len(test), "poses": a.poses, "agents": agents}
    record.write_result(a, res)
    return res


def main(argv: list[str] | None = None) -> dict:
    import torch

    from bench.experiments.dmc_planner_eval import variant_config
    from moejepa_ros.model.world_model import WorldModel
    from moejepa_ros.sim.dmc import ACTION_REPEAT, DEFAULT_ACTION_REPEAT
    from training.mbrl import online_learner, online_replay
    from training.stages import model_config

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--train", nargs="+", default=[], help="run directories whose episodes the model fits")
    ap.add_argument("--checkpoint", nargs="+", default=[], help="read these agents instead of fitting a model")
    ap.add_argument("--test", nargs="+", required=True, help="run directories whose episodes it is read on")
    ap.add_argument("--task", default="reacher_easy", help="the runs' DMC task (its discount and action repeat)")
    ap.add_argument("--updates", type=int, default=3000)
    ap.add_argument("--eval-every", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0, help="the model's initialisation and the batches drawn")
    ap.add_argument("--poses", type=int, default=0, help="reacher: arm poses in motion, one target each (0 = none)")
    ap.add_argument("--config", default=os.path.join(str(record.ROOT), "config", "train", "dmc.yaml"))
    ap.add_argument("--set", nargs="*", default=[], metavar="key=value", help="the variant (model.*, data.*, mbrl.*)")
    record.add_arguments(ap, "reward_offline")
    a = ap.parse_args(argv)
    if a.updates < 1 or a.eval_every < 1:
        ap.error("--updates and --eval-every must be >= 1")
    if bool(a.train) == bool(a.checkpoint):
        ap.error("give either --train (fit a model) or --checkpoint (read trained agents)")
    torch.set_num_threads(1)
    torch.manual_seed(a.seed)
    cfg = variant_config(a.task, [], a.set, a.config)
    domain = a.task.split("_")[0]
    repeat = ACTION_REPEAT.get(domain, DEFAULT_ACTION_REPEAT)
    test = load_episodes(a.test)
    if a.checkpoint:
        return read_agents(a, cfg, test, repeat)
    train = load_episodes(a.train)
    action_dim = train[0]["actions"].shape[1]
    mc = model_config(cfg, action_dim)
    if train[0]["frames"].shape[1] != mc.image_size:
        raise ValueError(
            f"reward_offline: the episodes hold {train[0]['frames'].shape[1]}-px frames, model.image_size is "
            f"{mc.image_size}"
        )
    poses = reacher_poses(a.poses, dict(cfg.collect.env_kwargs)) if a.poses else None
    model = WorldModel(mc)
    acts = np.concatenate([e["actions"] for e in train])
    low, high = np.minimum(acts.min(0), -1.0), np.maximum(acts.max(0), 1.0)  # DMC's [-1, 1]
    learner = online_learner(cfg, model, low, high, a.seed)
    replay = online_replay(cfg, mc.frame_stack, "")
    for e in train:
        replay.add(e["frames"], e["actions"], e["rewards"], save=False)
    full = repeat * cfg.data.reward_scale
    rng = np.random.default_rng([a.seed, 20])
    model.eval()
    curve, t0, seconds = [], time.perf_counter(), 0.0
    for u in range(1, a.updates + 1):
        t = time.perf_counter()
        batch = replay.sample(cfg.data.batch_size, rng)
        terms = learner.update(batch)
        if "index" in batch:
            replay.update_priorities(batch["index"], learner.last_priority)
        seconds += time.perf_counter() - t
        if u % a.eval_every == 0 or u == a.updates:
            point = {
                "updates": u,
                "test": read_reward_head(model, test, full),
                "train": read_reward_head(model, train, full),
                **({"poses": read_reward_head(model, [poses], full)} if poses else {}),
                "terms": {k: round(v, 4) for k, v in terms.items()},
            }
            curve.append(point)
            print(json.dumps(point), flush=True)
    res = {
        "task": a.task,
        "variant": a.set,
        "seed": a.seed,
        "train_runs": a.train,
        "test_runs": a.test,
        "train_episodes": len(train),
        "test_episodes": len(test),
        "poses": a.poses,
        "updates": a.updates,
        "ms_per_update": round(1000 * seconds / a.updates, 1),
        "seconds": round(time.perf_counter() - t0, 1),
        "curve": curve,
    }
    record.write_result(a, res)
    return res


if __name__ == "__main__":
    main()
