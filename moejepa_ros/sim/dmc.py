"""DeepMind Control Suite tasks from pixels (64x64 RGB) behind the gymnasium API.

Action repeat per task follows PlaNet (Hafner et al. 2019, "Learning Latent Dynamics for
Planning from Pixels", sec. 5): cartpole 8, reacher 4, cheetah 4, finger 2, cup 4, walker 2;
other domains get 2 (Dreamer, Hafner et al. 2020). Camera id 2 for quadruped, else 0 (the
convention of the Dreamer/PlaNet wrappers). The reward of one env step is the sum of
dm_control's rewards over the repeat, so it equals what a raw dm_control env returns for the
same actions.

Rendering is offscreen on the CPU. ``MUJOCO_GL`` is set (if unset) to ``egl`` when libEGL can
be loaded, else ``osmesa``, before dm_control is imported. One persistent camera renders every
frame (dm_control's ``physics.render`` makes a new one per call). ``render`` picks the pixels:
``"fast"`` (the default) turns shadows, reflections and skybox off, MSAA off
(``vis.quality.offsamples = 0``) and sizes the offscreen buffer to the frame: ~530-910 against
40-70 frames/s on 2 CPU cores (MACHINE-NOTES), but the frames differ from dm_control's.
``"suite"`` keeps dm_control's own settings, so its frames equal ``physics.render(size, size,
camera_id)`` pixel for pixel: the pixels PlaNet, DrQ and TD-MPC trained on (their wrappers call
it), for a protocol like theirs. Train and deploy with the same mode; see ``bench.micro.bench_sim``.

``info["state"]`` is the flattened dm_control observation (float32, in the observation
dict's order); ``info["physics_state"]`` is MuJoCo's full state (``physics.get_state()``).
"""

from __future__ import annotations

import ctypes.util
import os
from typing import Any

import gymnasium as gym
import numpy as np

from .errors import SimUnavailableError

# PlaNet's action repeats (Hafner et al. 2019); Dreamer used 2 everywhere.
ACTION_REPEAT = {"cartpole": 8, "reacher": 4, "cheetah": 4, "finger": 2, "ball_in_cup": 4, "walker": 2}
DEFAULT_ACTION_REPEAT = 2
# Literature short names -> (dm_control domain, task).
ALIASES = {"cup_catch": ("ball_in_cup", "catch")}
# Render flags turned off for speed (lower-case mjtRndFlag names, as dm_control accepts them).
FAST_RENDER_FLAGS = {"shadow": False, "reflection": False, "skybox": False}
# `render=`: flags overridden per mode ("suite" = dm_control's own settings, the literature's pixels).
RENDER_MODES = {"fast": FAST_RENDER_FLAGS, "suite": {}}
DEFAULT_RENDER = "fast"
DEFAULT_SIZE = 64  # frame side in pixels (PlaNet's; DrQ and TD-MPC use 84)


def ensure_gl_backend() -> str:
    """Pick MuJoCo's offscreen GL backend (egl, else osmesa) unless ``MUJOCO_GL`` is already set."""
    gl = os.environ.get("MUJOCO_GL")
    if not gl:
        if ctypes.util.find_library("EGL"):
            gl = "egl"
        elif ctypes.util.find_library("OSMesa"):
            gl = "osmesa"
        else:
            raise SimUnavailableError(
                "dmc: no offscreen OpenGL found (neither libEGL nor libOSMesa). Install the Debian "
                "packages libegl1 libegl-mesa0 libgl1-mesa-dri (or libosmesa6), or set MUJOCO_GL."
            )
        os.environ["MUJOCO_GL"] = gl
    if gl in ("egl", "osmesa"):
        os.environ.setdefault("PYOPENGL_PLATFORM", gl)
    return gl


def _suite():
    ensure_gl_backend()
    try:
        from dm_control import suite
    except ImportError as e:  # pragma: no cover - depends on the install
        raise SimUnavailableError(
            f"dmc: dm_control/mujoco not importable ({e}); install the pinned "
            "'mujoco==3.17.0' and 'dm_control==1.0.50' (see requirements.txt)"
        ) from e
    return suite


def resolve_task(name: str) -> tuple[str, str]:
    """``'cartpole_swingup'`` -> ``('cartpole', 'swingup')``; raises listing the known tasks."""
    if name in ALIASES:
        return ALIASES[name]
    suite = _suite()
    known = sorted(f"{d}_{t}" for d, t in suite.ALL_TASKS)
    for domain in sorted({d for d, _ in suite.ALL_TASKS}, key=len, reverse=True):
        if name.startswith(domain + "_"):
            task = name[len(domain) + 1 :]
            if (domain, task) in suite.ALL_TASKS:
                return domain, task
    raise ValueError(f"dmc: unknown task {name!r}; known: {', '.join(sorted(ALIASES) + known)}")


def flatten_observation(obs) -> np.ndarray:
    """dm_control's observation dict -> one float32 vector (dict order)."""
    return np.concatenate([np.asarray(v, np.float64).reshape(-1) for v in obs.values()]).astype(np.float32)


def trained_env_kwargs(meta: dict) -> dict:
    """The env keyword arguments a checkpoint's agent learnt on: the online loop keeps them
    (`training.env_kwargs`); a `fit` or rounds-loop checkpoint keeps its config, whose `collect.env_kwargs`
    and `mbrl.env_kwargs` they were."""
    training = dict(meta.get("training") or {})
    if "env_kwargs" in training:
        return dict(training["env_kwargs"] or {})
    config = dict(training.get("config") or {})
    collect, mbrl = (dict((config.get(k) or {}).get("env_kwargs") or {}) for k in ("collect", "mbrl"))
    return {**collect, **mbrl}


