"""A run's portable state: the online MBRL loop's agent, and its episodes kept as actions, not frames.

A 100k-frame run of the online loop (`mbrl.loop=online`) holds a few MB of agent (model, optimisers, target Q,
replay priorities, counters) and hundreds of MB of rendered frames. The frames are a function of the simulator,
the episode's reset seed and the actions taken, so a pack keeps the agent and, per episode, the actions, the
rewards, the reset seed and a SHA-256 of the frames; `unpack` re-renders every episode (MuJoCo steps the same
actions from the same seed to the same state) and checks the rewards and the digest against the recorded ones,
so the run resumes (`moejepa-train mbrl`, `bench.experiments.dmc_pixels`) exactly where it stopped, on another
machine or in another session. A simulator or renderer that does not give the same pixels is refused by name,
and nothing is written.

    python -m training.run_pack pack   <run out_dir> <pack dir> [--seed RUN_SEED]
    python -m training.run_pack unpack <pack dir> <run out_dir>
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys

import numpy as np

from .run_dir import last_complete, write_atomic

FORMAT = 1
MANIFEST = "pack.json"
EPISODES = "episodes.npz"
AGENT_FILES = ("model.safetensors", "agent_state.safetensors", "state.json")


class RunPackError(Exception):
    """A pack or a run directory that cannot be packed or unpacked (one line, names what is wrong)."""


def frames_digest(frames: np.ndarray) -> bytes:
    """SHA-256 of an episode's uint8 frames [T+1, S, S, 3] (shape and bytes)."""
    frames = np.ascontiguousarray(frames, np.uint8)
    return hashlib.sha256(repr(frames.shape).encode() + frames.tobytes()).digest()


def _mujoco_version() -> str | None:
    try:
        import mujoco

        return str(mujoco.__version__)
    except ImportError:
        return None


def _agent(mbrl_dir: str) -> tuple[str, dict]:
    agent = last_complete(os.path.join(mbrl_dir, "agent"))
    if agent is None:
        raise RunPackError(f"{mbrl_dir}: no finished episode (no agent/state.json): nothing to pack")
    with open(os.path.join(agent, "state.json")) as f:
        return agent, json.load(f)


def pack(out_dir: str, dest: str, run_seed: int | None = None) -> dict:
    """Write the online run under `out_dir` (its `mbrl/`) to `dest`: the agent as it is, the episodes as actions,
    rewards, reset seeds and frame digests. `run_seed` (run.seed) is read from the agent when it recorded it."""
    from moejepa_ros.model.checkpoint import read_meta

    from .mbrl import online_reset_seed
    from .replay import episode_path

    mbrl_dir = os.path.join(out_dir, "mbrl")
    agent, state = _agent(mbrl_dir)
    run_seed = state.get("run_seed", run_seed)
    if run_seed is None:
        raise RunPackError(f"{agent}/state.json does not record run.seed: give it (--seed)")
    meta = read_meta(os.path.join(agent, "model.safetensors"))
    n = int(state["episodes"])
    actions, rewards, lengths, digests = [], [], [], []
    for i in range(n):
        path = episode_path(os.path.join(mbrl_dir, "episodes"), i)
        if not os.path.isfile(path):
            raise RunPackError(f"{path}: missing (the agent has {n} episodes)")
        with np.load(path) as d:
            actions.append(d["actions"])
            rewards.append(d["rewards"])
            lengths.append(len(d["rewards"]))
            digests.append(np.frombuffer(frames_digest(d["frames"]), np.uint8))
    tmp = dest.rstrip("/") + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(os.path.join(tmp, "agent"))
    for name in AGENT_FILES:
        shutil.copy2(os.path.join(agent, name), os.path.join(tmp, "agent", name))
    np.savez_compressed(
        os.path.join(tmp, EPISODES),
        actions=np.concatenate(actions).astype(np.float32),
        rewards=np.concatenate(rewards).astype(np.float32),
        lengths=np.asarray(lengths, np.int64),
        seeds=np.asarray([online_reset_seed(run_seed, i) for i in range(n)], np.int64),
        digests=np.stack(digests) if digests else np.zeros((0, 32), np.uint8),
    )
    manifest = {
        "format": FORMAT,
        "env": meta["training"]["env"],
        "env_kwargs": meta["training"].get("env_kwargs", {}),
        "image_size": meta["model_config"]["image_size"],
        "reward_scale": meta["training"].get("reward_scale", 1.0),
        "run_seed": int(run_seed),
        "episodes": n,
        "env_steps": int(state["env_steps"]),
        "frames": int(state["env_steps"]) * int(state.get("action_repeat", 1)),
        "mujoco": _mujoco_version(),
    }
    write_atomic(os.path.join(tmp, MANIFEST), json.dumps(manifest, indent=1) + "\n")
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(tmp, dest)
    return {"pack": dest, **manifest}


