"""The control step's device options: device and precision checks, bf16 autocast of the encoder, frame
upload, and the CUDA-graph rollout (its captured maths on CPU; the capture itself where CUDA exists)."""

import numpy as np
import pytest
import torch

from moejepa_ros.control import LatentController
from moejepa_ros.control.cuda_graphs import GraphedRollout, graph_rollout
from moejepa_ros.control.device import check_encoder_precision, resolve_device
from moejepa_ros.control.frame_upload import FrameUpload
from moejepa_ros.planning import LinearLatentModel
from testing.models import HIGH, LOW, PLANNER, tiny_model

OBJECTIVES = {"reward": {"enabled": True}, "cost": {"enabled": True, "weight": 0.5}}
MOE = dict(num_experts=4, top_k=2)  # routing matters, and 128 x 8 takes the sorted fast path on CPU
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def frames(seed: int, k: int = 3, size: int = 64) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (k, size, size, 3), dtype=np.uint8)


def test_devices_resolve_or_fail_with_one_line_naming_the_value():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="device='gpu0' is not a torch device"):
        resolve_device("gpu0")
    with pytest.raises(ValueError, match="device='meta' is not supported"):
        resolve_device("meta")
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    with pytest.raises(ValueError, match=f"device='cuda:{count}' but (this )?torch") as e:
        resolve_device(f"cuda:{count}")
    assert "\n" not in str(e.value)
    if torch.version.cuda is None:
        assert "built without CUDA" in str(e.value)


def test_encoder_precisions_are_checked_against_the_device():
    check_encoder_precision("fp32", "cpu")
    check_encoder_precision("bf16", "cpu")
    with pytest.raises(ValueError, match=r"encoder_precision='fp8' is invalid: must be one of \['fp32'"):
        check_encoder_precision("fp8", "cpu")
    with pytest.raises(ValueError, match="encoder_precision='fp16' needs a cuda device, not 'cpu'"):
        check_encoder_precision("fp16", "cpu")
    with pytest.raises(ValueError, match="fp16"):
        LatentController(tiny_model(), "cpu", PLANNER, OBJECTIVES, LOW, HIGH, encoder_precision="fp16")


def test_bf16_autocast_encodes_close_to_fp32_and_plans():
    model = tiny_model(seed=2, **MOE)
    full = LatentController(model, "cpu", PLANNER, OBJECTIVES, LOW, HIGH)
    half = LatentController(model, "cpu", PLANNER, OBJECTIVES, LOW, HIGH, encoder_precision="bf16")
    for seed in range(3):
        z32, z16 = full.encode(frames(seed)), half.encode(frames(seed))
        assert z16.dtype == torch.float32 and not torch.equal(z16, z32)  # bf16 really ran
        torch.testing.assert_close(z16, z32, atol=0.02, rtol=0.05)
    d = half.act(frames(7))
    assert d.message == "ok" and np.all(np.isfinite(d.action))


def test_warm_up_plans_once_and_forgets_it():
    model = tiny_model(seed=2, **MOE)
    cold = LatentController(model, "cpu", PLANNER, OBJECTIVES, LOW, HIGH)
    warm = LatentController(model, "cpu", PLANNER, OBJECTIVES, LOW, HIGH)
    warm.warm_up()
    assert warm.planner.warm_start is None
    for seed in range(2):
        np.testing.assert_array_equal(warm.act(frames(seed)).action, cold.act(frames(seed)).action)


def test_a_controller_waiting_for_a_goal_warms_up_and_waits_again():
    model = tiny_model(seed=2, **MOE)
    spec = {"goal": {"enabled": True}}
    cold = LatentController(model, "cpu", PLANNER, spec, LOW, HIGH)
    warm = LatentController(model, "cpu", PLANNER, spec, LOW, HIGH)
    warm.warm_up()
    assert warm.planner is not None and warm.goal_z is None and warm.act(frames(0)).message.startswith("waiting")
    for c in (cold, warm):
        c.set_goal(frames(5)[0])
    np.testing.assert_array_equal(warm.act(frames(1)).action, cold.act(frames(1)).action)


