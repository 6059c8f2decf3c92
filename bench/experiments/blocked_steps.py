"""Does the world model know the wall? One-step prediction error in pixels on blocked vs free steps.

An MLP probe reads the agent's position (x, y) from encoded latents (trained on 40 of the
long-walk training episodes, 3000 Adam steps); it is then applied to the predictor's one-step
latents on the held-out episodes. A step is *blocked* when the commanded move was longer than
0.8 px but the agent moved less than a fifth of it (a wall or the border stopped it), *free*
when it moved more than 0.8 of it. The agent's position comes from the recorded state.
A model that lets the agent pass through walls shows a blocked error near the step length.

    .venv/bin/python -m bench.experiments.blocked_steps --checkpoint checkpoints/two_rooms.safetensors

Needs the long walks of `config/train/two_rooms_goal.yaml` (runs/two_rooms_goal). Writes
blocked_steps.json through `bench.record`.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import torch

from bench import record
from moejepa_ros.model.checkpoint import load_checkpoint


def open_long_walks(data_run: str, model):
    """The long random walks recorded under `data_run` (config two_rooms + two_rooms_goal)."""
    from training.config import load_config
    from training.datasets import open_data

    cfg = load_config(
        ["two_rooms", "two_rooms_goal"], [f"data.bags=[{data_run}/collect/bags]", f"data.cache_dir={data_run}/cache"]
    )
    return open_data(cfg, model.cfg.image_size, model.cfg.frame_stack + 1)


def episodes(model, data, eps):
    """Per episode: latents of every frame stack, the action after each, the recorded state at each
    ([x, y, wall_x, door_y] float32)."""
    from training.refine import encode_episodes

    k = model.cfg.frame_stack
    zs, acts = encode_episodes(model, data.cache, eps, 256, torch.device("cpu"))
    states = [
        torch.from_numpy(
            np.asarray(
                data.cache.state[
                    int(data.cache.episode_starts[e]) + k - 1 : int(data.cache.episode_starts[e])
                    + int(data.cache.episode_lengths[e])
                ],
                np.float32,
            )
        )
        for e in eps
    ]
    return zs, acts, states


def fit_probe(z: torch.Tensor, p: torch.Tensor, steps: int, seed: int):
    torch.manual_seed(seed)
    mu, sd = z.mean(0), z.std(0) + 1e-6
    net = torch.nn.Sequential(
        torch.nn.Linear(z.shape[1], 256),
        torch.nn.ReLU(),
        torch.nn.Linear(256, 256),
        torch.nn.ReLU(),
        torch.nn.Linear(256, 2),
    )
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    for _ in range(steps):
        i = torch.randint(0, len(z), (512,))
        loss = (net((z[i] - mu) / sd) - p[i]).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return lambda x: net((x - mu) / sd)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", nargs="+", default=["checkpoints/two_rooms.safetensors"])
    ap.add_argument("--data-run", default="runs/two_rooms_goal")
    ap.add_argument("--probe-episodes", type=int, default=40)
    ap.add_argument("--probe-steps", type=int, default=3000)
    record.add_arguments(ap, "blocked_steps")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    rows = {}
    for ck in a.checkpoint:
        model, _ = load_checkpoint(ck)
        model.eval()
        data = open_long_walks(a.data_run, model)
        tz, _, ts = episodes(model, data, [int(e) for e in data.train_episodes[: a.probe_episodes]])
        probe = fit_probe(torch.cat(tz), torch.cat(ts)[:, :2], a.probe_steps, 0)
        vz, va, vs = episodes(model, data, [int(e) for e in data.val_episodes])
        blocked, free, encoded = [], [], []
        with torch.no_grad():
            for z, u, st in zip(vz, va, vs):
                p = st[:, :2]
                step = model.predictor.rollout(z[:-1], u[:-1, None])[:, 0]
                err = (probe(step) - p[1:]).norm(dim=1)
                moved, cmd = (p[1:] - p[:-1]).norm(dim=1), u[:-1].norm(dim=1)
                blocked.append(err[(cmd > 0.8) & (moved < 0.2 * cmd)])
                free.append(err[(cmd > 0.8) & (moved > 0.8 * cmd)])
                encoded.append((probe(z) - p).norm(dim=1))
        b, f, e = torch.cat(blocked), torch.cat(free), torch.cat(encoded)
        rows[ck] = {
            "probe_on_encoded_px": round(float(e.mean()), 3),
            "free_px": round(float(f.mean()), 3),
            "blocked_px": round(float(b.mean()), 3),
            "blocked_over_1px": round(float((b > 1).float().mean()), 3),
            "blocked_steps": len(b),
            "free_steps": len(f),
            "blocked_share": round(len(b) / (len(b) + len(f)), 4),
        }
        print(json.dumps({ck: rows[ck]}), flush=True)
    record.write_result(
        a,
        {
            "data_run": a.data_run,
            "probe_episodes": a.probe_episodes,
            "probe_steps": a.probe_steps,
            "threads": 1,
            "checkpoints": rows,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
