"""A differential-drive mobile base in a walled room, seen from its own camera (MuJoCo).

The robot's job in this project: drive to where a goal image was taken. The world is ours, so
goal reaching can be scored exactly, and it is recorded the way a robot records itself
(`training.rollouts` with the robot topics: camera, ``/cmd_vel``, ``/odom``).

World (metres, radians; yaw 0 looks along +x):

- a ``2 * ARENA_HALF`` square room; each wall is three panels of distinct colours (so every
  view says where the robot is), the floor a mosaic of ``TILE`` m tiles in random colours drawn
  once from ``WORLD_SEED`` (texture for motion, never repeating), two pillars (``PILLARS``);
- the base: a cylinder of radius ``RADIUS`` (body length ``BODY_LENGTH`` = its diameter, about a
  TurtleBot3 Waffle), on planar joints driven by velocity servos, so walls and pillars stop it
  (MuJoCo contacts);
- commands: ``geometry_msgs/Twist`` ``linear.x`` in ``[-MAX_LINEAR, MAX_LINEAR]`` m/s and
  ``angular.z`` in ``[-MAX_ANGULAR, MAX_ANGULAR]`` rad/s (a TurtleBot3-class base), reached under
  acceleration limits ``MAX_LINEAR_ACCEL`` / ``MAX_ANGULAR_ACCEL``;
- camera at ``RATE_HZ`` (one env step = one frame): ``camera="front"`` (over the axle, 0.3 m up,
  pitched 15 degrees down, 70 degree field of view) or ``camera="down"`` (on a mast 0.55 m up,
  looking straight down at the floor ahead of the base).

Rendering uses the CPU speed settings of ``dmc`` (no shadows, reflections or MSAA, an offscreen
buffer of the frame size), the same in training and deployment.

Modes:

- ``mode="data"``: start at a random free pose; reward 0; pair with :class:`RandomDrivePolicy`.
- ``mode="goal"``: a goal pose ``GOAL_RANGE`` body lengths from the start (``tier="near"``), or
  on the far side of a pillar (``tier="around"``); its image in ``info["goal_image"]``. Success
  (terminated) when the base is within ``SUCCESS_XY`` m and ``SUCCESS_YAW`` rad of the goal pose.
  ``SUCCESS_YAW`` is nav2's default ``yaw_goal_tolerance`` (0.25 rad); nav2's default
  ``xy_goal_tolerance`` (0.25 m) is larger than our nearest goals (0.5 body lengths = 0.15 m), so
  the position tolerance is a third of a body length. Reward = -(distance + 0.3 m/rad x |yaw error|).

``info["state"]`` and ``info["odom"]`` are float32 ``[x, y, yaw]`` (the odometry a robot would
publish; here exact), ``info["pos"]`` its ``[x, y]``, ``info["twist"]`` the measured ``[v, w]``.
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np

from .dmc import ensure_gl_backend
from .errors import SimUnavailableError

ARENA_HALF = 1.5
RADIUS = 0.15
BODY_LENGTH = 2 * RADIUS
TILE = 0.25
WORLD_SEED = 7
FLOOR_LEVEL, FLOOR_CONTRAST = 0.5, 0.25  # tile colours in LEVEL +- CONTRAST / 2: texture, not landmarks
PILLARS = ((0.55, 0.45, 0.14), (-0.5, -0.55, 0.14))  # (x, y, radius)
MAX_LINEAR = 0.3
MAX_ANGULAR = 1.5
MAX_LINEAR_ACCEL = 2.0
MAX_ANGULAR_ACCEL = 8.0
RATE_HZ = 15.0
PHYSICS_STEPS = 10  # per frame
GOAL_RANGE = (0.5, 3.0)  # body lengths
GOAL_YAW_RANGE = math.pi / 2  # |goal yaw - start yaw| <= this
SUCCESS_XY = BODY_LENGTH / 3
SUCCESS_YAW = 0.25
YAW_WEIGHT = 0.3  # metres per radian in the reward and the pose distance
GOAL_STEPS = 200
DATA_STEPS = 300
CAMERAS = ("front", "down")
TIERS = ("near", "around")
# wall panel colours: 4 walls x 3 panels, all distinct
_PANELS = (
    (0.85, 0.15, 0.15),
    (0.95, 0.6, 0.1),
    (0.95, 0.9, 0.2),
    (0.2, 0.7, 0.2),
    (0.1, 0.5, 0.45),
    (0.2, 0.75, 0.9),
    (0.15, 0.25, 0.8),
    (0.5, 0.2, 0.75),
    (0.85, 0.4, 0.7),
    (0.55, 0.35, 0.15),
    (0.95, 0.95, 0.95),
    (0.1, 0.1, 0.1),
)
_PILLAR_COLOURS = ((0.9, 0.1, 0.6), (0.1, 0.9, 0.8))


def wrap(angle: float) -> float:
    """Angle in [-pi, pi)."""
    return (float(angle) + math.pi) % (2 * math.pi) - math.pi


def pose_distance(a, b) -> float:
    """Planar distance plus ``YAW_WEIGHT`` x |heading difference| between poses [x, y, yaw]."""
    return math.hypot(a[0] - b[0], a[1] - b[1]) + YAW_WEIGHT * abs(wrap(a[2] - b[2]))


def is_free(x: float, y: float, margin: float = 0.0) -> bool:
    """The base (plus `margin`) at (x, y) touches no wall and no pillar."""
    r = RADIUS + margin
    if abs(x) > ARENA_HALF - r or abs(y) > ARENA_HALF - r:
        return False
    return all(math.hypot(x - px, y - py) > pr + r for px, py, pr in PILLARS)


def _mjcf(size: int) -> str:
    rng = np.random.default_rng(WORLD_SEED)
    n = int(round(2 * ARENA_HALF / TILE))
    tiles = []
    for i in range(n):
        for j in range(n):
            c = FLOOR_LEVEL + FLOOR_CONTRAST * (rng.random(3) - 0.5)
            x, y = -ARENA_HALF + (i + 0.5) * TILE, -ARENA_HALF + (j + 0.5) * TILE
            tiles.append(
                f'<geom type="box" size="{TILE / 2} {TILE / 2} 0.005" pos="{x:.4f} {y:.4f} -0.005" '
                f'rgba="{c[0]:.3f} {c[1]:.3f} {c[2]:.3f} 1" contype="0" conaffinity="0"/>'
            )
    walls, h, t = [], 0.3, 0.05
    third = 2 * ARENA_HALF / 3
    for w, (cx, cy, along_x) in enumerate(
        ((0, ARENA_HALF + t, True), (ARENA_HALF + t, 0, False), (0, -ARENA_HALF - t, True), (-ARENA_HALF - t, 0, False))
    ):
        for p in range(3):
            off = -ARENA_HALF + (p + 0.5) * third
            x, y = (cx + off, cy) if along_x else (cx, cy + off)
            sx, sy = (third / 2, t) if along_x else (t, third / 2)
            r, g, b = _PANELS[3 * w + p]
            walls.append(
                f'<geom type="box" size="{sx:.4f} {sy:.4f} {h}" pos="{x:.4f} {y:.4f} {h}" '
                f'rgba="{r} {g} {b} 1" contype="1" conaffinity="2"/>'
            )
    pillars = [
        f'<geom type="cylinder" size="{pr} 0.3" pos="{px} {py} 0.3" rgba="{c[0]} {c[1]} {c[2]} 1" '
        f'contype="1" conaffinity="2"/>'
        for (px, py, pr), c in zip(PILLARS, _PILLAR_COLOURS, strict=True)
    ]
    dt = 1.0 / RATE_HZ / PHYSICS_STEPS
    return f"""
