"""Two-Rooms on PLDM's own DotWall rules (Sobal et al. 2025), for a like-for-like comparison.

Our ``two_rooms`` env is a harder variant (random layout per episode, 64x64 RGB, exact stop at
walls). This module re-implements the rules PLDM evaluates on; every fact below was read from
the paper ("Learning from Reward-Free Offline Data: A Case for Planning with Latent Dynamics
Models") and its public code (repository vladisai/PLDM); the code here is our own.

Facts and where they come from (paths in their repository):

- Fixed layout: wall at x = 32, door centred at y = 10 (``fix_wall_location: 32``,
  ``fix_door_location: 10`` in ``pldm/configs/wall/icml/*.yaml``). The wall is 3 px wide
  (``wall_width: 3``: columns 31..33) and the door is 9 px (``door_space: 4``: rows 6..14).
- Image: 65x65 (``img_size: 65`` in the same configs), two channels (dot, walls), uint8 0..255
  (``_render_dot_and_wall`` in ``pldm_envs/wall/wall.py``). The border is a 1-px line at index
  ``border_wall_loc - 1`` = 4 and ``img_size - border_wall_loc`` = 60 on both axes
  (``border_wall_loc: 5``; ``_render_walls``). The dot is ``exp(-d^2 / (2 * 1.3^2)) * 255``
  truncated to uint8 over pixel centres (x = column, y = row; ``dot_std: 1.3``, ``_render_dot``).
- Dynamics: ``next = pos + action``; where the move crosses a wall line, the dot is put at the
  crossing point plus noise N(0, 0.5^2) per coordinate, the component normal to the wall made to
  point back into the dot's side, then clamped into its room with a 0.3-px margin. The door's
  top and bottom edges (y = 14 and y = 6 for x in [31, 33]) bounce the same way, without the
  clamp. Collision lines: the border at 4 and 60; the wall faces at x = 31 and x = 33, which the
  dot crosses only within y in [6, 14]. (``check_wall_intersect`` in
  ``pldm_envs/wall/data/wall_utils.py``.) Deviation: for a move with no x (or y) component their
  line fit divides by zero; we use the segment's own parameterisation.
- Step scale: their env does not bound actions; their planner bounds the step norm at 2.45
  (``level1.max_step: 2.45`` in the icml configs, applied by ``normalize_actions`` in
  ``pldm/planning/utils.py``). Here the env clips the norm at ``MAX_STEP`` = 2.45 so every
  controller gets the same bound.
- Start/goal generator: ``level: medium``, the level of the ``wall_planning`` evaluation in the icml
  configs (100 envs, seed 42, built by ``pldm_envs/wall/evaluation/create_envs.py``); we take it to
  be the one behind the reported 97.8%, a figure not re-read from the paper's table here.
  ``_generate_start_and_target`` in ``pldm_envs/wall/wall.py``: with margin 2 * 1.3 = 2.6 px,
  start x ~ U[6.6, 28.4] (left room), goal x ~ U[35.6, 57.4] (right room), both y ~ U[6.6, 57.4]
  independently; with probability 1/2 the two x are swapped. (Theirs draws from Python's global
  ``random``; ours from the env's seeded generator.)
- Success: the mean over (x, y) of the squared error to the goal is below 1, i.e. squared
  distance < 2 px^2, at any step of the episode (``determine_terminations`` and
  ``error_threshold: 1`` in ``pldm/planning/wall/``). Episodes are 200 steps (the
  ``medium: n_steps: 200`` evaluation setting; ``MPCEvaluator`` in ``pldm/planning/mpc.py``
  steps each env 200 times).
- Data walk: PLDM's random-walk parameters (``action_angle_noise: 0.2``, step length
  N(1.0, 0.4) clipped to [0.2, 1.8], ``cross_wall_rate: 0.08`` in the icml configs) on our own
  :class:`~moejepa_ros.sim.two_rooms.RandomWalkPolicy` (see :func:`random_walk`); their walk's
  exact structure is not reproduced.

Deviation: their bounce noise comes from torch's global generator; ours, like the start and goal,
from the env's generator seeded by ``reset(seed=...)``, so episodes are reproducible.

Checked against their code run locally (not shipped): the walls channel is identical; the dot differs by
at most 1 grey level (their float32 vs our float64 before truncation) in 0.1% of 2,000 frames; with the
noise set to zero, ``bounce`` lands exactly where ``check_wall_intersect`` does on 190k random moves
(10k of them collisions); start/goal ranges agree.

Observation: our pipeline takes RGB frames, so the two channels are written into an RGB frame
at full 65x65 resolution: R = dot, G = walls, B = 0 (no information lost or added; the model's
``preprocess`` resizes it like any camera frame, e.g. 65 -> 64 by area averaging).
``info["state"]`` is float32 ``[x, y]``.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import gymnasium as gym
import numpy as np

from .two_rooms import RandomWalkPolicy

SIZE = 65
BORDER = 4  # the border lines' index (border_wall_loc - 1); the far one is SIZE - 5 = 60
BORDER_FAR = SIZE - BORDER - 1  # 60
WALL_X = 32
DOOR_Y = 10
WALL_HALF = 1  # wall columns 31..33
DOOR_HALF = 4  # door rows 6..14
DOT_STD = 1.3
MAX_STEP = 2.45
BOUNCE_STD = 0.5
BOUNCE_MARGIN = 0.3
SUCCESS_MSE = 1.0
GOAL_STEPS = 200
DATA_STEPS = 100
MARGIN = 2 * DOT_STD  # start/goal margin from walls (2.6 px)
XY_LO = BORDER + MARGIN  # 6.6
XY_HI = SIZE - 1 - XY_LO  # 57.4
LEFT_X = (XY_LO, WALL_X - WALL_HALF - MARGIN)  # (6.6, 28.4)
RIGHT_X = (WALL_X + WALL_HALF + MARGIN, XY_HI)  # (35.6, 57.4)


@functools.lru_cache(maxsize=1)
def walls() -> np.ndarray:
    """uint8 [65, 65] walls channel (255 on wall pixels); cached and read-only."""
    img = np.zeros((SIZE, SIZE), np.uint8)
    img[:, WALL_X - WALL_HALF : WALL_X + WALL_HALF + 1] = 255
    img[DOOR_Y - DOOR_HALF : DOOR_Y + DOOR_HALF + 1, WALL_X - WALL_HALF : WALL_X + WALL_HALF + 1] = 0
    img[BORDER, :] = img[BORDER_FAR, :] = img[:, BORDER] = img[:, BORDER_FAR] = 255
    img.flags.writeable = False
    return img


_GRID = np.arange(SIZE, dtype=np.float64)


def render_frame(pos) -> np.ndarray:
    """RGB uint8 [65, 65, 3]: R = the dot at ``pos`` (x, y), G = walls, B = 0."""
    gx = np.exp(-((_GRID - float(pos[0])) ** 2) / (2 * DOT_STD * DOT_STD))
    gy = np.exp(-((_GRID - float(pos[1])) ** 2) / (2 * DOT_STD * DOT_STD))
    img = np.zeros((SIZE, SIZE, 3), np.uint8)
    img[:, :, 0] = np.clip(np.outer(gy, gx) * 255.0, 0, 255).astype(np.uint8)  # truncation, as theirs
    img[:, :, 1] = walls()
    return img


def _sign(v: float) -> int:
    return int(v > 0) - int(v < 0)


def _cross(p, q, axis: int, line: float):
    """The other coordinate where segment p -> q meets ``coord[axis] == line``, or None."""
    if _sign(p[axis] - line) * _sign(q[axis] - line) > 0:
        return None
    d = q[axis] - p[axis]
    t = 0.0 if d == 0.0 else (line - p[axis]) / d
    return p[1 - axis] + t * (q[1 - axis] - p[1 - axis])


def bounce(p, q, rng: np.random.Generator) -> tuple[float, float]:
    """Where a move from ``p`` to ``q`` ends under PLDM's collision rule (module docstring)."""
    wl, wr = WALL_X - WALL_HALF, WALL_X + WALL_HALF
    door_lo, door_hi = DOOR_Y - DOOR_HALF, DOOR_Y + DOOR_HALF
    # the door's horizontal edges: bounce back, no clamp
    for edge, up in ((door_hi, True), (door_lo, False)):
        if (q[1] > edge > p[1]) if up else (q[1] < edge < p[1]):
            x = _cross(p, q, 1, edge)
            if wl <= x <= wr:
                n = rng.normal(0.0, BOUNCE_STD, 2)
                n[1] = -abs(n[1]) if up else abs(n[1])
                return float(x + n[0]), float(edge + n[1])
    # the room's vertical lines (the wall face has the door in it) and the border rows
    if WALL_X > p[0]:
        (lo_x, lo_door), (hi_x, hi_door) = (BORDER, False), (wl, True)
    else:
        (lo_x, lo_door), (hi_x, hi_door) = (wr, True), (BORDER_FAR, False)
    hits = []
    for line, door in ((lo_x, lo_door), (hi_x, hi_door)):
        y = _cross(p, q, 0, line)
        if y is not None and not (door and door_lo <= y <= door_hi):
            hits.append((np.array([line, y]), 0))
            break
    for line in (BORDER, BORDER_FAR):
        x = _cross(p, q, 1, line)
        if x is not None:
            hits.append((np.array([x, line]), 1))
            break
    if not hits:
        return float(q[0]), float(q[1])
    noises = []
    for hit, axis in hits:
        n = rng.normal(0.0, BOUNCE_STD, 2)
        n[axis] = abs(n[axis]) * _sign(p[axis] - hit[axis])
        noises.append(n)
    k = 0 if len(hits) == 1 else int(np.hypot(*(p - hits[1][0])) <= np.hypot(*(p - hits[0][0])))
    r = hits[k][0] + noises[k]
    for i, (lo, hi) in enumerate(((lo_x, hi_x), (BORDER, BORDER_FAR))):
        r[i] = min(max(r[i], lo), hi)
        if r[i] <= lo:
            r[i] = lo + BOUNCE_MARGIN
        if r[i] >= hi:
            r[i] = hi - BOUNCE_MARGIN
    return float(r[0]), float(r[1])


