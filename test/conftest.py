"""Suite-wide environment hygiene: set once, before any test imports rclpy or MuJoCo."""

import os
import pathlib
import random

import pytest

_ROOT = pathlib.Path(__file__).resolve().parents[1]
_LOG = _ROOT / "build" / "ros_log"
_LOG.mkdir(parents=True, exist_ok=True)

os.environ.setdefault("ROS_LOG_DIR", str(_LOG))
# A domain unique to this run, so parallel runs (or a robot on the LAN) never cross-talk.
os.environ.setdefault("ROS_DOMAIN_ID", str(random.Random(os.getpid()).randint(1, 100)))
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])
os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture
def one_thread():
    """One torch intra-op thread for the test (2 shared cores: OpenMP sync costs more than it saves on tiny
    ops, and runs compared with each other must share the thread count); restored afterwards. A file
    uses it for every test with `pytestmark = pytest.mark.usefixtures("one_thread")`."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
