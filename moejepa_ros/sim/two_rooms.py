"""Two-Rooms ("DotWall") navigation task, rebuilt from its description in PLDM (Sobal et al. 2025).

A point agent moves in a 64x64 arena split by a vertical wall with one door; the observation is
a 64x64 RGB frame. Pure numpy, fast enough for offline data generation (> 20k steps/s).

Geometry (continuous pixel coordinates; pixel ``i`` covers ``[i - 0.5, i + 0.5]``, x = column,
y = row):

- border walls: the outer ``BORDER`` (2) pixel rows/columns; the agent lives in
  ``[ARENA_LO, ARENA_HI] = [1.5, 61.5]`` on both axes;
- the central wall: pixel columns ``wall_x - 1 .. wall_x + 1`` (3 px wide), i.e. the open slab
  ``|x - wall_x| < 1.5``, except the door: pixel rows ``door_y - 4 .. door_y + 4``, i.e.
  ``|y - door_y| <= 4.5``. The rendered wall and the collision geometry are the same set.
- layouts: ``wall_x`` in ``[20, 43]`` and ``door_y`` in ``[10, 53]`` (at least 20 px / 10 px
  from the image borders), fixed by the constructor or drawn per episode when ``None``.

Dynamics: ``next = pos + a`` with ``|a| <= 2.45`` (the norm is clipped). The straight move is
tested exactly against the arena box and both wall blocks (segment vs. axis-aligned box, slab
method); where it would enter one, the agent stops at the contact point. So the agent can only
change rooms through the door and never leaves the arena.

Rendering (colours are separate channels, so a model or a human can tell them apart):
walls -> blue channel 255; agent -> red channel, a Gaussian with sigma 1.3 px (peak 255);
goal marker (only if ``show_goal=True``) -> green channel, the same Gaussian. The goal image
(``info["goal_image"]``) is the frame the agent would see standing at the goal, without marker.

Modes:

- ``mode="goal"``: start and goal in opposite rooms, 200 steps, success when the squared
  distance to the goal is ``< 1`` px^2 (terminated); reward ``= -distance`` (Euclidean, px)
  after the step; ``info["goal_image"]``, ``info["goal_state"]``, ``info["success"]``.
- ``mode="data"``: start anywhere free, reward 0, no goal; pair with :class:`RandomWalkPolicy`
  to produce the biased random-walk data used for offline training.

``info["state"]`` is float32 ``[x, y, wall_x, door_y]``; also ``info["pos"]``, ``info["wall_x"]``,
``info["door_y"]``, ``info["step"]``.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import gymnasium as gym
import numpy as np

SIZE = 64
BORDER = 2
ARENA_LO = BORDER - 0.5  # 1.5
ARENA_HI = SIZE - BORDER - 0.5  # 61.5
WALL_HALF = 1.5  # 3 px wide wall
DOOR_HALF = 4.5  # door rows door_y-4 .. door_y+4
WALL_X_RANGE = (20, SIZE - 1 - 20)  # (20, 43)
DOOR_Y_RANGE = (10, SIZE - 1 - 10)  # (10, 53)
MAX_ACTION = 2.45
SIGMA = 1.3
SUCCESS_SQ_DIST = 1.0
GOAL_STEPS = 200
DATA_STEPS = 100
_PATCH_R = 4  # Gaussian patch radius (about 3 sigma)
_OFFS = np.arange(-_PATCH_R, _PATCH_R + 1, dtype=np.float64)


def _check_layout(wall_x: int, door_y: int) -> None:
    if not (WALL_X_RANGE[0] <= wall_x <= WALL_X_RANGE[1]):
        raise ValueError(f"two_rooms: wall_x={wall_x} outside {list(WALL_X_RANGE)}")
    if not (DOOR_Y_RANGE[0] <= door_y <= DOOR_Y_RANGE[1]):
        raise ValueError(f"two_rooms: door_y={door_y} outside {list(DOOR_Y_RANGE)}")


@functools.lru_cache(maxsize=512)
def background(wall_x: int, door_y: int) -> np.ndarray:
    """Static frame of one layout (walls in the blue channel); cached and read-only."""
    _check_layout(wall_x, door_y)
    img = np.zeros((SIZE, SIZE, 3), np.uint8)
    img[:BORDER, :, 2] = img[-BORDER:, :, 2] = 255
    img[:, :BORDER, 2] = img[:, -BORDER:, 2] = 255
    img[:, wall_x - 1 : wall_x + 2, 2] = 255
    img[door_y - 4 : door_y + 5, wall_x - 1 : wall_x + 2, 2] = 0
    img.flags.writeable = False
    return img


_SUB = 64  # sub-pixel steps at which the dot is pre-rendered (1/64 px)


def _dot_table() -> np.ndarray:
    """uint8 [_SUB, _SUB, 9, 9]: the Gaussian dot for every 1/64-px sub-pixel offset (dy, dx)."""
    frac = (np.arange(_SUB) / _SUB) - 0.5  # centre offset from the nearest pixel, [-0.5, 0.5)
    g = np.exp(-((_OFFS[None, :] - frac[:, None]) ** 2) / (2 * SIGMA * SIGMA))  # [_SUB, 9]
    table = np.einsum("ai,bj->abij", g, g) * 255.0 + 0.5
    out = table.astype(np.uint8)
    out.flags.writeable = False
    return out


_DOT = _dot_table()


def _stamp(img: np.ndarray, x: float, y: float, channel: int) -> None:
    """Draw the Gaussian dot centred at (x, y) into ``channel`` of ``img`` (max-composited).

    The sub-pixel position is quantised to 1/64 px (a pre-rendered table; < 3 grey levels of
    difference from the exact Gaussian), which makes a frame ~10x cheaper to draw.
    """
    fx, fy = math.floor(x + 0.5), math.floor(y + 0.5)  # nearest pixel centre
    qx = min(int((x - fx + 0.5) * _SUB), _SUB - 1)
    qy = min(int((y - fy + 0.5) * _SUB), _SUB - 1)
    patch = _DOT[qy, qx]
    y0, x0 = fy - _PATCH_R, fx - _PATCH_R
    if 0 <= y0 and 0 <= x0 and y0 + 2 * _PATCH_R < SIZE and x0 + 2 * _PATCH_R < SIZE:
        dst = img[y0 : y0 + 2 * _PATCH_R + 1, x0 : x0 + 2 * _PATCH_R + 1, channel]
    else:
        ys, xs = max(y0, 0), max(x0, 0)
        ye, xe = min(y0 + 2 * _PATCH_R + 1, SIZE), min(x0 + 2 * _PATCH_R + 1, SIZE)
        patch = patch[ys - y0 : ye - y0, xs - x0 : xe - x0]
        dst = img[ys:ye, xs:xe, channel]
    np.maximum(dst, patch, out=dst)


def render_frame(pos, wall_x: int, door_y: int, goal=None) -> np.ndarray:
    """RGB uint8 [64, 64, 3] frame: agent at ``pos``; a goal marker (green) if ``goal`` given."""
    img = background(int(wall_x), int(door_y)).copy()
    _stamp(img, float(pos[0]), float(pos[1]), 0)
    if goal is not None:
        _stamp(img, float(goal[0]), float(goal[1]), 1)
    return img


def is_free(x: float, y: float, wall_x: float, door_y: float) -> bool:
    """True when the point is inside the arena and not strictly inside the wall."""
    if not (ARENA_LO <= x <= ARENA_HI and ARENA_LO <= y <= ARENA_HI):
        return False
    return not (abs(x - wall_x) < WALL_HALF and abs(y - door_y) > DOOR_HALF)


def _entry(p: float, d: float, lo: float, hi: float):
    """Parameter interval (t0, t1) where p + t*d lies in the open interval (lo, hi), or None."""
    if d == 0.0:
        return (-math.inf, math.inf) if lo < p < hi else None
    t0, t1 = (lo - p) / d, (hi - p) / d
    return (t0, t1) if t0 < t1 else (t1, t0)


def move(x: float, y: float, ax: float, ay: float, wall_x: float, door_y: float):
    """One move from (x, y) by (ax, ay), stopped at the first wall or arena border it would hit.

    Exact segment-vs-box test against the two wall blocks (open boxes, so the agent may touch
    a face); the contact coordinate is snapped onto the face so rounding never leaves the agent
    inside a block. Returns the new (x, y).
    """
    # Arena: largest t in [0, 1] that keeps the point in the closed box.
    t = 1.0
    for p, d in ((x, ax), (y, ay)):
        if d > 0.0:
            t = min(t, (ARENA_HI - p) / d)
        elif d < 0.0:
            t = min(t, (ARENA_LO - p) / d)
    t = max(t, 0.0)
    snap = None
    xlo, xhi = wall_x - WALL_HALF, wall_x + WALL_HALF
    ix = _entry(x, ax, xlo, xhi)
    if ix is not None:
        for ylo, yhi in ((-math.inf, door_y - DOOR_HALF), (door_y + DOOR_HALF, math.inf)):
            iy = _entry(y, ay, ylo, yhi)
            if iy is None:
                continue
            t0, t1 = max(ix[0], iy[0]), min(ix[1], iy[1])
            if t0 < t1 and t0 < t and t1 > 0.0:
                t0 = max(t0, 0.0)
                t = t0
                if ix[0] >= iy[0]:  # entered through a vertical face
                    snap = ("x", xlo if ax > 0.0 else xhi)
                else:  # entered through the door's horizontal edge
                    snap = ("y", ylo if ay > 0.0 else yhi)
    nx, ny = x + t * ax, y + t * ay
    if snap is not None:
        if snap[0] == "x":
            nx = snap[1]
        else:
            ny = snap[1]
    nx = min(max(nx, ARENA_LO), ARENA_HI)
    ny = min(max(ny, ARENA_LO), ARENA_HI)
    return nx, ny


def clip_action(action) -> tuple[float, float]:
    """Validate an action (2 finite numbers) and clip its Euclidean norm to ``MAX_ACTION``."""
    a = np.asarray(action, dtype=np.float64).reshape(-1)
    if a.shape != (2,):
        raise ValueError(f"two_rooms: action must have 2 elements, got shape {np.shape(action)}")
    ax, ay = float(a[0]), float(a[1])
    if not (math.isfinite(ax) and math.isfinite(ay)):
        raise ValueError(f"two_rooms: action must be finite, got {a.tolist()}")
    n = math.hypot(ax, ay)
    if n > MAX_ACTION:
        ax, ay = ax * MAX_ACTION / n, ay * MAX_ACTION / n
    return ax, ay


def room_of(x: float, wall_x: float) -> int:
    """-1 for the left room, +1 for the right one (0 exactly on the wall's centre line)."""
    x, wall_x = float(x), float(wall_x)
    return int(x > wall_x) - int(x < wall_x)


class TwoRoomsEnv(gym.Env):
    """Gymnasium env for Two-Rooms; see the module docstring for geometry, modes and colours."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 30}

    def __init__(
        self,
        mode: str = "goal",
        wall_x: int | None = None,
        door_y: int | None = None,
        max_episode_steps: int | None = None,
        show_goal: bool = False,
        render_mode: str | None = "rgb_array",
    ):
        if mode not in ("goal", "data"):
            raise ValueError(f"two_rooms: mode={mode!r}, expected 'goal' or 'data'")
        if wall_x is not None or door_y is not None:
            _check_layout(
                wall_x if wall_x is not None else WALL_X_RANGE[0], door_y if door_y is not None else DOOR_Y_RANGE[0]
            )
        self.mode = mode
        self.fixed_wall_x = wall_x
        self.fixed_door_y = door_y
        default_steps = GOAL_STEPS if mode == "goal" else DATA_STEPS
        self.max_episode_steps = int(max_episode_steps or default_steps)
        if self.max_episode_steps < 1:
            raise ValueError(f"two_rooms: max_episode_steps={max_episode_steps} must be >= 1")
        self.show_goal = bool(show_goal)
        self.render_mode = render_mode
        self.observation_space = gym.spaces.Box(0, 255, (SIZE, SIZE, 3), np.uint8)
        self.action_space = gym.spaces.Box(-MAX_ACTION, MAX_ACTION, (2,), np.float32)
        self.wall_x = wall_x if wall_x is not None else 32
        self.door_y = door_y if door_y is not None else 32
        self.x = self.y = 0.5 * (ARENA_LO + ARENA_HI)
        self.goal: tuple[float, float] | None = None
        self.goal_image: np.ndarray | None = None
        self.steps = 0

    # -- sampling -----------------------------------------------------------------------
    def _sample_in_room(self, side: int) -> tuple[float, float]:
        """Uniform point in a room (-1 left, +1 right), 1 px clear of the wall face."""
        r = self.np_random
        if side < 0:
            lo, hi = ARENA_LO, self.wall_x - WALL_HALF - 1.0
        else:
            lo, hi = self.wall_x + WALL_HALF + 1.0, ARENA_HI
        return float(r.uniform(lo, hi)), float(r.uniform(ARENA_LO, ARENA_HI))

    def _check_point(self, name: str, p) -> tuple[float, float]:
        a = np.asarray(p, dtype=np.float64).reshape(-1)
        if a.shape != (2,) or not np.all(np.isfinite(a)):
            raise ValueError(f"two_rooms: {name} must be 2 finite numbers, got {p!r}")
        if not is_free(a[0], a[1], self.wall_x, self.door_y):
            raise ValueError(
                f"two_rooms: {name}={a.tolist()} is not free space (arena [{ARENA_LO}, {ARENA_HI}],"
                f" wall_x={self.wall_x}, door_y={self.door_y})"
            )
        return float(a[0]), float(a[1])

    # -- gymnasium API ------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """New episode. ``options`` may fix ``wall_x``, ``door_y``, ``start`` and ``goal``."""
        super().reset(seed=seed)
        opts = dict(options or {})
        unknown = set(opts) - {"wall_x", "door_y", "start", "goal"}
        if unknown:
            raise ValueError(f"two_rooms: unknown reset options {sorted(unknown)}")
        r = self.np_random
        wx = opts.get("wall_x", self.fixed_wall_x)
        dy = opts.get("door_y", self.fixed_door_y)
        self.wall_x = int(wx) if wx is not None else int(r.integers(WALL_X_RANGE[0], WALL_X_RANGE[1] + 1))
        self.door_y = int(dy) if dy is not None else int(r.integers(DOOR_Y_RANGE[0], DOOR_Y_RANGE[1] + 1))
        _check_layout(self.wall_x, self.door_y)
        side = 1 if r.random() < 0.5 else -1
        if "start" in opts:
            self.x, self.y = self._check_point("start", opts["start"])
        else:
            self.x, self.y = self._sample_in_room(side)
        self.goal, self.goal_image = None, None
        if "goal" in opts:
            self.goal = self._check_point("goal", opts["goal"])
        elif self.mode == "goal":
            self.goal = self._sample_in_room(-room_of(self.x, self.wall_x) or -side)
        if self.goal is not None:
            self.goal_image = render_frame(self.goal, self.wall_x, self.door_y)
            self.goal_image.flags.writeable = False
        self.steps = 0
        return self._obs(), self._info()

    def step(self, action):
        ax, ay = clip_action(action)
        self.x, self.y = move(self.x, self.y, ax, ay, self.wall_x, self.door_y)
        self.steps += 1
        reward, terminated = 0.0, False
        if self.goal is not None:
            d2 = (self.x - self.goal[0]) ** 2 + (self.y - self.goal[1]) ** 2
            reward = -math.sqrt(d2)
            terminated = d2 < SUCCESS_SQ_DIST
        truncated = (not terminated) and self.steps >= self.max_episode_steps
        return self._obs(), reward, terminated, truncated, self._info()

    def render(self):
        return self._obs()

    # -- state access (probing, planning benchmarks) ------------------------------------
    def set_state(self, state):
        """Place the agent: ``state`` is ``[x, y]`` or ``[x, y, wall_x, door_y]``. Returns (obs, info)."""
        s = np.asarray(state, dtype=np.float64).reshape(-1)
        if s.shape not in ((2,), (4,)):
            raise ValueError(f"two_rooms: set_state wants [x, y] or [x, y, wall_x, door_y], got shape {s.shape}")
        if s.shape == (4,):
            wx, dy = int(round(s[2])), int(round(s[3]))
            _check_layout(wx, dy)
            if (wx, dy) != (self.wall_x, self.door_y) and self.goal is not None:
                if not is_free(self.goal[0], self.goal[1], wx, dy):
                    raise ValueError(
                        f"two_rooms: goal {list(self.goal)} would be inside the wall of layout wall_x={wx}, door_y={dy}"
                    )
                self.goal_image = render_frame(self.goal, wx, dy)
                self.goal_image.flags.writeable = False
            self.wall_x, self.door_y = wx, dy
        self.x, self.y = self._check_point("state", s[:2])
        return self._obs(), self._info()

    def get_state(self) -> np.ndarray:
        return np.array([self.x, self.y, self.wall_x, self.door_y], np.float32)

    def render_state(self, pos) -> np.ndarray:
        """Frame with the agent at ``pos`` in the current layout (e.g. a goal image)."""
        return render_frame(pos, self.wall_x, self.door_y)

    def _obs(self) -> np.ndarray:
        return render_frame((self.x, self.y), self.wall_x, self.door_y, self.goal if self.show_goal else None)

    def _info(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "state": self.get_state(),
            "pos": np.array([self.x, self.y], np.float32),
            "wall_x": self.wall_x,
            "door_y": self.door_y,
            "step": self.steps,
        }
        if self.goal is not None:
            d2 = (self.x - self.goal[0]) ** 2 + (self.y - self.goal[1]) ** 2
            info["goal_state"] = np.array([self.goal[0], self.goal[1], self.wall_x, self.door_y], np.float32)
            info["goal_image"] = self.goal_image
            info["distance"] = math.sqrt(d2)
            info["success"] = d2 < SUCCESS_SQ_DIST
        return info


class RandomWalkPolicy:
    """The biased random walk that produces offline Two-Rooms data (after PLDM's description).

    Persistent heading with small Gaussian angle noise; step length ~ N(1.0, 0.4) clipped to
    [0.2, 1.8]; a new random heading when a wall stops the agent. A share ``cross_prob`` of the
    episodes are deliberate crossings: head for the door on the agent's side, go through it and
    carry on into the other room (so door transitions are well covered). Deterministic given the
    seed and the sequence of observations. With ``cross_every`` = N > 0 the crossing draw is repeated
    every N steps, so one long episode visits both rooms several times (the same-episode goals that
    `moejepa-train goal` learns from). With ``push_steps`` = N > 0 a blocked walk pushes on for up
    to N steps, each at a new angle within one radian, before it turns: more contact with walls
    and door frames in the data. With ``stay_in_room`` (needs ``cross_prob`` = 0) a step that would
    carry the agent past the wall's centre line is mirrored back, so no episode ever links the two
    rooms (PLDM's no-crossing ablation; without it a walk still wanders through the door by chance).
    Usable as ``policy.act(obs, info)`` or ``policy(obs, info)``;
    a new episode is detected from ``info["step"] == 0``.
    """

    def __init__(
        self,
        seed: int | None = None,
        step_mean: float = 1.0,
        step_std: float = 0.4,
        step_min: float = 0.2,
        step_max: float = 1.8,
        angle_std: float = 0.15,
        cross_prob: float = 0.3,
        cross_every: int = 0,
        push_steps: int = 0,
        stay_in_room: bool = False,
    ):
        if not (0.0 < step_min <= step_max <= MAX_ACTION):
            raise ValueError(
                f"RandomWalkPolicy: need 0 < step_min <= step_max <= {MAX_ACTION}, got {step_min}, {step_max}"
            )
        if not (0.0 <= cross_prob <= 1.0):
            raise ValueError(f"RandomWalkPolicy: cross_prob={cross_prob} outside [0, 1]")
        for name, v in (("cross_every", cross_every), ("push_steps", push_steps)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"RandomWalkPolicy: {name}={v!r} must be an integer >= 0")
        if not isinstance(stay_in_room, bool):
            raise ValueError(f"RandomWalkPolicy: stay_in_room={stay_in_room!r} must be true or false")
        if stay_in_room and cross_prob > 0:
            raise ValueError(
                f"RandomWalkPolicy: stay_in_room needs cross_prob=0 (got {cross_prob}): "
                "deliberate crossings would be mirrored back at the door"
            )
        self.push_steps, self._pushes, self.stay_in_room = push_steps, 0, stay_in_room
        self.rng = np.random.default_rng(seed)
        self.step_mean, self.step_std = step_mean, step_std
        self.step_min, self.step_max = step_min, step_max
        self.angle_std, self.cross_prob, self.cross_every = angle_std, cross_prob, cross_every
        self.heading = 0.0
        self.waypoints: list[tuple[float, float]] = []
        self._last_pos: tuple[float, float] | None = None
        self._last_len = 0.0

    def reset(self, info: dict[str, Any]) -> None:
        """Start an episode: draw a heading and whether this one is a deliberate crossing."""
        x, y = (float(v) for v in info["pos"])
        wx, dy = float(info["wall_x"]), float(info["door_y"])
        self.heading = float(self.rng.uniform(-math.pi, math.pi))
        self.waypoints = []
        self._draw_crossing(x, wx, dy)
        self._last_pos = None

    def _draw_crossing(self, x: float, wx: float, dy: float) -> None:
        """With probability cross_prob, head through the door into the other room."""
        if self.rng.random() < self.cross_prob:
            side = room_of(x, wx) or 1
            off = WALL_HALF + 4.0
            jitter = float(self.rng.uniform(-2.0, 2.0))
            # first the door's near side (the agent's room), then its far side
            self.waypoints = [(wx + side * off, dy + jitter), (wx - side * off, dy + jitter)]

    def act(self, obs, info: dict[str, Any]) -> np.ndarray:
        if int(info.get("step", 0)) == 0 or self._last_pos is None:
            self.reset(info)
        x, y = (float(v) for v in info["pos"])
        step = int(info.get("step", 0))
        if self.cross_every and step > 0 and step % self.cross_every == 0 and not self.waypoints:
            self._draw_crossing(x, float(info["wall_x"]), float(info["door_y"]))
        if self._last_pos is not None and not self.waypoints:
            moved = math.hypot(x - self._last_pos[0], y - self._last_pos[1])
            if moved >= 0.5 * self._last_len:
                self._pushes = 0
            elif self._pushes < self.push_steps:  # blocked: push on at another angle (contact data)
                self._pushes += 1
                self.heading += float(self.rng.uniform(-1.0, 1.0))
            else:  # blocked by a wall: turn somewhere new
                self._pushes = 0
                self.heading = float(self.rng.uniform(-math.pi, math.pi))
        length = float(np.clip(self.rng.normal(self.step_mean, self.step_std), self.step_min, self.step_max))
        while self.waypoints and math.hypot(self.waypoints[0][0] - x, self.waypoints[0][1] - y) < length:
            self.waypoints.pop(0)
        noise = float(self.rng.normal(0.0, self.angle_std))
        if self.waypoints:
            wx_, wy_ = self.waypoints[0]
            self.heading = math.atan2(wy_ - y, wx_ - x) + noise
        else:
            self.heading += noise
        if self.stay_in_room:
            wx = float(info["wall_x"])
            side = room_of(x, wx)
            if side and room_of(x + length * math.cos(self.heading), wx) != side:
                self.heading = math.pi - self.heading  # mirror the step back into this room
        self._last_pos, self._last_len = (x, y), length
        return np.array([length * math.cos(self.heading), length * math.sin(self.heading)], np.float32)

    __call__ = act
