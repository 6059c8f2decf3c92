"""The DeepMind Control reacher as a robot arm reaching a goal image (`dmc:reacher`).

The protocol of the published goal-image anchors (the reacher ``qpos_match`` task that LeWM, DINO-WM
and PLDM report): dm_control's two-link planar ``reacher`` with torque commands in [-1, 1] for
(shoulder, wrist), action repeat ``ACTION_REPEAT`` (one env step = 0.04 s), the top-down fixed
camera, the target sphere not drawn (alpha 0: the goal is an image of the arm, not the target).
Our frames are 64x64 RGB where the anchors render 224x224: the arm's links are about 2 px wide here.

Modes:

- ``mode="data"``: dm_control's random start (joint angles and a hidden target); reward 0;
  ``DATA_STEPS`` steps; pair with :class:`RandomTorques` (the anchors' random policy).
- ``mode="goal"``: a held-out random trajectory of ``TRAJECTORY_STEPS`` steps from the episode's
  seed (dm_control's random start, :class:`RandomTorques`); the episode starts at a random frame
  t of it (its joint angles and velocities) and the goal is frame t + ``GOAL_OFFSET``: its image in
  ``info["goal_image"]``, its joint angles in ``info["goal_state"]``. ``GOAL_STEPS`` steps to reach
  it; success (terminated) when every joint is within ``SUCCESS_RAD`` of the goal's angle (wrapped).
  Reward = -max joint error (rad).

``info["joints"]`` (and ``info["state"]``) are the joint angles wrapped to [-pi, pi) (the state a
probe or the evaluation reads; never model input), ``info["joint_velocity"]`` their rates (rad/s),
``info["joint_names"]`` their names, as a robot's ``/joint_states`` publishes them (`training.rollouts`
records them so).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .dmc import DMCEnv

TASK = "reacher_easy"  # easy and hard differ only in the target's size, and the target is not drawn
ACTION_REPEAT = 2
CAMERA = 0  # "fixed": top-down over the arena
JOINT_NAMES = ("shoulder", "wrist")
DATA_STEPS = 200
TRAJECTORY_STEPS = 200
GOAL_OFFSET = 25
GOAL_STEPS = 50
SUCCESS_RAD = 0.05
MODES = ("data", "goal")


def wrap(angle):
    """Angles in [-pi, pi) (scalars or arrays)."""
    return (np.asarray(angle, np.float64) + math.pi) % (2 * math.pi) - math.pi


def joint_error(a, b) -> np.ndarray:
    """|a - b| per joint, wrapped (radians)."""
    return np.abs(wrap(np.asarray(a, np.float64) - np.asarray(b, np.float64)))


class ReacherEnv(DMCEnv):
    """The reacher from pixels with the target hidden; see the module docstring for the modes."""

    joint_names = JOINT_NAMES

    def __init__(
        self,
        mode: str = "goal",
        size: int = 64,
        max_episode_steps: int | None = None,
        render_mode: str | None = "rgb_array",
    ):
        if mode not in MODES:
            raise ValueError(f"reacher: mode={mode!r}, expected one of {MODES}")
        super().__init__(TASK, action_repeat=ACTION_REPEAT, size=size, camera_id=CAMERA, render_mode=render_mode)
        self.mode = mode
        self.max_episode_steps = int(max_episode_steps or (GOAL_STEPS if mode == "goal" else DATA_STEPS))
        if self.max_episode_steps < 1:
            raise ValueError(f"reacher: max_episode_steps={max_episode_steps} must be >= 1")
        self.dt = float(self._env.control_timestep()) * self.action_repeat
        self.physics.named.model.geom_rgba["target", 3] = 0.0
        self.goal: np.ndarray | None = None
        self.goal_image: np.ndarray | None = None
        self.steps = 0

    @property
    def joints(self) -> np.ndarray:
        """The joint angles, wrapped to [-pi, pi)."""
        return wrap(self.physics.named.data.qpos[list(JOINT_NAMES)]).astype(np.float32)

    def _advance(self, action: np.ndarray) -> None:
        """One env step of physics (the action repeat), no rendering."""
        for _ in range(self.action_repeat):
            self._time_step = self._env.step(action)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if options:
            raise ValueError(f"reacher: unknown reset options {sorted(options)}")
        obs, info = super().reset(seed=seed)
        self.goal, self.goal_image, self.steps = None, None, 0
        if self.mode == "goal":
            rng = self.np_random
            start = int(rng.integers(0, TRAJECTORY_STEPS - GOAL_OFFSET + 1))
            walk = RandomTorques(seed=int(rng.integers(2**31)))
            states = []
            for t in range(start + GOAL_OFFSET + 1):
                if t in (start, start + GOAL_OFFSET):
                    states.append(np.asarray(self.physics.get_state()).copy())
                if t < start + GOAL_OFFSET:
                    self._advance(walk(None, None))
            self.goal_image = self.set_state(states[1])
            self.goal_image.flags.writeable = False
            self.goal = self.joints
            obs = self.set_state(states[0])
            info = self._info(self._time_step)
        return obs, info

    def step(self, action):
        obs, _, _, _, info = super().step(action)
        self.steps += 1
        reward, terminated = 0.0, False
        if self.goal is not None:
            reward = -float(info["distance"])
            terminated = bool(info["success"])
        truncated = (not terminated) and self.steps >= self.max_episode_steps
        return obs, reward, terminated, truncated, info

    def _info(self, ts) -> dict[str, Any]:
        info = super()._info(ts)
        q = self.joints
        info.update(
            state=q,
            joints=q,
            joint_velocity=np.asarray(self.physics.named.data.qvel[list(JOINT_NAMES)], np.float32),
            joint_names=JOINT_NAMES,
            step=self.steps,
        )
        if self.goal is not None:
            err = joint_error(q, self.goal)
            info.update(
                goal_state=self.goal,
                goal_image=self.goal_image,
                distance=float(err.max()),
                success=bool(np.all(err < SUCCESS_RAD)),
            )
        return info


class RandomTorques:
    """The data walk: torques uniform in [-1, 1] per joint at every step (the anchors' random policy)."""

    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)

    def __call__(self, obs, info) -> np.ndarray:
        return self.rng.uniform(-1.0, 1.0, len(JOINT_NAMES)).astype(np.float32)
