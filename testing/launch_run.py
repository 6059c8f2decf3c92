"""`ros2 launch <package> <file> name:=value ...` without the ros2 CLI, through launch's own Python API.

`python testing/launch_run.py moejepa_ros sim_demo.launch.py checkpoint:=model.safetensors`
For machines where `launch` and `launch_ros` import but the `ros2` command is absent (launch packages
installed without ros2cli): the file is found in the package's installed share directory through the
ament index, as `ros2 launch` finds it; the exit status is the launch service's.
"""

from __future__ import annotations

import os
import sys


def launch_arguments(args: list[str]) -> list[tuple[str, str]]:
    """`name:=value` texts as pairs; ValueError naming the first one without `:=`."""
    bad = [a for a in args if ":=" not in a]
    if bad:
        raise ValueError(f"launch argument {bad[0]!r} is not name:=value")
    return [tuple(a.split(":=", 1)) for a in args]


def main(argv: list[str]) -> int:
    from ament_index_python.packages import get_package_share_directory
    from launch import LaunchDescription, LaunchService
    from launch.actions import IncludeLaunchDescription
    from launch.launch_description_sources import PythonLaunchDescriptionSource

    if len(argv) < 2:
        print("usage: launch_run.py <package> <file.launch.py> [name:=value ...]", file=sys.stderr)
        return 2
    package, file, *args = argv
    path = os.path.join(get_package_share_directory(package), "launch", file)
    include = IncludeLaunchDescription(PythonLaunchDescriptionSource(path), launch_arguments=launch_arguments(args))
    service = LaunchService(argv=args)
    service.include_launch_description(LaunchDescription([include]))
    return service.run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
