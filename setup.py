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
    ],
    package_data={PACKAGE: ["py.typed"]},
    # torch pinned: an open range would pull the newest (CUDA) build into a clean venv.
    install_requires=["numpy>=1.26", "torch==2.13.0", "safetensors>=0.4", "opencv-python-headless>=4.10,<5", "pyyaml"],
    zip_safe=True,
    maintainer="moejepa_ros maintainers",
    maintainer_email="maintainers@moejepa-ros.dev",
    description="Action-conditioned MoE JEPA world model and latent planners for ROS 2.",
    license="Apache-2.0",
    tests_require=["pytest"],
    entry_points={
        "console_scripts": [
            "planner_node = moejepa_ros.ros.planner_node:main",
            "sim_node = moejepa_ros.ros.sim_node:main",
            "moejepa-bringup = moejepa_ros.ros.bringup:main",
            "moejepa-train = training.cli:main",
        ],
    },
)