def _read_pack(src: str) -> tuple[dict, dict]:
    try:
        with open(os.path.join(src, MANIFEST)) as f:
            manifest = json.load(f)
        with np.load(os.path.join(src, EPISODES)) as d:
            eps = {k: d[k] for k in ("actions", "rewards", "lengths", "seeds", "digests")}
    except (OSError, ValueError, KeyError) as e:
        raise RunPackError(f"{src}: not a readable run pack ({type(e).__name__}: {e})") from None
    if manifest.get("format") != FORMAT:
        raise RunPackError(f"{src}: pack format {manifest.get('format')!r}, this code reads {FORMAT}")
    missing = [n for n in AGENT_FILES if not os.path.isfile(os.path.join(src, "agent", n))]
    if missing:
        raise RunPackError(f"{src}/agent: missing {missing}")
    n, steps = int(manifest["episodes"]), int(eps["lengths"].sum())
    if not (len(eps["lengths"]) == len(eps["seeds"]) == len(eps["digests"]) == n) or not (
        len(eps["actions"]) == len(eps["rewards"]) == steps
    ):
        raise RunPackError(f"{src}/{EPISODES}: {n} episodes in the manifest, the arrays disagree")
    return manifest, eps


def unpack(src: str, out_dir: str) -> dict:
    """Re-render the pack's episodes, check them, and write the run under `out_dir` (its `mbrl/`) so that
    `moejepa-train mbrl` resumes it. Refuses a run directory that already holds an online run."""
    from moejepa_ros.control.preprocess import preprocess
    from moejepa_ros.sim import make_env

    from .replay import EpisodeReplay

    manifest, eps = _read_pack(src)
    mbrl_dir = os.path.join(out_dir, "mbrl")
    for held in ("agent", "agent.old", "episodes"):
        if os.path.exists(os.path.join(mbrl_dir, held)):
            raise RunPackError(f"{mbrl_dir}/{held} exists: unpack into a run directory without an online run")
    tmp = mbrl_dir + ".unpack.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    replay = EpisodeReplay(os.path.join(tmp, "episodes"), 1, 1)
    env = make_env(manifest["env"], **manifest["env_kwargs"])
    size, scale = int(manifest["image_size"]), float(manifest["reward_scale"])
    start = np.concatenate([[0], np.cumsum(eps["lengths"])])
    try:
        for i in range(int(manifest["episodes"])):
            acts = eps["actions"][start[i] : start[i + 1]]
            obs, _ = env.reset(seed=int(eps["seeds"][i]))
            frames, rewards = [preprocess(obs, size)], []
            for a in acts:
                obs, r, *_ = env.step(a)
                frames.append(preprocess(obs, size))
                rewards.append(float(r) * scale)
            frames, rewards = np.stack(frames), np.asarray(rewards, np.float32)
            same_r = np.array_equal(rewards, eps["rewards"][start[i] : start[i + 1]])
            if not same_r or frames_digest(frames) != eps["digests"][i].tobytes():
                what = "rewards" if not same_r else "frames"
                raise RunPackError(
                    f"{src}: episode {i} re-rendered to other {what} than recorded: this simulator or renderer "
                    f"(MuJoCo {_mujoco_version()}) is not the one that recorded the run (MuJoCo {manifest['mujoco']})"
                )
            replay.add(frames, acts, rewards)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        env.close()
    shutil.copytree(os.path.join(src, "agent"), os.path.join(tmp, "agent"))
    os.makedirs(out_dir, exist_ok=True)
    if os.path.isdir(mbrl_dir):  # an empty or unrelated mbrl/ (checked above: no online run in it)
        for name in os.listdir(mbrl_dir):
            os.replace(os.path.join(mbrl_dir, name), os.path.join(tmp, name))
        os.rmdir(mbrl_dir)
    os.replace(tmp, mbrl_dir)
    return {"run": out_dir, **manifest}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.run_pack", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack", help="an online run's out_dir -> a pack (agent + episodes as actions)")
    p.add_argument("out_dir")
    p.add_argument("dest")
    p.add_argument("--seed", type=int, help="the run's run.seed, where its agent does not record it")
    u = sub.add_parser("unpack", help="a pack -> a run out_dir that `moejepa-train mbrl` resumes")
    u.add_argument("src")
    u.add_argument("out_dir")
    a = ap.parse_args(argv)
    try:
        res = pack(a.out_dir, a.dest, a.seed) if a.command == "pack" else unpack(a.src, a.out_dir)
    except RunPackError as e:
        print(f"run_pack {a.command}: {e}", file=sys.stderr)
        return 2
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
