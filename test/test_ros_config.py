"""Static checks of the ROS side (no DDS): launch files, params YAML vs declared parameters,
parameter validation helpers, bringup's parsing, the FastDDS profile, message layouts and stats
(the control step's own tests are test_control_*.py)."""

from __future__ import annotations

import ast
import importlib.util
import py_compile
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import yaml

pytest.importorskip("rclpy")

from rclpy.parameter import Parameter

from moejepa_ros.ros import bringup, dds, params
from moejepa_ros.ros.messages import msg_to_plan, plan_to_msg
from moejepa_ros.ros.stats import ControlStats

ROOT = Path(__file__).resolve().parents[1]
LAUNCH = sorted((ROOT / "launch").glob("*.launch.py"))
NODE_YAML = [ROOT / "config" / n for n in ("planner.yaml", "sim_demo.yaml", "isaac_sim.yaml")]
SPECS = {"planner_node": params.PLANNER_NODE_SPECS, "sim_node": params.SIM_NODE_SPECS}
BUILTIN = {"use_sim_time": Parameter.Type.BOOL}


# ------------------------------------------------------------------------ launch files
def test_launch_files_exist_and_compile(tmp_path):
    names = {p.name for p in LAUNCH}
    assert {"planner.launch.py", "sim_demo.launch.py", "isaac_sim.launch.py", "replay.launch.py"} <= names
    for p in LAUNCH:
        py_compile.compile(str(p), cfile=str(tmp_path / (p.name + "c")), doraise=True)


@pytest.mark.parametrize("path", LAUNCH, ids=lambda p: p.name)
def test_launch_arguments_are_declared_before_use(path):
    """Every LaunchConfiguration the file reads is a DeclareLaunchArgument (AST check)."""
    tree = ast.parse(path.read_text())
    declared, used = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            fn = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
            if fn == "DeclareLaunchArgument":
                declared.add(node.args[0].value)
            elif fn in ("LaunchConfiguration", "get"):
                used.add(node.args[0].value)
    assert any(isinstance(n, ast.FunctionDef) and n.name == "generate_launch_description" for n in tree.body)
    assert used and used <= declared, f"undeclared launch arguments: {sorted(used - declared)}"
    assert "fastdds_profile_action()" in path.read_text(), "launch files must set the FastDDS large-image profile"


@pytest.mark.parametrize("path", LAUNCH, ids=lambda p: p.name)
def test_every_process_a_launch_starts_ends_the_launch_when_it_exits(path):
    """Issue 22: no node runs on alone and a failure is a non-zero `ros2 launch` (AST check: each
    `moejepa_node(...)` / `ExecuteProcess(...)` bound to a name gets `end_launch_when_exits(name, ...)`,
    except `ros2 bag record`, which follows the player)."""
    tree = ast.parse(path.read_text())
    started, guarded = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            fn = getattr(node.value.func, "id", getattr(node.value.func, "attr", ""))
            if fn in ("moejepa_node", "ExecuteProcess") and isinstance(node.targets[0], ast.Name):
                started.add(node.targets[0].id)
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "end_launch_when_exits":
            guarded.add(node.args[0].id)
    assert started and started <= guarded, f"{path.name}: no exit handler for {sorted(started - guarded)}"


@pytest.mark.parametrize("path", LAUNCH, ids=lambda p: p.name)
def test_a_managed_planner_gets_its_lifecycle_transitions(path):
    """A launch file that can start the planner managed (`managed=` to moejepa_node) also emits the
    lifecycle transitions (`lifecycle_transitions(...)`) and declares the `managed` argument (AST check)."""
    tree = ast.parse(path.read_text())
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)]
    managed = [c for c in calls if c.func.id == "moejepa_node" and any(k.arg == "managed" for k in c.keywords)]
    if not managed:
        pytest.skip(f"{path.name} starts no managed planner")
    assert any(c.func.id == "lifecycle_transitions" for c in calls), f"{path.name}: nothing drives the lifecycle"
    assert '"managed"' in path.read_text()