<mujoco model="mobile_base">
  <option timestep="{dt:.6f}" gravity="0 0 0" integrator="implicitfast"/>
  <visual>
    <global offwidth="{size}" offheight="{size}"/>
    <quality shadowsize="0" offsamples="0"/>
    <headlight ambient="0.45 0.45 0.45" diffuse="0.5 0.5 0.5"/>
  </visual>
  <worldbody>
    {"".join(tiles)}
    {"".join(walls)}
    {"".join(pillars)}
    <body name="base" pos="0 0 0.1">
      <joint name="x" type="slide" axis="1 0 0" damping="0"/>
      <joint name="y" type="slide" axis="0 1 0" damping="0"/>
      <joint name="yaw" type="hinge" axis="0 0 1" damping="0"/>
      <geom type="cylinder" size="{RADIUS} 0.08" mass="5" rgba="0.3 0.3 0.35 1" contype="2" conaffinity="1"/>
      <camera name="front" pos="0.05 0 0.2" xyaxes="0 -1 0 0.259 0 0.966" fovy="70"/>
      <camera name="down" pos="{RADIUS + 0.12} 0 0.45" xyaxes="0 -1 0 1 0 0" fovy="70"/>
    </body>
  </worldbody>
  <actuator>
    <velocity joint="x" kv="400"/>
    <velocity joint="y" kv="400"/>
    <velocity joint="yaw" kv="4"/>
  </actuator>