def check_same_pixels(trained_kwargs: dict, env_kwargs: dict, who: str) -> None:
    """An agent plays on the pixels it learnt from: raise if `env_kwargs` renders otherwise than `trained_kwargs`
    (`trained_env_kwargs` of its checkpoint), or at another frame size."""
    for key, default, same in (("render", DEFAULT_RENDER, str), ("size", DEFAULT_SIZE, lambda v: int(float(v)))):
        trained, now = (dict(k or {}).get(key, default) for k in (trained_kwargs, env_kwargs))
        if same(trained) != same(now):
            raise ValueError(
                f"{who}: the agent learnt on {key}={trained!r} pixels but this env renders {key}={now!r}; "
                f"set collect.env_kwargs.{key}={trained}"
            )


def apply_fast_render_settings(physics, size: int) -> None:
    """Speed settings on the model; must run before the first render (buffer size is fixed then)."""
    vis = physics.model.vis
    vis.global_.offwidth = size
    vis.global_.offheight = size
    vis.quality.offsamples = 0
    vis.quality.shadowsize = 0


class DMCEnv(gym.Env):
    """One dm_control task from pixels; see the module docstring for repeats, camera, settings."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 30}

    def __init__(
        self,
        task: str = "cartpole_swingup",
        action_repeat: int | None = None,
        size: int = DEFAULT_SIZE,
        camera_id: int | None = None,
        seed: int | None = None,
        render_mode: str | None = "rgb_array",
        render: str = DEFAULT_RENDER,
    ):
        self.domain, self.task_name = resolve_task(task)
        self.action_repeat = int(action_repeat or ACTION_REPEAT.get(self.domain, DEFAULT_ACTION_REPEAT))
        if self.action_repeat < 1:
            raise ValueError(f"dmc: action_repeat={action_repeat} must be >= 1")
        if not (8 <= int(size) <= 1024):
            raise ValueError(f"dmc: size={size} outside [8, 1024]")
        self.size = int(size)
        if render not in RENDER_MODES:
            raise ValueError(f"dmc: render={render!r} unknown; use one of {', '.join(RENDER_MODES)}")
        self.render_flags = dict(RENDER_MODES[render])
        self.camera_id = int(camera_id if camera_id is not None else (2 if self.domain == "quadruped" else 0))
        self.render_mode = render_mode
        suite = _suite()
        self._env = suite.load(self.domain, self.task_name, task_kwargs={"random": seed})
        self.physics = self._env.physics
        if render == "fast":
            apply_fast_render_settings(self.physics, self.size)
        else:  # dm_control's settings; the buffer must hold the frame (its default is 640 x 480)
            vis = self.physics.model.vis.global_
            vis.offwidth, vis.offheight = max(vis.offwidth, self.size), max(vis.offheight, self.size)
        from dm_control.mujoco import engine

        self._camera = engine.Camera(self.physics, self.size, self.size, self.camera_id)
        spec = self._env.action_spec()
        self._low = np.asarray(spec.minimum, np.float32)
        self._high = np.asarray(spec.maximum, np.float32)
        self.action_space = gym.spaces.Box(self._low, self._high, spec.shape, np.float32)
        self.observation_space = gym.spaces.Box(0, 255, (self.size, self.size, 3), np.uint8)
        self._time_step = None

    def render(self) -> np.ndarray:
        """The current camera frame, RGB uint8 [size, size, 3]."""
        return self._camera.render(render_flag_overrides=dict(self.render_flags)).copy()

    def _info(self, ts) -> dict[str, Any]:
        return {
            "state": flatten_observation(ts.observation),
            "physics_state": np.asarray(self.physics.get_state(), np.float32),
            "discount": float(ts.discount) if ts.discount is not None else 1.0,
        }

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        if seed is not None:
            self._env.task.random.seed(seed)
        ts = self._env.reset()
        self._time_step = ts
        return self.render(), self._info(ts)

    def step(self, action):
        if self._time_step is None:
            raise RuntimeError("dmc: call reset() before step()")
        a = np.asarray(action, np.float64).reshape(-1)
        if a.shape != self._low.shape:
            raise ValueError(
                f"dmc[{self.domain}_{self.task_name}]: action must have shape {self._low.shape}, got {np.shape(action)}"
            )
        if not np.all(np.isfinite(a)):
            raise ValueError(f"dmc: action must be finite, got {a.tolist()}")
        a = np.clip(a, self._low, self._high)
        reward, ts = 0.0, self._time_step
        for _ in range(self.action_repeat):
            ts = self._env.step(a)
            reward += ts.reward or 0.0
            if ts.last():
                break
        self._time_step = ts
        terminated = bool(ts.last() and ts.discount == 0.0)
        truncated = bool(ts.last() and not terminated)
        return self.render(), float(reward), terminated, truncated, self._info(ts)

    def set_state(self, physics_state) -> np.ndarray:
        """Set MuJoCo's full state (as in ``info["physics_state"]``) and return the new frame."""
        s = np.asarray(physics_state, np.float64).reshape(-1)
        with self.physics.reset_context():
            self.physics.set_state(s)
        return self.render()

    def close(self):
        self._env.close()
