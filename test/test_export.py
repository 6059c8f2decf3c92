"""ONNX export: the traceable rollout step is the planning fast path's maths, onnxruntime gives torch's
numbers (1e-4, CPU), and the onnxruntime backend plans like the torch model."""

import os

import numpy as np
import pytest
import torch

from moejepa_ros.control import LatentController
from moejepa_ros.model import save_checkpoint
from moejepa_ros.model.encoder import CPU_CHUNK
from moejepa_ros.model.onnx_graphs import EncoderGraph, RolloutStep, onnx_paths
from testing.models import HIGH, LOW, PLANNER, tiny_model
from training.cli import main

#: 4 experts, top-2: routing matters, and 128 samples x 8 steps take the sorted fast path.
MOE = dict(num_experts=4, top_k=2)
OBJECTIVES = {"reward": {"enabled": True}, "cost": {"enabled": True, "weight": 0.5}}


def needs_onnxruntime():
    return pytest.importorskip(
        "onnxruntime", reason="onnxruntime is in requirements.txt; install it with tools/install.sh"
    )


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny MoE model saved and exported as ONNX through the CLI: (model, checkpoint path)."""
    needs_onnxruntime()
    run_dir = tmp_path_factory.mktemp("export")
    src = str(run_dir / "src.safetensors")
    save_checkpoint(src, tiny_model(seed=3, **MOE), {"action_low": LOW, "action_high": HIGH})
    out = str(run_dir / "model.safetensors")
    args = [f"run.out_dir={run_dir}", f"export.checkpoint={src}", f"export.output={out}", "run.device=cpu"]
    assert main(["export", "-c", "tiny", "--format", "onnx", *args]) == 0
    from moejepa_ros.model import load_checkpoint

    model, _ = load_checkpoint(out)
    return model.eval(), out


def test_the_traceable_step_is_the_fast_path():
    model = tiny_model(seed=1, **MOE)
    n, horizon = 128, 8
    assert model.predictor.fast_rollout_ok(n, horizon)
    g = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        z0 = model.encode(torch.randint(0, 256, (1, 3, 64, 64, 3), dtype=torch.uint8, generator=g))
        actions = torch.rand(n, horizon, model.action_dim, generator=g) * 4 - 2
        fast = model.rollout(z0.expand(n, -1), actions)
        step, z, traced = RolloutStep(model), z0.expand(n, -1), []
        for t in range(horizon):
            z_next, r, v, c = step(z, actions[:, t])
            torch.testing.assert_close(r, model.reward(z, actions[:, t]))
            torch.testing.assert_close(v, model.value(z_next))
            torch.testing.assert_close(c, model.cost(z_next))
            traced.append(z_next)
            z = z_next
        chosen = model.predictor.moe.route(z, model.predictor.embed(actions[:, -1]))[1]
    torch.testing.assert_close(torch.stack(traced, 1), fast, atol=1e-5, rtol=1e-5)
    load = torch.bincount(chosen.reshape(-1), minlength=4)
    assert (load > 0).sum() >= 2, f"the test routes to one expert only ({load.tolist()}): it would not test routing"


def test_onnxruntime_gives_torch_numbers(exported):
    ort = needs_onnxruntime()
    model, path = exported
    paths = onnx_paths(path)
    assert sorted(paths) == ["encoder", "rollout_step"] and all(os.path.isfile(p) for p in paths.values())
    g = torch.Generator().manual_seed(1)
    enc = ort.InferenceSession(paths["encoder"], providers=["CPUExecutionProvider"])
    step = ort.InferenceSession(paths["rollout_step"], providers=["CPUExecutionProvider"])
    with torch.inference_mode():
        # not the traced batch; and one above encoder.CPU_CHUNK, which torch encodes in chunks
        for batch in (5, 2 * CPU_CHUNK + 3):
            frames = torch.randint(0, 256, (batch, 3, 64, 64, 3), dtype=torch.uint8, generator=g)
            z_torch = EncoderGraph(model)(frames)
            (z_ort,) = enc.run(None, {"frames": frames.numpy()})
            np.testing.assert_allclose(z_ort, z_torch.numpy(), atol=1e-4)
        z = z_torch[:1].expand(7, -1).contiguous()
        a = torch.rand(7, model.action_dim, generator=g) * 2 - 1
        for got, want in zip(step.run(None, {"z": z.numpy(), "action": a.numpy()}), RolloutStep(model)(z, a)):
            np.testing.assert_allclose(got, want.numpy(), atol=1e-4)


@pytest.mark.parametrize("method", ["cem", "mppi"])
def test_the_onnxruntime_backend_plans_like_torch(exported, method):
    from moejepa_ros.control.onnx_backend import OnnxWorldModel

    model, path = exported
    backend = OnnxWorldModel(model, path)
    assert backend.providers == ["CPUExecutionProvider"]
    planner = {**PLANNER, "method": method, "samples": 64, "horizon": 5, "seed": 7}
    frames = np.random.default_rng(2).integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    decisions = {}
    for name, m in (("torch", model), ("onnxruntime", backend)):
        ctrl = LatentController(m, "cpu", planner, OBJECTIVES, LOW, HIGH)
        decisions[name] = [ctrl.act(frames) for _ in range(3)]  # warm-started replans too
    for t, o in zip(decisions["torch"], decisions["onnxruntime"]):
        assert o.message == "ok"
        np.testing.assert_allclose(o.action, t.action, atol=1e-3)
        np.testing.assert_allclose(o.predicted_cost, t.predicted_cost, rtol=1e-4, atol=1e-4)
    assert not np.allclose(decisions["torch"][0].action, 0.0)  # a real plan, not the safe stop


def test_the_backend_refuses_missing_or_foreign_graphs(exported, tmp_path):
    from moejepa_ros.control.onnx_backend import OnnxWorldModel

    model, path = exported
    other = str(tmp_path / "other.safetensors")
    save_checkpoint(other, tiny_model(seed=4, **MOE), {"action_low": LOW, "action_high": HIGH})
    with pytest.raises(FileNotFoundError, match="--format onnx"):
        OnnxWorldModel(model, other)
    for name, p in onnx_paths(path).items():
        os.symlink(p, onnx_paths(other)[name])
    with pytest.raises(ValueError, match="another checkpoint"):
        OnnxWorldModel(model, other)


def test_the_torch_only_options_leave_the_onnxruntime_backend_alone(exported):
    """Autocast of the encoder is refused with the onnxruntime backend; CUDA graphs never wrap it."""
    from moejepa_ros.control.onnx_backend import OnnxWorldModel

    model, path = exported
    onnx = OnnxWorldModel(model, path)
    with pytest.raises(ValueError, match="encoder_precision='bf16' applies to the torch backend only"):
        LatentController(onnx, "cpu", PLANNER, OBJECTIVES, LOW, HIGH, encoder_precision="bf16")
    assert LatentController(onnx, "cpu", PLANNER, OBJECTIVES, LOW, HIGH, cuda_graphs=True).plan_model is onnx


def test_the_onnxruntime_backend_refuses_the_goal_metric_pose(exported):
    """The relative-pose parts are not exported to ONNX: a stated gap, refused in one line."""
    from moejepa_ros.control.onnx_backend import OnnxWorldModel

    _, path = exported
    parts = {"channels": [8, 8, 8, 8], "hidden": 16, "motion_hidden": 16}
    onnx = OnnxWorldModel(tiny_model(seed=3, relative_pose=parts, **MOE), path)
    pose = {"reward": {"enabled": False}, "goal": {"enabled": True, "metric": "pose"}}
    with pytest.raises(ValueError, match="the onnxruntime backend does not run them: plan with backend torch") as e:
        LatentController(onnx, "cpu", PLANNER, pose, LOW, HIGH)
    assert "\n" not in str(e.value)


def test_export_format_is_checked(tmp_path, capsys):
    assert main(["export", "-c", "tiny", f"run.out_dir={tmp_path}", "export.format=tflite"]) == 2
    assert "export.format" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["export", "--format", "tflite"])
    assert onnx_paths("a/model.safetensors")["encoder"] == "a/model.encoder.onnx"


@pytest.mark.ros
@pytest.mark.timeout(120)
def test_planner_node_plans_with_backend_onnxruntime_and_refuses_a_checkpoint_without_onnx(exported, tmp_path):
    pytest.importorskip("rclpy", reason="planner_node needs rclpy (requirements-ros.txt or a sourced ROS 2)")
    from geometry_msgs.msg import TwistStamped
    from sensor_msgs.msg import Image

    from moejepa_ros import codecs
    from moejepa_ros.ros.messages import IMAGE_PUB_QOS
    from moejepa_ros.ros.node_process import NodeProcess
    from moejepa_ros.ros.probe import Probe

    _, path = exported
    params = {
        "checkpoint": path,
        "backend": "onnxruntime",
        "action_type": "twist_stamped",
        "planner.samples": 32,
        "planner.horizon": 3,
        "planner.iterations": 2,
        "planner.elites": 8,
    }
    bare = str(tmp_path / "bare.safetensors")
    save_checkpoint(bare, tiny_model(seed=5, **MOE), {"action_low": LOW, "action_high": HIGH})
    refused = NodeProcess(
        "planner_node", params={**params, "checkpoint": bare}, name="bare_planner", log_path=tmp_path / "bare.log"
    ).start()
    node = NodeProcess("planner_node", params=params, name="onnx_planner", log_path=tmp_path / "node.log").start()
    try:
        with Probe("onnx_backend_probe") as probe:
            pub = probe.publisher(Image, "image", IMAGE_PUB_QOS)
            actions = probe.subscribe(TwistStamped, "action")
            probe.wait_for_subscribers(pub, 1, timeout=60)
            assert probe.get_parameters("onnx_planner", ["backend"])["backend"] == "onnxruntime"
            rng = np.random.default_rng(0)
            for i in range(300):  # until a planned (non-zero) command arrives
                img = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
                pub.publish(codecs.make_image(Image, img, "rgb8", 1_000_000_000 + i * 33_000_000, "cam"))
                try:
                    actions.wait(1, timeout=0.033, pred=lambda m: m.twist.linear.x != 0.0 or m.twist.angular.z != 0.0)
                    break
                except TimeoutError:
                    pass
            else:
                pytest.fail("no planned command from planner_node:\n" + node.output()[-3000:])
        assert node.alive()
        refused.proc.wait(60)
        assert refused.proc.returncode == 1 and "--format onnx" in refused.output(), refused.output()[-2000:]
    finally:
        node.stop()
        refused.stop()