</mujoco>"""


class MobileBaseEnv(gym.Env):
    """Gymnasium env of the mobile base; see the module docstring for the world, modes, success."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": RATE_HZ}

    def __init__(
        self,
        mode: str = "goal",
        camera: str = "front",
        size: int = 64,
        tier: str = "near",
        max_episode_steps: int | None = None,
        render_mode: str | None = "rgb_array",
    ):
        if mode not in ("goal", "data"):
            raise ValueError(f"mobile_base: mode={mode!r}, expected 'goal' or 'data'")
        if camera not in CAMERAS:
            raise ValueError(f"mobile_base: camera={camera!r}, expected one of {CAMERAS}")
        if tier not in TIERS:
            raise ValueError(f"mobile_base: tier={tier!r}, expected one of {TIERS}")
        if not (16 <= int(size) <= 1024):
            raise ValueError(f"mobile_base: size={size} outside [16, 1024]")
        self.mode, self.camera, self.size, self.tier = mode, camera, int(size), tier
        self.max_episode_steps = int(max_episode_steps or (GOAL_STEPS if mode == "goal" else DATA_STEPS))
        if self.max_episode_steps < 1:
            raise ValueError(f"mobile_base: max_episode_steps={max_episode_steps} must be >= 1")
        self.render_mode = render_mode
        self.dt = 1.0 / RATE_HZ
        ensure_gl_backend()
        try:
            import mujoco
        except ImportError as e:  # pragma: no cover - depends on the install
            raise SimUnavailableError(f"mobile_base: mujoco not importable ({e}); install mujoco==3.17.0") from e
        self._mj = mujoco
        self.model = mujoco.MjModel.from_xml_string(_mjcf(self.size))
        self.data = mujoco.MjData(self.model)
        self._renderer = mujoco.Renderer(self.model, self.size, self.size)
        self._cam = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_CAMERA, camera)
        self.observation_space = gym.spaces.Box(0, 255, (self.size, self.size, 3), np.uint8)
        self.action_space = gym.spaces.Box(
            np.array([-MAX_LINEAR, -MAX_ANGULAR], np.float32), np.array([MAX_LINEAR, MAX_ANGULAR], np.float32)
        )
        self.v = self.w = 0.0  # commanded velocities after the acceleration limits
        self.goal: np.ndarray | None = None
        self.goal_image: np.ndarray | None = None
        self.steps = 0

    # -- state --------------------------------------------------------------------------
    @property
    def pose(self) -> np.ndarray:
        q = self.data.qpos
        return np.array([q[0], q[1], wrap(q[2])], np.float32)

    def set_pose(self, pose) -> None:
        p = np.asarray(pose, np.float64).reshape(-1)
        if p.shape != (3,) or not np.all(np.isfinite(p)):
            raise ValueError(f"mobile_base: a pose is [x, y, yaw], got {pose!r}")
        if not is_free(p[0], p[1]):
            raise ValueError(
                f"mobile_base: pose {p.tolist()} is not free (walls at +-{ARENA_HALF} m, pillars {PILLARS})"
            )
        self.data.qpos[:] = p
        self.data.qvel[:] = 0.0
        self.data.ctrl[:] = 0.0
        self.v = self.w = 0.0
        self._mj.mj_forward(self.model, self.data)

    def render_pose(self, pose) -> np.ndarray:
        """The camera image at `pose` (the robot is put back afterwards)."""
        q, qv = self.data.qpos.copy(), self.data.qvel.copy()
        self.data.qpos[:] = np.asarray(pose, np.float64)
        self._mj.mj_forward(self.model, self.data)
        img = self._render()
        self.data.qpos[:], self.data.qvel[:] = q, qv
        self._mj.mj_forward(self.model, self.data)
        return img

    def _render(self) -> np.ndarray:
        self._renderer.update_scene(self.data, camera=self._cam)
        return self._renderer.render().copy()

    # -- sampling -----------------------------------------------------------------------
    def _free_pose(self, rng, margin: float = 0.05) -> np.ndarray:
        while True:
            x, y = rng.uniform(-ARENA_HALF, ARENA_HALF, 2)
            if is_free(x, y, margin):
                return np.array([x, y, rng.uniform(-math.pi, math.pi)])

    def _goal_pose(self, rng, start: np.ndarray) -> np.ndarray:
        for _ in range(10000):
            if self.tier == "near":
                d = rng.uniform(*GOAL_RANGE) * BODY_LENGTH
                phi = rng.uniform(-math.pi, math.pi)
                x, y = start[0] + d * math.cos(phi), start[1] + d * math.sin(phi)
                if not is_free(x, y, 0.05):
                    continue
            else:  # the pillar nearest the start lies between start and goal
                px, py, pr = min(PILLARS, key=lambda p: math.hypot(start[0] - p[0], start[1] - p[1]))
                x, y = 2 * px - start[0], 2 * py - start[1]
                x, y = x + rng.normal(0, 0.1), y + rng.normal(0, 0.1)
                if not is_free(x, y, 0.05):
                    continue
            yaw = wrap(start[2] + rng.uniform(-GOAL_YAW_RANGE, GOAL_YAW_RANGE))
            return np.array([x, y, yaw])
        raise RuntimeError("mobile_base: no free goal pose found")  # pragma: no cover

    def _around_start(self, rng) -> np.ndarray:
        """A start 0.45-0.8 m from a pillar's centre, so its mirror image is free too."""
        while True:
            px, py, _ = PILLARS[rng.integers(len(PILLARS))]
            d, phi = rng.uniform(0.45, 0.8), rng.uniform(-math.pi, math.pi)
            x, y = px + d * math.cos(phi), py + d * math.sin(phi)
            if is_free(x, y, 0.05) and is_free(2 * px - x, 2 * py - y, 0.05):
                return np.array([x, y, rng.uniform(-math.pi, math.pi)])

    # -- gymnasium API ------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """New episode; ``options`` may fix ``start`` and ``goal`` poses [x, y, yaw]."""
        super().reset(seed=seed)
        opts = dict(options or {})
        if unknown := set(opts) - {"start", "goal"}:
            raise ValueError(f"mobile_base: unknown reset options {sorted(unknown)}")
        rng = self.np_random
        if "start" in opts:
            start = np.asarray(opts["start"], np.float64)
        elif self.mode == "goal" and self.tier == "around":
            start = self._around_start(rng)
        else:
            start = self._free_pose(rng)
        self.set_pose(start)
        self.goal, self.goal_image = None, None
        if "goal" in opts or self.mode == "goal":
            goal = np.asarray(opts["goal"], np.float64) if "goal" in opts else self._goal_pose(rng, start)
            if not is_free(goal[0], goal[1]):
                raise ValueError(f"mobile_base: goal {goal.tolist()} is not free")
            self.goal = np.array([goal[0], goal[1], wrap(goal[2])], np.float32)
            self.goal_image = self.render_pose(self.goal)
            self.goal_image.flags.writeable = False
        self.steps = 0
        return self._render(), self._info()

    def step(self, action):
        a = np.asarray(action, np.float64).reshape(-1)
        if a.shape != (2,):
            raise ValueError(f"mobile_base: action is [linear.x, angular.z], got shape {a.shape}")
        a = np.where(np.isfinite(a), a, 0.0)
        v_cmd = float(np.clip(a[0], -MAX_LINEAR, MAX_LINEAR))
        w_cmd = float(np.clip(a[1], -MAX_ANGULAR, MAX_ANGULAR))
        dv, dw = MAX_LINEAR_ACCEL * self.dt, MAX_ANGULAR_ACCEL * self.dt
        self.v += float(np.clip(v_cmd - self.v, -dv, dv))
        self.w += float(np.clip(w_cmd - self.w, -dw, dw))
        d, m = self.data, self._mj
        for _ in range(PHYSICS_STEPS):
            yaw = d.qpos[2]
            d.ctrl[0], d.ctrl[1], d.ctrl[2] = self.v * math.cos(yaw), self.v * math.sin(yaw), self.w
            m.mj_step(self.model, d)
        self.steps += 1
        reward, terminated = 0.0, False
        if self.goal is not None:
            p = self.pose
            reward = -pose_distance(p, self.goal)
            terminated = self._reached(p)
        truncated = (not terminated) and self.steps >= self.max_episode_steps
        return self._render(), reward, terminated, truncated, self._info()

    def _reached(self, p) -> bool:
        g = self.goal
        return math.hypot(p[0] - g[0], p[1] - g[1]) < SUCCESS_XY and abs(wrap(p[2] - g[2])) < SUCCESS_YAW

    def render(self):
        return self._render()

    def get_state(self) -> np.ndarray:
        return self.pose

    def close(self):
        r = getattr(self, "_renderer", None)
        if r is not None:
            r.close()
            self._renderer = None

    def _info(self) -> dict[str, Any]:
        p = self.pose
        yaw = float(self.data.qpos[2])
        qv = self.data.qvel
        twist = np.array([qv[0] * math.cos(yaw) + qv[1] * math.sin(yaw), qv[2]], np.float32)
        info: dict[str, Any] = {"state": p, "odom": p, "pos": p[:2], "twist": twist, "step": self.steps}
        if self.goal is not None:
            info["goal_state"] = self.goal
            info["goal_image"] = self.goal_image
            info["distance"] = math.hypot(p[0] - self.goal[0], p[1] - self.goal[1])
            info["yaw_error"] = abs(wrap(p[2] - self.goal[2]))
            info["success"] = self._reached(p)
        return info