def test_planner_launch_starts_a_lifecycle_node_the_launch_drives():
    pytest.importorskip("launch_ros", reason="needs a sourced ROS 2 (launch_ros is not a wheel here)")
    from launch import LaunchContext
    from launch.actions import DeclareLaunchArgument, EmitEvent, RegisterEventHandler
    from launch_ros.actions import LifecycleNode, Node

    path = ROOT / "launch" / "planner.launch.py"
    spec = importlib.util.spec_from_file_location("planner_launch", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    for managed, autostart, events in (("true", "true", 3), ("true", "false", 0), ("false", "true", 0)):
        ctx = LaunchContext()
        ctx.launch_configurations.update(managed=managed, autostart=autostart)
        for e in mod.generate_launch_description().entities:
            if isinstance(e, DeclareLaunchArgument):
                e.visit(ctx)
        planner, _, *rest = mod._nodes(ctx)
        assert isinstance(planner, LifecycleNode if managed == "true" else Node)
        assert len(rest) == events and all(isinstance(a, (EmitEvent, RegisterEventHandler)) for a in rest)


@pytest.mark.parametrize("path", LAUNCH, ids=lambda p: p.name)
def test_launch_descriptions_build(path):
    pytest.importorskip(
        "launch_ros", reason="launch_ros is not installable as a wheel here; only available with a sourced ROS 2 distro"
    )
    from launch import LaunchDescription

    spec = importlib.util.spec_from_file_location(path.stem.replace(".", "_"), path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    ld = mod.generate_launch_description()
    assert isinstance(ld, LaunchDescription) and ld.entities


# ------------------------------------------------------------------------ YAML vs parameters
def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


@pytest.mark.parametrize("path", NODE_YAML, ids=lambda p: p.name)
def test_yaml_keys_are_declared_parameters_with_matching_types(path):
    doc = yaml.safe_load(path.read_text())
    assert doc, f"{path} is empty"
    for node, body in doc.items():
        exe = bringup.executable_for(node, {})
        specs = {s.name: s for s in SPECS[exe]}
        flat = _flatten(body["ros__parameters"])
        for key, value in flat.items():
            if key in BUILTIN:
                continue
            assert key in specs, f"{path.name}: {node}.{key} is not a declared parameter of {exe}"
            want = specs[key].type
            got = Parameter.Type.from_parameter_value(value)
            assert got == want, f"{path.name}: {node}.{key}={value!r} is {got.name}, declared {want.name}"
            assert params.check_value(specs[key], value) is None
        assert params.check_all(SPECS[exe], {**{s.name: s.default for s in SPECS[exe]}, **flat}) is None


@pytest.mark.parametrize("path", NODE_YAML, ids=lambda p: p.name)
def test_yaml_planner_and_objective_sections_hold_only_overrides(path):
    """A value the YAML repeats from the code's defaults would silently disagree once a default changes."""
    defaults = {s.name: s.default for s in params.PLANNER_NODE_SPECS}
    body = yaml.safe_load(path.read_text())["planner_node"]["ros__parameters"]
    flat = _flatten({k: body[k] for k in ("planner", "objectives") if k in body})
    assert flat, f"{path.name}: no planner / objectives overrides"
    repeated = sorted(k for k, v in flat.items() if defaults[k] == v)
    assert not repeated, f"{path.name} repeats the defaults of {repeated}: keep only deliberate overrides"


def test_every_planner_config_field_and_objective_is_a_parameter():
    import dataclasses

    from moejepa_ros.planning import PlannerConfig
    from moejepa_ros.planning.objectives import REGISTRY

    names = {s.name for s in params.PLANNER_NODE_SPECS}
    for f in dataclasses.fields(PlannerConfig):
        assert f"planner.{f.name}" in names
    for obj in REGISTRY:
        assert {f"objectives.{obj}.enabled", f"objectives.{obj}.weight"} <= names
    at_configure = {s.name for s in params.PLANNER_NODE_SPECS if s.configure_only}
    assert {"checkpoint", "device", "image_size"} <= at_configure
    assert not any(s.read_only for s in params.PLANNER_NODE_SPECS if s.configure_only)
    assert (
        params.CONFIGURE_ONLY_NOTE
        in {s.name: s.descriptor() for s in params.PLANNER_NODE_SPECS}["checkpoint"].additional_constraints
    )
    d = {s.name: s.descriptor() for s in params.PLANNER_NODE_SPECS}
    assert d["planner.samples"].integer_range[0].from_value == 1
    assert d["control_rate"].floating_point_range[0].to_value > 30
    assert all(x.description for x in d.values())


def test_objective_parameters_are_generated_from_the_declarations():
    from moejepa_ros.planning.objectives import REGISTRY, build_objectives

    specs = {s.name: s for s in params.PLANNER_NODE_SPECS}
    declared = {f"objectives.{n}.{k}": o for n, cls in REGISTRY.items() for k, o in cls.declared().items()}
    assert {k for k in specs if k.startswith("objectives.")} == set(declared)
    for name, opt in declared.items():
        s = specs[name]
        assert (s.default, s.description, s.low, s.high, s.choices) == (
            opt.default,
            opt.help,
            opt.low,
            opt.high,
            opt.choices,
        )
    # options that were out of the node's reach before the registry generated them
    assert specs["objectives.reward.terminal_value"].default is False
    assert specs["objectives.cost.every_step"].default is True
    d = specs["objectives.goal.metric"].descriptor()
    assert "learned" in d.additional_constraints and d.description == declared["objectives.goal.metric"].help
    base = {s.name: s.default for s in params.PLANNER_NODE_SPECS}
    vals = params.objectives_dict({**base, "objectives.reward.terminal_value": True})
    assert build_objectives(vals)["reward"].terminal_value is True
    assert "objective 'cost': every_step='no' is invalid" in params.check_all(
        params.PLANNER_NODE_SPECS, {**base, "objectives.cost.every_step": "no"}
    )


def test_planner_parameters_take_help_range_and_choices_from_the_config_fields():
    import dataclasses

    from moejepa_ros.planning import PlannerConfig

    specs = {s.name: s for s in params.PLANNER_NODE_SPECS}
    for f in dataclasses.fields(PlannerConfig):
        s = specs[f"planner.{f.name}"]
        assert s.description == "planner: " + f.metadata["help"]
        assert (s.low, s.high, s.choices) == (f.metadata["low"], f.metadata["high"], tuple(f.metadata["choices"]))
    assert specs["planner.method"].choices == ("cem", "mppi", "gradient", "cem_gradient")


def test_validation_helpers_name_the_bad_value():
    base = {s.name: s.default for s in params.PLANNER_NODE_SPECS}
    assert params.check_all(params.PLANNER_NODE_SPECS, base) is None
    reason = params.check_all(params.PLANNER_NODE_SPECS, {**base, "planner.elites": 10_000})
    assert "elites" in reason and "samples" in reason
    assert "bogus" in params.check_all(params.PLANNER_NODE_SPECS, {**base, "action_type": "bogus"})
    assert "action_low" in params.check_all(
        params.PLANNER_NODE_SPECS, {**base, "action_low": [0.0], "action_high": [0.0]}
    )
    assert "finite" in params.check_all(params.PLANNER_NODE_SPECS, {**base, "control_rate": float("nan")})
    res = params.on_set_result(params.PLANNER_NODE_SPECS, base, [Parameter("planner.min_std", value=5.0)])
    assert not res.successful and "min_std" in res.reason
    assert params.objectives_dict({"objectives.goal.weight": 2.0, "objectives.goal.enabled": True}) == {
        "goal": {"weight": 2.0, "enabled": True}
    }


# ------------------------------------------------------------------------ bringup / DDS profile
def test_bringup_reads_node_names_and_builds_commands(tmp_path):
    procs = bringup.build_processes(ROOT / "config" / "sim_demo.yaml", ros_args=["--ros-args", "-p", "x:=1"])
    names = [n for n, _ in procs]
    assert names == ["sim_node", "planner_node"]
    cmd = dict(procs)["planner_node"].cmd
    assert cmd[1:3] == ["-m", "moejepa_ros.ros.planner_node"] and "__node:=planner_node" in cmd[-4]
    assert cmd[-3:] == ["--ros-args", "-p", "x:=1"]
    (tmp_path / "ns.yaml").write_text("/robot1/planner_a:\n  ros__parameters: {control_rate: 10.0}\n")
    [(n, p)] = bringup.build_processes(tmp_path / "ns.yaml")
    assert "__ns:=/robot1" in p.cmd[-1] and "__node:=planner_a" in p.cmd
    (tmp_path / "odd.yaml").write_text("camera:\n  ros__parameters: {}\n")
    with pytest.raises(ValueError, match="--node camera="):
        bringup.build_processes(tmp_path / "odd.yaml")
    assert bringup.build_processes(tmp_path / "odd.yaml", overrides={"camera": "sim_node"})
    (tmp_path / "bad.yaml").write_text("planner_node: {}\n")
    with pytest.raises(ValueError, match="ros__parameters"):
        bringup.nodes_in(tmp_path / "bad.yaml")
    assert bringup.main([str(tmp_path / "bad.yaml")]) == 2


def test_fastdds_profile_is_found_and_has_a_16mb_segment():
    p = dds.fastdds_profile_path()
    assert p is not None and p.name == "fastdds_large_images.xml"
    ns = {"d": "http://www.eprosima.com"}
    root = ET.parse(p).getroot()
    seg = root.find(".//d:transport_descriptor[d:type='SHM']/d:segment_size", ns)
    assert seg is not None and int(seg.text) >= 16 * 1024 * 1024
    env = {}
    assert dds.ensure_fastdds_profile(env) == str(p)
    env = {dds.ENV_VAR: "/mine.xml"}
    assert dds.ensure_fastdds_profile(env) == "/mine.xml"  # never overrides the user's


# ------------------------------------------------------------------------ messages / stats
def test_plan_message_round_trip():
    a = np.arange(10, dtype=np.float32).reshape(5, 2)
    msg = plan_to_msg(a, 3.5)
    assert [d.label for d in msg.layout.dim] == ["horizon", "action"] and msg.layout.data_offset == 1
    back, cost = msg_to_plan(msg)
    assert np.array_equal(back, a) and cost == 3.5


def test_stats_percentiles_rates_and_counters():
    s = ControlStats()
    for i in range(100):
        s.sample("latency_ms", float(i))
    s.count("frames_dropped", 3)
    for t in range(5):
        s.event("control")
    out = s.summary()
    assert out["frames_dropped"] == 3 and 48 <= out["latency_ms_p50"] <= 51 and out["latency_ms_p99"] >= 97
    assert "control_hz" in out


def test_launch_common_finds_the_config_folder_without_launch_packages():
    from moejepa_ros.ros.launch_common import config_dir, truthy

    assert (Path(config_dir()) / "fastdds_large_images.xml").is_file()
    assert truthy(" True ") and truthy("1") and not truthy("false") and not truthy("")


def test_replay_fails_at_once_with_one_line_without_ros2_bag(tmp_path, monkeypatch):
    """No `ros2` on PATH (or no rosbag2): one line naming what is missing, before any process starts."""
    from moejepa_ros.ros.launch_common import exit_reason, require_ros2_bag

    monkeypatch.setenv("PATH", str(tmp_path))  # an empty PATH folder: no ros2 here
    with pytest.raises(RuntimeError, match=r"`ros2` is not on PATH") as e:
        require_ros2_bag()
    assert "\n" not in str(e.value)
    assert "failed (exit status 1)" in exit_reason("planner_node", 1)
    assert "exited normally" in exit_reason("sim_node", 0)
