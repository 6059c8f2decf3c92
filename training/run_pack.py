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

from .run_dir import last_complete, swap_in, write_atomic

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


def _copy_agent(mbrl_dir: str, dest: str) -> dict:
    """Copy the run's last complete agent into `dest`; returns its state. A copy the running loop swapped a newer
    agent in under (it writes one after every episode) is taken again, so the files are of one episode."""
    for _ in range(5):
        agent = last_complete(os.path.join(mbrl_dir, "agent"))
        if agent is None:
            raise RunPackError(f"{mbrl_dir}: no finished episode (no agent/state.json): nothing to pack")
        shutil.rmtree(dest, ignore_errors=True)
        os.makedirs(dest)
        try:
            with open(os.path.join(agent, "state.json")) as f:
                before = f.read()
            for name in AGENT_FILES:
                shutil.copy2(os.path.join(agent, name), os.path.join(dest, name))
            with open(os.path.join(agent, "state.json")) as f:
                if f.read() == before:  # no newer agent was swapped in while the files were copied
                    return json.loads(before)
        except FileNotFoundError:  # the swap moved the directory while it was read
            continue
    raise RunPackError(f"{mbrl_dir}: the agent kept changing while it was copied; pack a stopped run")


def _refuse_dest(out_dir: str, dest: str) -> None:
    o, d = os.path.realpath(out_dir), os.path.realpath(dest)
    if d == o or d.startswith(o + os.sep) or o.startswith(d + os.sep):
        raise RunPackError(f"{dest}: a pack must lie outside the run directory {out_dir} and not hold it")
    if os.path.exists(dest) and not os.path.isfile(os.path.join(dest, MANIFEST)):
        raise RunPackError(f"{dest} exists and is not a run pack: give a new directory or an older pack")


def pack(out_dir: str, dest: str, run_seed: int | None = None) -> dict:
    """Write the online run under `out_dir` (its `mbrl/`) to `dest`: the agent as it is, the episodes as actions,
    rewards, reset seeds and frame digests. `run_seed` (run.seed) is read from the agent when it recorded it; an
    older pack at `dest` is replaced whole (a kill leaves it or the new one)."""
    _refuse_dest(out_dir, dest)
    tmp = dest.rstrip("/") + ".tmp"
    try:
        manifest = _pack_into(out_dir, tmp, run_seed)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    swap_in(tmp, dest)
    return {"pack": dest, **manifest}


def _pack_into(out_dir: str, tmp: str, run_seed: int | None) -> dict:
    from moejepa_ros.model.checkpoint import read_meta

    from .mbrl import online_reset_seed
    from .replay import episode_path

    mbrl_dir = os.path.join(out_dir, "mbrl")
    shutil.rmtree(tmp, ignore_errors=True)
    state = _copy_agent(mbrl_dir, os.path.join(tmp, "agent"))
    if run_seed is not None and state.get("run_seed", run_seed) != run_seed:
        raise RunPackError(f"{mbrl_dir}: the run was started with run.seed={state['run_seed']}, not {run_seed}")
    run_seed = state.get("run_seed", run_seed)
    if run_seed is None:
        raise RunPackError(f"{mbrl_dir}/agent/state.json does not record run.seed: give it (--seed)")
    if "run_seed" not in state:  # an agent from before run_seed was kept: the resumed run must keep the seed
        state["run_seed"] = int(run_seed)
        write_atomic(os.path.join(tmp, "agent", "state.json"), json.dumps(state))
    meta = read_meta(os.path.join(tmp, "agent", "model.safetensors"))
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
    if sum(lengths) != int(state["env_steps"]):
        raise RunPackError(f"{mbrl_dir}: {n} episodes of {sum(lengths)} steps, the agent counts {state['env_steps']}")
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
    return manifest


MANIFEST_KEYS = ("format", "env", "env_kwargs", "image_size", "reward_scale", "run_seed", "episodes", "env_steps")


def _read_pack(src: str) -> tuple[dict, dict]:
    """(manifest, episode arrays) of a pack, checked against one another and against its agent's state."""
    try:
        with open(os.path.join(src, MANIFEST)) as f:
            manifest = json.load(f)
        with np.load(os.path.join(src, EPISODES)) as d:
            eps = {k: d[k] for k in ("actions", "rewards", "lengths", "seeds", "digests")}
    except Exception as e:  # a missing, cut or foreign file: numpy and zipfile raise their own kinds
        raise RunPackError(f"{src}: not a readable run pack ({type(e).__name__}: {e})") from None
    missing = [k for k in MANIFEST_KEYS if k not in manifest]
    if missing:
        raise RunPackError(f"{src}/{MANIFEST}: missing {missing}")
    if manifest["format"] != FORMAT:
        raise RunPackError(f"{src}: pack format {manifest['format']!r}, this code reads {FORMAT}")
    absent = [n for n in AGENT_FILES if not os.path.isfile(os.path.join(src, "agent", n))]
    if absent:
        raise RunPackError(f"{src}/agent: missing {absent}")
    with open(os.path.join(src, "agent", "state.json")) as f:
        state = json.load(f)
    n, steps = int(manifest["episodes"]), int(eps["lengths"].sum())
    if not (len(eps["lengths"]) == len(eps["seeds"]) == len(eps["digests"]) == n) or not (
        len(eps["actions"]) == len(eps["rewards"]) == steps == int(manifest["env_steps"])
    ):
        raise RunPackError(
            f"{src}/{EPISODES}: {n} episodes of {manifest['env_steps']} steps in the manifest, the arrays disagree"
        )
    if (state.get("episodes"), state.get("env_steps"), state.get("run_seed")) != (
        n,
        steps,
        manifest["run_seed"],
    ):
        raise RunPackError(f"{src}/agent/state.json: its episodes, steps or run.seed are not the manifest's")
    return manifest, eps


def unpack(src: str, out_dir: str) -> dict:
    """Re-render the pack's episodes, check them, and write the run under `out_dir` (its `mbrl/`) so that
    `moejepa-train mbrl` resumes it. Refuses a run directory that already holds an online run; the agent is moved
    in last, so a kill before it leaves no run that resumes."""
    from moejepa_ros.control.preprocess import preprocess
    from moejepa_ros.sim import make_env

    from .replay import write_episode

    manifest, eps = _read_pack(src)
    mbrl_dir = os.path.join(out_dir, "mbrl")
    for held in ("agent", "agent.old", "episodes"):
        if os.path.exists(os.path.join(mbrl_dir, held)):
            raise RunPackError(f"{mbrl_dir}/{held} exists: unpack into a run directory without an online run")
    tmp = mbrl_dir + ".unpack.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(os.path.join(tmp, "episodes"))
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
                    f"{src}: episode {i} re-rendered to other {what} than recorded: the reset seeds, the renderer "
                    f"(MUJOCO_GL) or the simulator differ (MuJoCo {_mujoco_version()} here, {manifest.get('mujoco')} "
                    "when packed)"
                )
            write_episode(os.path.join(tmp, "episodes"), i, frames, acts, rewards)
        shutil.copytree(os.path.join(src, "agent"), os.path.join(tmp, "agent"))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        env.close()
    os.makedirs(mbrl_dir, exist_ok=True)
    os.replace(os.path.join(tmp, "episodes"), os.path.join(mbrl_dir, "episodes"))
    os.replace(os.path.join(tmp, "agent"), os.path.join(mbrl_dir, "agent"))  # the commit point
    shutil.rmtree(tmp, ignore_errors=True)
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
