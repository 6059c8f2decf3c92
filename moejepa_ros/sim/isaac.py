"""Isaac Sim adapter behind the same gymnasium interface (optional; not runnable on CPU machines).

Opens a USD scene in a headless ``SimulationApp``, renders one camera prim to RGB uint8
[size, size, 3] and drives one articulation with joint efforts, position or velocity targets (actions in [-1, 1]
times ``action_scale``). ``info["state"]`` = joint positions + velocities; the reward is
``reward_fn(state)`` (0 without one: a USD scene carries no task).
Written against the Isaac Sim 5.x Python API (Python 3.11): ``isaacsim.SimulationApp``,
``isaacsim.core.api.World``, ``isaacsim.core.prims.SingleArticulation``,
``isaacsim.sensors.camera.Camera``. Untested here (no ``isaacsim``, no RTX GPU): only the
availability check is exercised by the test suite.

When ``isaacsim`` or an RTX-class NVIDIA GPU is missing, construction raises one
:class:`SimUnavailableError` that lists everything missing and how to get it.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from .errors import SimUnavailableError

# Isaac Sim renders with RTX ray tracing: GPUs without RT cores are not supported.
NO_RT_CORES = ("A100", "H100", "H200", "H800", "A800", "V100", "P100", "B100", "B200", "GB200")
CONTROL_MODES = ("effort", "position", "velocity")


def _gpu_names() -> list[str]:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        out = subprocess.run(
            [smi, "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.stdout.splitlines() if line.strip()]


def missing_requirements() -> list[str]:
    """What stops Isaac Sim from running here (empty when everything is in place)."""
    missing = []
    if importlib.util.find_spec("isaacsim") is None:
        py = f"{sys.version_info.major}.{sys.version_info.minor}"
        missing.append(
            f"the 'isaacsim' Python package is not installed (this is Python {py}; Isaac Sim 5.x needs "
            "3.11, 6.x needs 3.12): install it with pip from NVIDIA's own package index as described "
            "in Isaac Sim's 'Python environment installation' guide, e.g. "
            "pip install 'isaacsim[all,extscache]==5.*' with NVIDIA's extra index URL"
        )
    gpus = _gpu_names()
    if not gpus:
        missing.append(
            "no NVIDIA GPU found (nvidia-smi missing or lists none): Isaac Sim needs an "
            "RTX-class GPU (GeForce/RTX workstation, L4, L40, A10, ...) with a current driver"
        )
    else:
        usable = [g for g in gpus if not any(tag in g.upper() for tag in NO_RT_CORES)]
        if not usable:
            missing.append(
                f"GPU(s) {gpus} have no RT cores, which Isaac Sim's renderer needs: "
                "use an RTX-class GPU (GeForce/RTX workstation, L4, L40, A10, ...)"
            )
    return missing


def check_available() -> None:
    """Raise one :class:`SimUnavailableError` listing everything missing for Isaac Sim."""
    missing = missing_requirements()
    if missing:
        raise SimUnavailableError("isaac: Isaac Sim cannot run here:\n  - " + "\n  - ".join(missing))


class IsaacEnv(gym.Env):
    """A USD scene with one articulation and one camera, stepped headless by Isaac Sim."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 30}
    _app = None  # one SimulationApp per process (Kit allows only one)

    def __init__(
        self,
        usd_path: str,
        robot_prim: str = "/World/robot",
        camera_prim: str = "/World/camera",
        size: int = 64,
        control: str = "effort",
        action_scale: float = 1.0,
        physics_dt: float = 1.0 / 60.0,
        action_repeat: int = 2,
        max_episode_steps: int = 500,
        reward_fn: Callable[[np.ndarray], float] | None = None,
        render_mode: str | None = "rgb_array",
    ):
        check_available()
        self.reward_fn = reward_fn
        if not os.path.isfile(usd_path):
            raise FileNotFoundError(f"isaac: USD scene {usd_path!r} does not exist")
        if control not in CONTROL_MODES:
            raise ValueError(f"isaac: control={control!r}, expected one of {CONTROL_MODES}")
        if action_repeat < 1 or max_episode_steps < 1 or physics_dt <= 0:
            raise ValueError(
                f"isaac: need action_repeat >= 1, max_episode_steps >= 1, physics_dt > 0; "
                f"got {action_repeat}, {max_episode_steps}, {physics_dt}"
            )
        self.usd_path, self.size, self.control = usd_path, int(size), control
        self.action_scale, self.action_repeat = float(action_scale), int(action_repeat)
        self.max_episode_steps, self.render_mode = int(max_episode_steps), render_mode
        self._start_app()
        # Omniverse modules exist only after SimulationApp has started.
        from isaacsim.core.api import World
        from isaacsim.core.prims import SingleArticulation
        from isaacsim.core.utils.stage import open_stage
        from isaacsim.core.utils.types import ArticulationAction
        from isaacsim.sensors.camera import Camera

        self._ArticulationAction = ArticulationAction
        if not open_stage(usd_path):
            raise RuntimeError(f"isaac: could not open USD stage {usd_path!r}")
        self.world = World(stage_units_in_meters=1.0, physics_dt=physics_dt, rendering_dt=physics_dt)
        self.robot = self.world.scene.add(SingleArticulation(prim_path=robot_prim, name="robot"))
        self.camera = Camera(prim_path=camera_prim, resolution=(self.size, self.size))
        self.world.reset()
        self.camera.initialize()
        n = self.robot.num_dof
        self.action_space = gym.spaces.Box(-1.0, 1.0, (n,), np.float32)
        self.observation_space = gym.spaces.Box(0, 255, (self.size, self.size, 3), np.uint8)
        self.steps = 0

    @classmethod
    def _start_app(cls):
        if cls._app is None:
            from isaacsim import SimulationApp

            cls._app = SimulationApp({"headless": True, "width": 256, "height": 256})
        return cls._app

    def render(self) -> np.ndarray:
        rgba = self.camera.get_rgba()
        if rgba is None or np.size(rgba) == 0:  # the first frames after a reset can be empty
            return np.zeros((self.size, self.size, 3), np.uint8)
        return np.ascontiguousarray(np.asarray(rgba)[..., :3], dtype=np.uint8)

    def _state(self) -> np.ndarray:
        return np.concatenate([self.robot.get_joint_positions(), self.robot.get_joint_velocities()]).astype(np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.world.reset()
        self.world.step(render=True)  # fill the camera buffer
        self.steps = 0
        return self.render(), {"state": self._state()}

    def step(self, action):
        a = np.asarray(action, np.float32).reshape(-1)
        if a.shape != self.action_space.shape or not np.all(np.isfinite(a)):
            raise ValueError(f"isaac: action must be {self.action_space.shape} finite floats, got {a.tolist()}")
        a = np.clip(a, -1.0, 1.0) * self.action_scale
        kw = {"effort": "joint_efforts", "position": "joint_positions", "velocity": "joint_velocities"}[self.control]
        self.robot.apply_action(self._ArticulationAction(**{kw: a}))
        for i in range(self.action_repeat):
            self.world.step(render=(i == self.action_repeat - 1))
        self.steps += 1
        truncated = self.steps >= self.max_episode_steps
        state = self._state()
        reward = float(self.reward_fn(state)) if self.reward_fn is not None else 0.0
        return self.render(), reward, False, truncated, {"state": state}

    def close(self):
        if IsaacEnv._app is not None:
            IsaacEnv._app.close()
            IsaacEnv._app = None