def clip_step(action) -> tuple[float, float]:
    """Validate an action (2 finite numbers) and clip its Euclidean norm to ``MAX_STEP``."""
    a = np.asarray(action, dtype=np.float64).reshape(-1)
    if a.shape != (2,) or not np.all(np.isfinite(a)):
        raise ValueError(f"two_rooms_pldm: action must be 2 finite numbers, got {np.asarray(action).tolist()}")
    n = math.hypot(a[0], a[1])
    if n > MAX_STEP:
        a = a * (MAX_STEP / n)
    return float(a[0]), float(a[1])


def random_walk(seed: int | None = None, **overrides: Any) -> RandomWalkPolicy:
    """Our data walk with PLDM's random-walk parameters (module docstring); ``overrides`` win."""
    kw: dict[str, Any] = dict(step_mean=1.0, step_std=0.4, step_min=0.2, step_max=1.8, angle_std=0.2, cross_prob=0.08)
    kw.update(overrides)
    return RandomWalkPolicy(seed=seed, **kw)


class TwoRoomsPLDMEnv(gym.Env):
    """Gymnasium env with PLDM's DotWall rules; ``mode`` "goal" (evaluation) or "data" (no goal)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 30}

    def __init__(self, mode: str = "goal", max_episode_steps: int | None = None, render_mode: str | None = "rgb_array"):
        if mode not in ("goal", "data"):
            raise ValueError(f"two_rooms_pldm: mode={mode!r}, expected 'goal' or 'data'")
        self.mode = mode
        self.max_episode_steps = int(max_episode_steps or (GOAL_STEPS if mode == "goal" else DATA_STEPS))
        if self.max_episode_steps < 1:
            raise ValueError(f"two_rooms_pldm: max_episode_steps={max_episode_steps} must be >= 1")
        self.render_mode = render_mode
        self.observation_space = gym.spaces.Box(0, 255, (SIZE, SIZE, 3), np.uint8)
        self.action_space = gym.spaces.Box(-MAX_STEP, MAX_STEP, (2,), np.float32)
        self.wall_x, self.door_y = WALL_X, DOOR_Y
        self.x = self.y = float(XY_LO)
        self.goal: tuple[float, float] | None = None
        self.goal_image: np.ndarray | None = None
        self.steps = 0

    def _check_point(self, name: str, p) -> tuple[float, float]:
        a = np.asarray(p, dtype=np.float64).reshape(-1)
        if a.shape != (2,) or not np.all(np.isfinite(a)):
            raise ValueError(f"two_rooms_pldm: {name} must be 2 finite numbers, got {p!r}")
        inside = BORDER < a[0] < BORDER_FAR and BORDER < a[1] < BORDER_FAR
        in_wall = WALL_X - WALL_HALF <= a[0] <= WALL_X + WALL_HALF and abs(a[1] - DOOR_Y) > DOOR_HALF
        if not inside or in_wall:
            raise ValueError(f"two_rooms_pldm: {name}={a.tolist()} is not free space")
        return float(a[0]), float(a[1])

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """New episode; ``options`` may fix ``start`` and ``goal`` ([x, y] each)."""
        super().reset(seed=seed)
        opts = dict(options or {})
        unknown = set(opts) - {"start", "goal"}
        if unknown:
            raise ValueError(f"two_rooms_pldm: unknown reset options {sorted(unknown)}")
        r = self.np_random
        sx, gx = float(r.uniform(*LEFT_X)), float(r.uniform(*RIGHT_X))
        sy, gy = float(r.uniform(XY_LO, XY_HI)), float(r.uniform(XY_LO, XY_HI))
        if r.random() < 0.5:
            sx, gx = gx, sx
        self.x, self.y = self._check_point("start", opts["start"]) if "start" in opts else (sx, sy)
        self.goal, self.goal_image = None, None
        if "goal" in opts:
            self.goal = self._check_point("goal", opts["goal"])
        elif self.mode == "goal":
            self.goal = (gx, gy)
        if self.goal is not None:
            self.goal_image = render_frame(self.goal)
            self.goal_image.flags.writeable = False
        self.steps = 0
        return self._obs(), self._info()

    def _mse(self) -> float:
        return 0.5 * ((self.x - self.goal[0]) ** 2 + (self.y - self.goal[1]) ** 2)

    def step(self, action):
        ax, ay = clip_step(action)
        p = np.array([self.x, self.y])
        self.x, self.y = bounce(p, p + (ax, ay), self.np_random)
        self.steps += 1
        reward, terminated = 0.0, False
        if self.goal is not None:
            reward = -math.sqrt(2.0 * self._mse())
            terminated = self._mse() < SUCCESS_MSE
        truncated = (not terminated) and self.steps >= self.max_episode_steps
        return self._obs(), reward, terminated, truncated, self._info()

    def render(self):
        return self._obs()

    def set_state(self, state):
        """Place the dot at ``state`` = [x, y]. Returns (obs, info)."""
        self.x, self.y = self._check_point("state", state)
        return self._obs(), self._info()

    def get_state(self) -> np.ndarray:
        return np.array([self.x, self.y], np.float32)

    def render_state(self, pos) -> np.ndarray:
        """Frame with the dot at ``pos`` (e.g. a goal image)."""
        return render_frame(pos)

    def _obs(self) -> np.ndarray:
        return render_frame((self.x, self.y))

    def _info(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "state": self.get_state(),
            "pos": self.get_state(),
            "wall_x": WALL_X,
            "door_y": DOOR_Y,
            "step": self.steps,
        }
        if self.goal is not None:
            info["goal_state"] = np.array(self.goal, np.float32)
            info["goal_image"] = self.goal_image
            info["distance"] = math.sqrt(2.0 * self._mse())
            info["success"] = self._mse() < SUCCESS_MSE
        return info
