"""Simulator rollouts written as rosbag2 (mcap or sqlite3), with the topics a robot bag has.

Each step t of an episode writes, all stamped ``sim time = global step x dt`` (continuous across
the episodes of a bag; header stamp == bag log time): the image ``o_t`` on ``/camera/image_raw``
(sensor_msgs/Image rgb8, frame_id "camera"), the true state on ``/state``, the action ``a_t``
chosen after it on ``/action`` (any registered command type, ``action_msg``; Float32MultiArray by
default) and the reward ``r_t`` for it on ``/reward``; ``/episode`` (Int32,
the global episode index) at each episode's first image. The terminal image is written too (no
action follows it). So `training.data` reads these bags back exactly (see `training.data.topics`).

With ``topics="robot"`` a bag holds only what a mobile robot's ``ros2 bag record`` has: the camera
on ``/camera/color/image_raw`` (bgr8, frame_id ``camera_color_optical_frame``), ``geometry_msgs/Twist``
on ``/cmd_vel`` and ``nav_msgs/Odometry`` on ``/odom`` (from ``info["odom"]`` [x, y, yaw] and
``info["twist"]`` [v, w], stamped with the image); no reward, episode or state topics, and a gap of
``ROBOT_EPISODE_GAP_S`` between episodes (the reader splits episodes at gaps). ``topics="arm"`` is the
same for an arm (the reacher): the camera, the joint command on ``/joint_commands``
(Float32MultiArray, or JointTrajectory with the env's joint names) and ``sensor_msgs/JointState`` on
``/joint_states`` (``info["joint_names"]``, ``info["joints"]`` angles, ``info["joint_velocity"]``).

Episodes are split into chunks, one bag per chunk, recorded in parallel processes (spawn). Episode
``e`` uses a seed derived from ``(seed, e)`` only, so the data do not depend on ``workers``.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import multiprocessing as mp
import os
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from moejepa_ros.codecs import (
    COMMAND_TYPE_NAMES,
    CodecError,
    action_to_msg,
    command_type,
    make_image,
    new_message,
    set_stamp,
)

BAG_VERSION = 9
STORAGES = ("mcap", "sqlite3")
FRAME_ID = "camera"
ROBOT_FRAME_ID = "camera_color_optical_frame"
TOPICS = {
    "image": "/camera/image_raw",
    "action": "/action",
    "reward": "/reward",
    "episode": "/episode",
    "state": "/state",
}
ROBOT_TOPICS = {"image": "/camera/color/image_raw", "action": "/cmd_vel", "odom": "/odom"}
ARM_TOPICS = {"image": "/camera/color/image_raw", "action": "/joint_commands", "joints": "/joint_states"}
LAYOUTS = {"sim": TOPICS, "robot": ROBOT_TOPICS, "arm": ARM_TOPICS}
ROBOT_EPISODE_GAP_S = 2.0
# the command types each robot layout records (the first is its default)
LAYOUT_ACTION_TYPES = {
    "robot": ("geometry_msgs/msg/Twist", "geometry_msgs/msg/TwistStamped"),
    "arm": ("std_msgs/msg/Float32MultiArray", "trajectory_msgs/msg/JointTrajectory"),
}


def episode_seed(seed: int, episode: int) -> int:
    """A 32-bit seed for episode `episode` that depends on nothing else (not on worker splits)."""
    return int(np.random.SeedSequence([int(seed), int(episode)]).generate_state(1)[0])


def env_dt(env) -> float:
    """Seconds of simulated time per env step: the env's own `dt`, DMC's control step x repeat,
    else 1 / render_fps."""
    u = getattr(env, "unwrapped", env)
    if getattr(u, "dt", None):
        return float(u.dt)
    inner = getattr(u, "_env", None)
    if inner is not None and hasattr(inner, "control_timestep"):
        return float(inner.control_timestep()) * int(getattr(u, "action_repeat", 1))
    fps = (getattr(u, "metadata", None) or {}).get("render_fps")
    if fps:
        return 1.0 / float(fps)
    raise ValueError(f"rollouts: cannot tell the time step of {type(u).__name__}; pass dt=")


def _make_policy(policy, env, ep_seed: int, policy_kwargs: dict | None = None, env_name: str = "two_rooms"):
    """-> a callable (obs, info) -> action for one episode."""
    if policy == "random":
        env.action_space.seed(ep_seed)
        return lambda obs, info: env.action_space.sample()
    if policy == "walk":
        from moejepa_ros.sim import data_policy

        return data_policy(env_name, seed=ep_seed, **(policy_kwargs or {}))
    reset = getattr(policy, "reset", None)
    if callable(reset):
        try:
            required = [
                p
                for p in inspect.signature(reset).parameters.values()
                if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
            ]
        except (TypeError, ValueError):
            required = [None]
        if not required:
            reset()
    return policy


class _BagOut:
    """One open rollout bag: its connections, message classes and the sim clock."""

    def __init__(
        self,
        path: Path,
        storage: str,
        action_msg: str,
        twist_fields,
        meta: dict,
        layout: str = "sim",
        joint_names=None,
    ):
        from rosbags.rosbag2 import StoragePlugin, Writer
        from rosbags.typesys import Stores, get_typestore

        self.ts = ts = get_typestore(Stores.ROS2_KILTED)
        plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
        self.writer = Writer(path, version=BAG_VERSION, storage_plugin=plugin)
        self.writer.set_custom_data("moejepa_ros.rollout", json.dumps(meta, sort_keys=True))
        self.writer.open()
        types = {
            "image": "sensor_msgs/msg/Image",
            "action": command_type(action_msg).name,
            "reward": "std_msgs/msg/Float32",
            "episode": "std_msgs/msg/Int32",
            "state": "std_msgs/msg/Float32MultiArray",
            "odom": "nav_msgs/msg/Odometry",
            "joints": "sensor_msgs/msg/JointState",
        }
        topics = LAYOUTS[layout]
        self.robot = layout != "sim"
        self.joint_names = joint_names
        self.types = {k: types[k] for k in topics}
        # typestore= makes rosbags store each type's full message definition in the bag.
        self.conns = {k: self.writer.add_connection(topics[k], t, typestore=ts) for k, t in self.types.items()}
        self.cls = {k: ts.types[t] for k, t in self.types.items()}
        self.layout = ts.types["std_msgs/msg/MultiArrayLayout"]
        self.twist_fields = twist_fields
        self.frames = 0

    def _write(self, key: str, msg, stamp_ns: int) -> None:
        self.writer.write(self.conns[key], stamp_ns, self.ts.serialize_cdr(msg, self.types[key]))

    def _array(self, key: str, v) -> Any:
        return self.cls[key](
            layout=self.layout(dim=[], data_offset=0), data=np.asarray(v, np.float32).reshape(-1).copy()
        )

    def image(self, rgb: np.ndarray, stamp_ns: int, info: dict) -> None:
        if self.robot:
            img = make_image(self.cls["image"], rgb[:, :, ::-1], "bgr8", stamp_ns, ROBOT_FRAME_ID)
            self._write("image", img, stamp_ns)
            if "odom" in self.conns and info.get("odom") is not None:
                self._write("odom", self._odometry(info["odom"], info.get("twist"), stamp_ns), stamp_ns)
            if "joints" in self.conns and info.get("joints") is not None:
                self._write("joints", self._joint_state(info, stamp_ns), stamp_ns)
        else:
            self._write("image", make_image(self.cls["image"], rgb, "rgb8", stamp_ns, FRAME_ID), stamp_ns)
            if info.get("state") is not None:
                self._write("state", self._array("state", info["state"]), stamp_ns)
        self.frames += 1

    def _odometry(self, pose, twist, stamp_ns: int):
        """nav_msgs/Odometry in the odom frame from [x, y, yaw] and the body twist [v, w]."""
        msg = new_message(self.cls["odom"])
        set_stamp(msg, stamp_ns, "odom")
        msg.child_frame_id = "base_link"
        msg.pose.covariance = np.zeros(36, np.float64)
        msg.twist.covariance = np.zeros(36, np.float64)
        x, y, yaw = (float(v) for v in np.asarray(pose).reshape(-1)[:3])
        msg.pose.pose.position.x, msg.pose.pose.position.y = x, y
        msg.pose.pose.orientation.z, msg.pose.pose.orientation.w = math.sin(yaw / 2), math.cos(yaw / 2)
        if twist is not None:
            msg.twist.twist.linear.x, msg.twist.twist.angular.z = (float(v) for v in np.asarray(twist).reshape(-1)[:2])
        return msg

    def _joint_state(self, info: dict, stamp_ns: int):
        """sensor_msgs/JointState: the env's joint names, angles (rad) and, if it gives them, rates (rad/s)."""
        msg = new_message(self.cls["joints"])
        set_stamp(msg, stamp_ns, "")
        msg.name = list(info["joint_names"])
        msg.position = np.asarray(info["joints"], np.float64).reshape(-1).copy()
        if info.get("joint_velocity") is not None:
            msg.velocity = np.asarray(info["joint_velocity"], np.float64).reshape(-1).copy()
        return msg

    def action(self, a: np.ndarray, reward: float, stamp_ns: int) -> None:
        # twist_fields=None: the type's default fields, which the reader uses too
        msg = action_to_msg(
            a,
            new_message(self.cls["action"]),
            fields=self.twist_fields,
            stamp_ns=stamp_ns,
            joint_names=self.joint_names if self.types["action"] == "trajectory_msgs/msg/JointTrajectory" else None,
        )
        self._write("action", msg, stamp_ns)
        if "reward" in self.conns:
            self._write("reward", self.cls["reward"](data=float(reward)), stamp_ns)

    def episode(self, index: int, stamp_ns: int) -> None:
        if "episode" in self.conns:
            self._write("episode", self.cls["episode"](data=int(index)), stamp_ns)


