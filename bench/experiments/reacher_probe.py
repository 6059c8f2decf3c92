"""What does a reacher agent's latent know about the arm? Probes of its encoder against the pixels themselves.

reacher_easy's reward needs the fingertip on the target, so an agent's latent must hold both. This plays
`--episodes` short episodes of random torques (a uniform draw held for 5 env steps, zero one time in five) from
dm_control's own resets on the agent's pixels, encodes every frame stack with the agent's encoder, and fits an
MLP probe from the latent to the state on the first 70% of the episodes (early-stopped on the last 15% of them),
scoring R² on the other 30% (other targets, other arm poses): the fingertip's and the target's positions, the
fingertip relative to the target and the two joint velocities. The same probe on the first 64 principal
components of the newest frame alone (at half resolution, fitted on the training episodes) is the reference:
what a plain linear summary of one frame holds (so not the speeds, which need two). It also reads the agent's
reward head r(z, a) on the stack each action was taken from: recall (the share of the steps with reward, at
least half the repeat, where it predicts at least half) and false alarms (the share of the others where it does).

    MUJOCO_GL=egl python -m bench.experiments.reacher_probe --checkpoint runs/dmc/mbrl/model.safetensors [...]

Random torques reach poses and speeds a trained agent seldom makes, so this measures what the encoder has kept
of the arm in general, not on the agent's own path (its replay); compare agents on the same episodes.
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np

from bench import record
from bench.experiments.reacher_hold import TASK
from moejepa_ros.sim.dmc import DEFAULT_SIZE

FIRST_SEED = 70_000  # episode seeds: apart from training's, the evaluation's and reacher_hold's
LABELS = (
    "finger_x",
    "finger_y",
    "target_x",
    "target_y",
    "finger_to_target_x",
    "finger_to_target_y",
    "shoulder_vel",
    "wrist_vel",
)
TRAIN_SHARE = 0.7
VAL_SHARE = 0.15  # of all episodes, the last of the training ones: early stopping
HOLD = 5  # env steps each random torque is held


def random_episodes(env, episodes: int, steps: int, seed: int = 0):
    """Random-torque episodes: (stacks [N, 3, H, W, 3], labels [N, 8], rewards [N], actions [N, A], starts
    [episodes, 3, H, W, 3]), N = episodes x steps. Row i is one env step: its stack ends on the frame after the
    action (with the two before it) and its labels are the state then; the stack the action was taken from is
    row i - 1's, or the episode's start (its first frame repeated) on its first step (`before`)."""
    rng = np.random.default_rng(seed)
    stacks, labels, rewards, actions, starts = [], [], [], [], []
    for ep in range(episodes):
        obs, _ = env.reset(seed=FIRST_SEED + ep)
        physics = env.unwrapped.physics
        frames, a = [obs] * 3, np.zeros(env.action_space.shape, np.float32)
        starts.append(np.stack(frames))
        for t in range(steps):
            if t % HOLD == 0:
                a = (rng.uniform(-1.0, 1.0, a.shape) * (rng.random() >= 0.2)).astype(np.float32)
            obs, r, _, _, _ = env.step(a)
            frames = frames[1:] + [obs]
            finger = physics.named.data.geom_xpos["finger"][:2]
            target = physics.named.data.geom_xpos["target"][:2]
            labels.append(np.r_[finger, target, finger - target, physics.data.qvel[:2]])
            stacks.append(np.stack(frames))
            rewards.append(r)
            actions.append(a)
    return (
        np.stack(stacks),
        np.array(labels, np.float32),
        np.array(rewards, np.float32),
        np.stack(actions),
        np.stack(starts),
    )


def before(z_after, z_starts, steps: int):
    """The latent each step's action was taken from: the previous row's, or the episode's start on its first."""
    import torch

    z = torch.roll(z_after, 1, 0).reshape(len(z_starts), steps, -1).clone()
    z[:, 0] = z_starts
    return z.reshape(len(z_after), -1)


def probe_r2(
    x: np.ndarray, y: np.ndarray, n_train: int, steps: int = 3000, seed: int = 0, n_val: int = 0
) -> np.ndarray:
    """R² per column of `y` on rows n_train: of an MLP (two hidden layers of 256) fitted on rows :n_train, the
    last `n_val` of them held out to pick the step with the lowest validation error (early stopping)."""
    import copy

    import torch

    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    x, y = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.float32)
    fit = n_train - n_val
    mu, sd = y[:fit].mean(0), y[:fit].std(0).clamp_min(1e-6)  # standardised on the fitting rows
    xm, xs = x[:fit].mean(0), x[:fit].std(0).clamp_min(1e-6)
    x, yn = (x - xm) / xs, (y - mu) / sd
    net = torch.nn.Sequential(
        torch.nn.Linear(x.shape[1], 256),
        torch.nn.SiLU(),
        torch.nn.Linear(256, 256),
        torch.nn.SiLU(),
        torch.nn.Linear(256, y.shape[1]),
    )
    opt = torch.optim.Adam(net.parameters(), 1e-3, weight_decay=1e-4)
    best, best_err = copy.deepcopy(net.state_dict()), float("inf")
    for step in range(1, steps + 1):
        i = torch.randint(0, fit, (256,), generator=g)
        loss = (net(x[i]) - yn[i]).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if n_val and (step % 100 == 0 or step == steps):
            with torch.no_grad():
                err = float((net(x[fit:n_train]) - yn[fit:n_train]).square().mean())
            if err < best_err:
                best, best_err = copy.deepcopy(net.state_dict()), err
    if n_val:
        net.load_state_dict(best)
    with torch.no_grad():
        err = (net(x[n_train:]) * sd + mu - y[n_train:]).square().mean(0)
    return (1.0 - err / y[n_train:].var(0).clamp_min(1e-12)).numpy()