class RandomDrivePolicy:
    """Random driving as a person with a joystick does it, to record training data.

    Segments of 0.5-2 s, each one of: drive to a random free point of the room (steering towards
    it, up to 6 s; long traverses cover the room), drive forward on an arc, turn on the spot,
    reverse on an arc, or stop. When the base is blocked (moving at under a third of the
    commanded speed for 3 frames, i.e. against a wall or a pillar), it backs off for about a
    second while turning. It reads the odometry in ``info`` as a driver sees the room.
    Deterministic given the seed and the observations."""

    def __init__(self, seed: int = 0, waypoint_prob: float = 0.5, turn_prob: float = 0.1, reverse_prob: float = 0.1):
        if min(waypoint_prob, turn_prob, reverse_prob) < 0 or waypoint_prob + turn_prob + reverse_prob > 1:
            raise ValueError(
                "RandomDrivePolicy: waypoint_prob, turn_prob, reverse_prob must be >= 0 and sum to <= 1, "
                f"got {waypoint_prob}, {turn_prob}, {reverse_prob}"
            )
        self.rng = np.random.default_rng(seed)
        self.p = (waypoint_prob, turn_prob, reverse_prob)
        self.cmd = np.zeros(2, np.float32)
        self.target: np.ndarray | None = None
        self.left = 0
        self.blocked = 0

    def _segment(self) -> None:
        r, (pw, pt, pr) = self.rng, self.p
        u = r.random()
        self.target = None
        self.left = int(r.integers(int(0.5 * RATE_HZ), int(2.0 * RATE_HZ) + 1))
        if u < pw:
            while self.target is None:
                x, y = r.uniform(-ARENA_HALF, ARENA_HALF, 2)
                if is_free(x, y, 0.1):
                    self.target = np.array([x, y])
            self.left = int(6 * RATE_HZ)
            return
        if u < pw + pt:
            v, w = 0.0, r.choice([-1, 1]) * r.uniform(0.3, 1.0) * MAX_ANGULAR
        elif u < pw + pt + pr:
            v, w = -r.uniform(0.3, 1.0) * MAX_LINEAR, r.normal(0, 0.35) * MAX_ANGULAR
        elif r.random() < 0.85:
            v, w = r.uniform(0.3, 1.0) * MAX_LINEAR, r.normal(0, 0.35) * MAX_ANGULAR
        else:
            v, w = 0.0, 0.0
        self.cmd = np.clip([v, w], [-MAX_LINEAR, -MAX_ANGULAR], [MAX_LINEAR, MAX_ANGULAR]).astype(np.float32)

    def _steer(self, pose) -> bool:
        """Command towards the waypoint; False once it is reached."""
        dx, dy = self.target[0] - pose[0], self.target[1] - pose[1]
        if math.hypot(dx, dy) < 0.1:
            return False
        err = wrap(math.atan2(dy, dx) - pose[2])
        w = float(np.clip(2.5 * err, -MAX_ANGULAR, MAX_ANGULAR))
        v = MAX_LINEAR * max(0.0, math.cos(err)) ** 2
        self.cmd = np.array([v, w], np.float32)
        return True

    def __call__(self, obs, info: dict[str, Any]) -> np.ndarray:
        speed = float(info["twist"][0]) if "twist" in info else 0.0
        if abs(self.cmd[0]) > 0.05 and abs(speed) < abs(self.cmd[0]) / 3:
            self.blocked += 1
        else:
            self.blocked = 0
        if self.blocked >= 3:
            back = -np.sign(self.cmd[0]) * MAX_LINEAR * self.rng.uniform(0.5, 1.0)
            turn = self.rng.choice([-1, 1]) * self.rng.uniform(0.5, 1.0) * MAX_ANGULAR
            self.cmd, self.target = np.array([back, turn], np.float32), None
            self.left, self.blocked = int(RATE_HZ), 0
        elif self.left <= 0 or (self.target is not None and not self._steer(info["odom"])):
            self._segment()
            if self.target is not None:
                self._steer(info["odom"])
        self.left -= 1
        return self.cmd.copy()