def _record_chunk(spec: dict) -> tuple[str, int]:
    """Worker: record episodes [first, last) into one bag; returns (bag path, frames written)."""
    if spec["env_name"].startswith("dmc:") or spec["env_name"] == "mobile_base":
        os.environ.setdefault("MUJOCO_GL", "egl")
    from moejepa_ros.sim import make_env

    # Written under a hidden folder, then renamed into place: a bag in out_dir is always complete
    # (the storage file is named after the bag folder, so it keeps the final name).
    final = Path(spec["path"])
    scratch = final.parent / f".{final.name}.partial"
    tmp = scratch / final.name
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir()
    env = make_env(spec["env_name"], **spec["env_kwargs"])
    dt_ns = int(round((spec["dt"] or env_dt(env)) * 1e9))
    meta = {k: spec[k] for k in ("env_name", "env_kwargs", "seed", "first", "last", "max_steps", "topics")}
    meta.update(
        dt_ns=dt_ns,
        policy=spec["policy"] if isinstance(spec["policy"], str) else repr(spec["policy"]),
        policy_kwargs=spec.get("policy_kwargs") or {},
    )
    joint_names = getattr(getattr(env, "unwrapped", env), "joint_names", None)
    out = _BagOut(tmp, spec["storage"], spec["action_msg"], spec["twist_fields"], meta, spec["topics"], joint_names)
    gap = int(math.ceil(ROBOT_EPISODE_GAP_S * 1e9 / dt_ns)) if spec["topics"] != "sim" else 0
    ok = False
    try:
        g = 0  # global step of this bag: stamp = g * dt
        for e in range(spec["first"], spec["last"]):
            s = episode_seed(spec["seed"], e)
            obs, info = env.reset(seed=s)
            pi = _make_policy(spec["policy"], env, s, spec.get("policy_kwargs"), spec["env_name"])
            out.episode(e, g * dt_ns)
            t = 0
            while True:
                out.image(obs, g * dt_ns, info)
                if spec["max_steps"] is not None and t >= spec["max_steps"]:
                    break
                a = np.asarray(pi(obs, info), np.float32).reshape(-1)
                obs, reward, terminated, truncated, info = env.step(a)
                out.action(a, reward, g * dt_ns)
                g, t = g + 1, t + 1
                if terminated or truncated:
                    out.image(obs, g * dt_ns, info)
                    break
            g += 1 + gap
        ok = True
    finally:
        if ok:
            out.writer.close()
        else:
            out.writer.abort()
            shutil.rmtree(scratch, ignore_errors=True)
        env.close()
    tmp.rename(final)
    scratch.rmdir()
    return str(final), out.frames


