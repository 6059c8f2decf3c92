"""ament_python / setuptools build for moejepa_ros (works with colcon and with pip)."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "moejepa_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*", "training", "training.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.xml")),
        (f"share/{PACKAGE}/config/train", glob("config/train/*.yaml")),
        (f"share/{PACKAGE}/config/recipes", glob("config/recipes/*.yaml")),
    ],
    package_data={PACKAGE: ["py.typed"]},
    python_requires=">=3.10",  # ROS 2 Humble's Python
    # The nodes' needs; the extras add the simulators, training, the model-free baselines and the dev tools
    # (requirements.txt lists the same for `make install`, requirements.lock pins it for CI). torch is a range
    # so a robot's own build fits (NVIDIA's Jetson wheels, a distro's python3-torch).
    install_requires=[
        "numpy>=1.26",
        "torch>=2.1,<3",
        "safetensors>=0.4",
        "opencv-python-headless>=4.10,<5",
        "pyyaml>=6",
    ],
    extras_require={
        "sim": ["gymnasium>=1.0,<2", "mujoco>=3.2", "dm_control>=1.0.20"],  # sim_node, rollouts, the demo
        "train": [
            "gymnasium>=1.0,<2",
            "rosbags>=0.11",
            "omegaconf>=2.3",
            "scipy>=1.11",
            "tensorboard>=2.16",
            "tqdm>=4.66",
            "matplotlib>=3.8",
        ],
        "baselines": ["stable-baselines3>=2.3"],  # training.baselines (PPO / SAC reference points)
        "dev": [
            "pytest>=8",
            "pytest-timeout>=2.3",
            "hypothesis>=6.100",
            "pytest-random-order>=1.1",
            "ruff>=0.17",
            "colcon-core>=0.15",
            "colcon-python-setup-py>=0.2",
            "imageio>=2.34",
        ],
    },
    zip_safe=False,  # moejepa_ros.share finds the data files from the code's own path
    maintainer="moejepa_ros maintainers",
    maintainer_email="maintainers@moejepa-ros.dev",
    description="Action-conditioned MoE JEPA world model and latent planners for ROS 2.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "planner_node = moejepa_ros.ros.planner_node:main",
            "sim_node = moejepa_ros.ros.sim_node:main",
            "moejepa-bringup = moejepa_ros.ros.bringup:main",
            "moejepa-train = training.cli:main",
        ],
    },
)
