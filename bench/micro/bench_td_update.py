"""The online MBRL loop's hot path: one TD update (model + Q ensemble + actor) from the prioritized replay.

With `config/train/dmc.yaml` (64x64 pixels, 3-frame stacks, horizon 3, batch 128, on one torch thread as the
bench's runs use), the replay holds random-action episodes of dm_control's cartpole (real MuJoCo frames).
It times, in alternating blocks so machine noise hits both sides alike:
  - the whole update (sample a batch, `TDLearner.update`, write back the priorities), with scalar reward and Q
    heads (the config), with TD-MPC2's two-hot ones (`model.reward_bins=101`: 101 logits each, cross-entropy)
    and with the inverse-dynamics term on (`mbrl.idm_weight`, which needs z_1 from the online encoder too);
  - the update with every encoder pass in one batch (`update_one_pass`) instead of chunks of
    `encoder.CPU_CHUNK` stacks (the target encoder's 384 stacks as one batch);
  - the conv encoder's channel stacking of a window's k-frame stacks (the target encoder's [B, H, k, S, S, 3]
    strided view) two ways: concatenating the frames (what `ConvEncoder` does) and the permute + reshape
    copy it replaced — the uint8 copy was 40% of an update;
  - drawing a batch from the replay (windows, priorities, random shift) with and without turning each window
    (`data.augment_rotate`, one cv2.warpAffine per window), which the online loop does before every update.
Writes through `bench.record` (name `td_update`).

    MUJOCO_GL=egl .venv/bin/python -m bench.micro.bench_td_update [--steps 10] [--blocks 3] [--record]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tempfile
import time

import numpy as np
import torch

from bench import record
from moejepa_ros.model import encoder
from moejepa_ros.model.encoder import stack_channels, to_float
from moejepa_ros.model.world_model import WorldModel
from moejepa_ros.sim import make_env
from training.config import load_config, resolve_config_path
from training.mbrl import online_replay
from training.stages import model_config
from training.td import TDLearner


def random_episodes(env_name: str, episodes: int, steps: int, seed: int):
    """(frames [T+1, S, S, 3], actions [T, A], rewards [T]) of uniform random actions."""
    env = make_env(env_name)
    rng = np.random.default_rng(seed)
    low, high = env.action_space.low, env.action_space.high
    for e in range(episodes):
        obs, _ = env.reset(seed=seed + e)
        frames, actions, rewards = [obs], [], []
        for _ in range(steps):
            a = rng.uniform(low, high).astype(np.float32)
            obs, r, *_ = env.step(a)
            frames.append(obs)
            actions.append(a)
            rewards.append(r)
        yield np.stack(frames), np.stack(actions), np.asarray(rewards, np.float32)
    env.close()


def stack_by_cat(stacks: torch.Tensor) -> torch.Tensor:
    return to_float(stack_channels(stacks))


def stack_by_permute(stacks: torch.Tensor) -> torch.Tensor:
    k, h, w, c = stacks.shape[-4:]
    return to_float(stacks.reshape(-1, k, h, w, c).permute(0, 2, 3, 1, 4).reshape(-1, h, w, k * c))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=10, help="timed updates per block")
    ap.add_argument("--blocks", type=int, default=3)
    ap.add_argument("--episodes", type=int, default=4, help="random-action episodes in the replay")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the bench's runs use 1)")
    ap.add_argument("--two-hot-bins", type=int, default=101, help="reward_bins of the two-hot side (TD-MPC2: 101)")
    ap.add_argument("--rotate", type=float, default=180.0, help="data.augment_rotate of the turned replay's side")
    ap.add_argument("--idm-weight", type=float, default=50.0, help="mbrl.idm_weight of the inverse-dynamics side")
    record.add_arguments(ap, "td_update")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    cfg = load_config([resolve_config_path("dmc")])
    env = cfg.collect.env
    steps = cfg.mbrl.max_episode_steps
    episodes = list(random_episodes(env, a.episodes, steps, seed=0))
    A = episodes[0][1].shape[1]
    low, high = -np.ones(A, np.float32), np.ones(A, np.float32)
    mc = model_config(cfg, A)
    with tempfile.TemporaryDirectory() as tmp:
        replay = online_replay(cfg, mc.frame_stack, os.path.join(tmp, "episodes"))  # as the online loop's
        turn = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, augment_rotate=a.rotate))
        turned = online_replay(turn, mc.frame_stack, os.path.join(tmp, "turned"))
        for frames, actions, rewards in episodes:
            replay.add(frames, actions, rewards, save=False)
            turned.add(frames, actions, rewards, save=False)
        model = WorldModel(mc).eval()
        learners = {
            bins: TDLearner(
                WorldModel(dataclasses.replace(mc, reward_bins=bins)).eval(), low, high, mc.losses.gamma, cfg.optim.lr
            )
            for bins in (mc.reward_bins, a.two_hot_bins)
        }
        idm_learner = TDLearner(
            WorldModel(mc).eval(), low, high, mc.losses.gamma, cfg.optim.lr, idm_weight=a.idm_weight
        )
        rng = np.random.default_rng(0)

        def updater(learner: TDLearner):
            def update() -> None:
                batch = replay.sample(cfg.data.batch_size, rng)
                learner.update(batch)
                replay.update_priorities(batch["index"], learner.last_priority)

            return update

        stacks, *_ = model._split_window(replay.sample(cfg.data.batch_size, rng))
        target_stacks = stacks[:, 1:]  # what the target encoder stacks each update (the online one: stacks[:, 0])
        same = torch.equal(stack_by_cat(target_stacks), stack_by_permute(target_stacks))
        fns = {"update": updater(learners[mc.reward_bins]), "update_two_hot": updater(learners[a.two_hot_bins])}
        fns["update_idm"] = updater(idm_learner)
        chunked = updater(learners[mc.reward_bins])

        def one_pass() -> None:
            chunk, encoder.CPU_CHUNK = encoder.CPU_CHUNK, 1 << 30
            try:
                chunked()
            finally:
                encoder.CPU_CHUNK = chunk

        fns["update_one_pass"] = one_pass
        fns["sample"] = lambda: replay.sample(cfg.data.batch_size, rng)
        fns["sample_turned"] = lambda: turned.sample(cfg.data.batch_size, rng)
        fns["stack_cat"] = lambda: stack_by_cat(target_stacks)
        fns["stack_permute"] = lambda: stack_by_permute(target_stacks)
        for f in fns.values():  # warm-up
            f()
        times = {k: [] for k in fns}
        for _ in range(a.blocks):
            for k, f in fns.items():
                t = time.perf_counter()
                for _ in range(a.steps):
                    f()
                times[k].append((time.perf_counter() - t) / a.steps)
    best = {k: min(v) for k, v in times.items()}
    res = {
        "note": "shared machine: compare within this run (alternating blocks), not across runs",
        "env": env,
        "batch": cfg.data.batch_size,
        "horizon": cfg.data.horizon,
        "frame_stack": mc.frame_stack,
        "image_size": mc.image_size,
        "threads": a.threads,
        "steps_per_block": a.steps,
        "blocks": a.blocks,
        "ms_blocks": {k: [round(1e3 * x, 2) for x in v] for k, v in times.items()},
        "update_ms_best": round(1e3 * best["update"], 1),
        "two_hot_bins": a.two_hot_bins,
        "update_two_hot_ms_best": round(1e3 * best["update_two_hot"], 1),
        "two_hot_over_scalar": round(best["update_two_hot"] / best["update"], 3),
        "idm_weight": a.idm_weight,
        "update_idm_ms_best": round(1e3 * best["update_idm"], 1),
        "idm_over_scalar": round(best["update_idm"] / best["update"], 3),
        "cpu_chunk": encoder.CPU_CHUNK,
        "update_one_pass_ms_best": round(1e3 * best["update_one_pass"], 1),
        "one_pass_over_chunked": round(best["update_one_pass"] / best["update"], 3),
        "stack_cat_ms_best": round(1e3 * best["stack_cat"], 2),
        "stack_permute_ms_best": round(1e3 * best["stack_permute"], 2),
        "permute_over_cat": round(best["stack_permute"] / best["stack_cat"], 2),
        "saved_share_of_update": round((best["stack_permute"] - best["stack_cat"]) / best["update"], 3),
        "stacks_equal": same,
        "rotate_degrees": a.rotate,
        "sample_ms_best": round(1e3 * best["sample"], 2),
        "sample_turned_ms_best": round(1e3 * best["sample_turned"], 2),
        "turn_share_of_update": round((best["sample_turned"] - best["sample"]) / best["update"], 3),
    }
    print(json.dumps(res, indent=1))
    record.write_result(a, res)


if __name__ == "__main__":
    main()