def check_policy_kwargs(policy, policy_kwargs: dict | None, env_name: str = "two_rooms") -> dict:
    """The walk's keyword arguments, checked before any worker starts (ValueError names the bad one)."""
    policy_kwargs = dict(policy_kwargs or {})
    if policy_kwargs and policy != "walk":
        raise ValueError(f"record_rollouts: policy_kwargs={policy_kwargs} apply to policy='walk' only, not {policy!r}")
    if policy == "walk":
        from moejepa_ros.sim import data_policy

        try:
            data_policy(env_name, seed=0, **policy_kwargs)
        except TypeError as e:
            raise ValueError(f"record_rollouts: policy_kwargs={policy_kwargs}: {e}") from None
        except ValueError as e:
            raise ValueError(f"record_rollouts: policy='walk': {e}") from None
    return policy_kwargs


def record_rollouts(
    env_name: str,
    policy: str | Callable = "random",
    episodes: int = 1,
    out_dir: str | Path = "rollouts",
    workers: int = 1,
    storage: str = "mcap",
    seed: int = 0,
    max_steps: int | None = None,
    env_kwargs: dict | None = None,
    *,
    action_msg: str = "std_msgs/msg/Float32MultiArray",
    twist_fields=None,
    dt: float | None = None,
    episodes_per_bag: int | None = None,
    policy_kwargs: dict | None = None,
    topics: str = "sim",
) -> list[Path]:
    """Run `episodes` episodes of `env_name` under `policy` ("random", "walk" = Two-Rooms' data
    walk, or any `policy(obs, info) -> action`; with workers > 1 it must pickle) and write them as
    rosbag2 bags under `out_dir` (one per chunk of episodes). Returns the bag folders in order.
    `policy_kwargs` go to the env's walk (`moejepa_ros.sim.data_policy`, e.g. `{"cross_prob": 0}`).
    `topics`: "sim" (the module's TOPICS), "robot" (camera, /cmd_vel, /odom) or "arm" (camera,
    /joint_commands, /joint_states); see the module docstring."""
    if topics not in LAYOUTS:
        raise ValueError(f"record_rollouts: topics={topics!r}, expected one of {sorted(LAYOUTS)}")
    if topics in LAYOUT_ACTION_TYPES:
        allowed = LAYOUT_ACTION_TYPES[topics]
        if action_msg == "std_msgs/msg/Float32MultiArray":
            action_msg = allowed[0]
        if command_type(action_msg).name not in allowed:
            raise ValueError(
                f"record_rollouts: topics={topics!r} records {LAYOUTS[topics]['action']} as one of "
                f"{list(allowed)}, not {action_msg!r}"
            )
    if storage not in STORAGES:
        raise ValueError(f"record_rollouts: storage={storage!r}, expected one of {STORAGES}")
    try:
        command_type(action_msg)
    except CodecError as e:
        raise ValueError(f"record_rollouts: action_msg: {e}") from None
    if not (isinstance(policy, str) and policy in ("random", "walk")) and not callable(policy):
        raise ValueError(f"record_rollouts: policy={policy!r}, expected 'random', 'walk' or a callable")
    if int(episodes) < 1 or int(workers) < 1:
        raise ValueError(f"record_rollouts: episodes={episodes} and workers={workers} must be >= 1")
    if max_steps is not None and int(max_steps) < 1:
        raise ValueError(f"record_rollouts: max_steps={max_steps} must be >= 1 or None")
    if dt is not None and not dt > 0:
        raise ValueError(f"record_rollouts: dt={dt} must be > 0")
    policy_kwargs = check_policy_kwargs(policy, policy_kwargs, env_name)
    env_kwargs = dict(env_kwargs or {})
    if policy == "walk":
        env_kwargs.setdefault("mode", "data")
    episodes, workers = int(episodes), int(workers)
    per = int(episodes_per_bag or -(-episodes // workers))
    if per < 1:
        raise ValueError(f"record_rollouts: episodes_per_bag={episodes_per_bag} must be >= 1")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    specs = []
    for first in range(0, episodes, per):
        last = min(first + per, episodes)
        path = out_dir / f"rollout_{first:06d}_{last - 1:06d}"
        if path.exists():
            raise FileExistsError(f"record_rollouts: {path} exists; choose an empty out_dir")
        specs.append(
            dict(
                env_name=env_name,
                env_kwargs=env_kwargs,
                policy=policy,
                policy_kwargs=policy_kwargs,
                seed=int(seed),
                first=first,
                last=last,
                max_steps=None if max_steps is None else int(max_steps),
                storage=storage,
                action_msg=action_msg,
                twist_fields=None if twist_fields is None else list(twist_fields),
                dt=dt,
                path=str(path),
                topics=topics,
            )
        )
    if workers == 1 or len(specs) == 1:
        results = [_record_chunk(s) for s in specs]
    else:
        if env_name.startswith("dmc:") or env_name == "mobile_base":
            os.environ.setdefault("MUJOCO_GL", "egl")
        # an executor, not mp.Pool: a worker that cannot start raises instead of hanging
        with ProcessPoolExecutor(min(workers, len(specs)), mp_context=mp.get_context("spawn")) as ex:
            results = list(ex.map(_record_chunk, specs))
    return [Path(p) for p, _ in results]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description="Record simulator rollouts as rosbag2.")
    ap.add_argument("env", help="two_rooms | mobile_base | dmc:<domain>_<task>")
    ap.add_argument("--policy", default="random", choices=["random", "walk"])
    ap.add_argument(
        "--topics",
        default="sim",
        choices=sorted(LAYOUTS),
        help="topic layout (robot: camera, /cmd_vel, /odom; arm: camera, /joint_commands, /joint_states)",
    )
    ap.add_argument("--episodes", type=int, default=10)
    ap.add_argument("--out", required=True)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--storage", default="mcap", choices=STORAGES)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-steps", type=int, default=None)
    ap.add_argument(
        "--action-msg",
        default="std_msgs/msg/Float32MultiArray",
        choices=COMMAND_TYPE_NAMES,
        help="command type of /action: a full ROS type name (or a short alias)",
    )
    ap.add_argument("--env-kwargs", default="{}", help="JSON dict for make_env")
    a = ap.parse_args(argv)
    t = time.perf_counter()
    bags = record_rollouts(
        a.env,
        a.policy,
        a.episodes,
        a.out,
        a.workers,
        a.storage,
        a.seed,
        a.max_steps,
        json.loads(a.env_kwargs),
        action_msg=a.action_msg,
        topics=a.topics,
    )
    print(json.dumps({"bags": [str(b) for b in bags], "seconds": round(time.perf_counter() - t, 2)}))


if __name__ == "__main__":
    main()