def pixel_components(stacks: np.ndarray, n_train: int, k: int = 64) -> np.ndarray:
    """The newest frame at half resolution, projected on its first `k` principal components (of the training
    rows)."""
    f = stacks[:, -1, ::2, ::2].reshape(len(stacks), -1).astype(np.float32) / 255.0
    f -= f[:n_train].mean(0)
    _, _, vt = np.linalg.svd(f[:n_train], full_matrices=False)
    return f @ vt[:k].T


def encode(model, stacks: np.ndarray, chunk: int = 500):
    import torch

    with torch.no_grad():
        return torch.cat([model.encode(torch.as_tensor(stacks[i : i + chunk])) for i in range(0, len(stacks), chunk)])


def reward_head_reading(model, z, actions: np.ndarray, rewards: np.ndarray, full: float) -> dict:
    """Recall and false alarms of the reward head r(z, a), z the latent the action was taken from (in the agent's
    reward scale; `full` = repeat x scale)."""
    import torch

    with torch.no_grad():
        pred = model.reward(z, torch.as_tensor(actions)).reshape(-1).numpy() / full
    on = rewards / full >= 0.5
    return {
        "recall": round(float((pred[on] >= 0.5).mean()), 3) if on.any() else None,
        "false_alarms": round(float((pred[~on] >= 0.5).mean()), 3),
        "reward_steps": round(float(on.mean()), 3),
    }


def r2_dict(r2: np.ndarray) -> dict:
    return {k: round(float(v), 3) for k, v in zip(LABELS, r2)}


def main(argv: list[str] | None = None) -> dict:
    import torch

    from bench.experiments.dmc_planner_eval import variant_config
    from moejepa_ros.model.checkpoint import load_checkpoint
    from moejepa_ros.sim import make_env
    from moejepa_ros.sim.dmc import check_same_pixels, trained_env_kwargs

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", required=True, nargs="+", help="agents of `moejepa-train mbrl -c dmc`")
    ap.add_argument("--episodes", type=int, default=400, help=f"random-torque episodes (seeds {FIRST_SEED} on)")
    ap.add_argument("--steps", type=int, default=15, help="env steps per episode")
    ap.add_argument("--probe-steps", type=int, default=3000, help="optimiser steps of each probe")
    ap.add_argument("--config", default=os.path.join(str(record.ROOT), "config", "train", "dmc.yaml"))
    ap.add_argument(
        "--set", nargs="*", default=[], metavar="key=value", help="the agents' pixels (collect.env_kwargs.*)"
    )
    record.add_arguments(ap, "reacher_probe")
    a = ap.parse_args(argv)
    if a.episodes < 4 or a.steps < 1:
        ap.error("--episodes must be >= 4 and --steps >= 1")
    torch.set_num_threads(1)
    env_kwargs = dict(variant_config(TASK, a.set, [], a.config).collect.env_kwargs)
    models = []
    for path in a.checkpoint:  # every agent on its own pixels, before any episode is played
        model, meta = load_checkpoint(path)
        check_same_pixels(trained_env_kwargs(meta), env_kwargs, f"reacher_probe: {path}")
        size = int(env_kwargs.get("size", DEFAULT_SIZE))
        if (model.cfg.frame_stack, model.cfg.image_size) != (3, size):
            raise ValueError(
                f"reacher_probe: {path} stacks {model.cfg.frame_stack} frames of {model.cfg.image_size} px; "
                f"this bench plays 3 of the env's {size} px"
            )
        models.append((path, model.eval(), float((meta.get("training") or {}).get("reward_scale", 1.0))))
    env = make_env(f"dmc:{TASK}", **env_kwargs)
    stacks, labels, rewards, actions, starts = random_episodes(env, a.episodes, a.steps)
    repeat = env.unwrapped.action_repeat
    env.close()
    n_train = int(round(TRAIN_SHARE * a.episodes)) * a.steps  # whole episodes: the test targets are new
    n_val = int(round(VAL_SHARE * a.episodes)) * a.steps
    pixels = r2_dict(probe_r2(pixel_components(stacks, n_train), labels, n_train, a.probe_steps, n_val=n_val))
    print(json.dumps({"pixels_pca": pixels}), flush=True)
    agents = []
    for path, model, scale in models:
        z = encode(model, stacks)
        z_before = before(z, encode(model, starts), a.steps)
        agents.append(
            {
                "checkpoint": path,
                "r2": r2_dict(probe_r2(z.numpy(), labels, n_train, a.probe_steps, n_val=n_val)),
                "reward_head": reward_head_reading(model, z_before, actions, rewards * scale, repeat * scale),
            }
        )
        print(json.dumps(agents[-1]), flush=True)
    res = {
        "episodes": a.episodes,
        "steps": a.steps,
        "test_rows": len(labels) - n_train,
        "env_kwargs": env_kwargs,
        "pixels_pca": pixels,
        "agents": agents,
    }
    record.write_result(a, res)
    return res


if __name__ == "__main__":
    main()