def test_frame_upload_gives_the_frames_on_the_device():
    f = frames(1)
    got = FrameUpload("cpu")(f)
    assert got.shape == (1, *f.shape) and got.dtype == torch.uint8 and np.array_equal(got[0].numpy(), f)


def test_the_captured_rollout_is_the_planning_rollout():
    """What a CUDA graph captures (`graph_rollout`: masked experts, no host sync) equals
    `Predictor.rollout` (CPU: the sorted fast path) from a shared and from per-sample latents."""
    model = tiny_model(seed=1, **MOE)
    n, horizon = 128, 8
    assert model.predictor.fast_rollout_ok(n, horizon)
    g = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        z0 = model.encode(torch.from_numpy(frames(4))[None])
        actions = torch.rand(n, horizon, model.action_dim, generator=g) * 4 - 2
        torch.testing.assert_close(graph_rollout(model, z0, actions), model.rollout(z0.expand(n, -1), actions))
        zs = model.rollout(z0.expand(n, -1), actions[:, :1])[:, 0]
        torch.testing.assert_close(graph_rollout(model, zs, actions), model.rollout(zs, actions))
        lin = LinearLatentModel(torch.eye(3) * 0.9, torch.ones(3, 2))
        torch.testing.assert_close(
            graph_rollout(lin, torch.ones(1, 3), actions[:4, :, :2]), lin.rollout(torch.ones(4, 3), actions[:4, :, :2])
        )


def test_cuda_graphs_leave_cpu_planning_unchanged():
    model = tiny_model(seed=1, **MOE)
    view = GraphedRollout(model)
    assert view.latent_dim == model.latent_dim and view.heads == model.heads
    z0, actions = torch.randn(1, model.latent_dim), torch.rand(16, 3, model.action_dim)
    with torch.inference_mode():
        assert torch.equal(view.rollout(z0.expand(16, -1), actions), model.rollout(z0.expand(16, -1), actions))
    assert not view.graphs and view.disabled is None
    ctrl = LatentController(model, "cpu", PLANNER, OBJECTIVES, LOW, HIGH, cuda_graphs=True)
    assert ctrl.plan_model is model  # a CPU controller plans on the model itself


@needs_cuda
def test_cuda_graph_rollouts_replay_the_eager_rollout():
    model = tiny_model(seed=1, **MOE).cuda()
    view = GraphedRollout(model)
    g = torch.Generator(device="cuda").manual_seed(0)
    z0 = torch.randn(1, model.latent_dim, device="cuda", generator=g)
    with torch.inference_mode():
        for n in (128, 64, 128):
            actions = torch.rand(n, 5, model.action_dim, device="cuda", generator=g) * 2 - 1
            got = view.rollout(z0.expand(n, -1), actions)
            torch.testing.assert_close(got, graph_rollout(model, z0, actions))
    assert view.disabled is None and len(view.graphs) == 2


@needs_cuda
def test_a_cuda_controller_with_graphs_pinned_upload_and_fp16_plans_like_the_eager_one():
    model = tiny_model(seed=1, **MOE).cuda()
    planner = {**PLANNER, "samples": 128, "elites": 16}
    eager = LatentController(model, "cuda", planner, OBJECTIVES, LOW, HIGH)
    graphed = LatentController(model, "cuda", planner, OBJECTIVES, LOW, HIGH, cuda_graphs=True)
    fp16 = LatentController(model, "cuda", planner, OBJECTIVES, LOW, HIGH, encoder_precision="fp16")
    assert isinstance(graphed.plan_model, GraphedRollout) and graphed.upload.pinned
    for seed in range(3):
        a, b = eager.act(frames(seed)), graphed.act(frames(seed))
        np.testing.assert_allclose(b.action, a.action, atol=1e-3)
        torch.testing.assert_close(fp16.encode(frames(seed)), eager.encode(frames(seed)), atol=0.02, rtol=0.05)
    assert graphed.plan_model.disabled is None and graphed.plan_model.graphs
    assert np.array_equal(FrameUpload("cuda")(frames(9))[0].cpu().numpy(), frames(9))
