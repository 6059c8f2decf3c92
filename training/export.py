"""`export`: a training checkpoint -> one clean inference checkpoint for `planner_node`.

The output is `save_checkpoint`'s single safetensors file (weights incl. the EMA target, model
config, action bounds, preprocessing), with the training info reduced to provenance (no
optimiser, no data positions). It is re-loaded and planned with once before returning. With
`export.format=onnx` the encoder and a rollout step (`moejepa_ros.model.onnx_graphs`) are also
written as ONNX files next to it, for planner_node's `backend:=onnxruntime` and for TensorRT.
"""

from __future__ import annotations

import os
import time

import torch

from moejepa_ros.model.checkpoint import CheckpointError, load_checkpoint, read_meta, save_checkpoint
from moejepa_ros.model.onnx_graphs import (
    ENCODER_INPUTS,
    ENCODER_OUTPUTS,
    SOURCE_KEY,
    STEP_INPUTS,
    STEP_OUTPUTS,
    EncoderGraph,
    RolloutStep,
    file_sha256,
    onnx_paths,
)

from .config import ConfigError, TrainConfig
from .datasets import run_subdir

SEARCH_ORDER = ("distill", "mbrl", "pose", "joints", "goal", "refine", "fit", "pretrain")


def find_model(cfg: TrainConfig, explicit: str = "", order: tuple = SEARCH_ORDER) -> str:
    """A model .safetensors: `explicit` (a file, or a run / step dir holding model.safetensors),
    else the newest finished stage of this run dir in `order`."""
    if explicit:
        p = explicit
        if os.path.isdir(p):
            p = os.path.join(p, "model.safetensors")
        if not os.path.isfile(p):
            raise ConfigError(
                f"checkpoint {explicit!r} not found (expected a .safetensors file or a dir with model.safetensors)"
            )
        return p
    for sub in order:
        p = os.path.join(run_subdir(cfg, sub), "model.safetensors")
        if os.path.isfile(p):
            return p
    raise ConfigError(
        f"no trained model under {cfg.run.out_dir} (looked for {[s + '/model.safetensors' for s in order]})"
    )


def export(cfg: TrainConfig) -> dict:
    src = find_model(cfg, cfg.export.checkpoint)
    model, meta = load_checkpoint(src)
    low: list[float] | None = list(cfg.export.action_low) or meta.get("action_low")
    high: list[float] | None = list(cfg.export.action_high) or meta.get("action_high")
    if low is None or high is None:
        raise ConfigError(f"{src} has no action bounds: set export.action_low / export.action_high")
    tr = meta.get("training") or {}
    provenance = {
        "source": os.path.abspath(src),
        "exported": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "stage": tr.get("stage"),
        "step": tr.get("step"),
        "subcommand": tr.get("subcommand"),
        "baseline": tr.get("baseline"),
        "data": tr.get("data"),
        "planner": (tr.get("config") or {}).get("plan"),
    }
    out = cfg.export.output or os.path.join(run_subdir(cfg, "export"), "model.safetensors")
    save_checkpoint(
        out,
        model,
        {"action_low": low, "action_high": high, "preprocessing": meta.get("preprocessing"), "training": provenance},
    )
    # verify: the node's path (load_checkpoint + make_planner + one plan)
    from moejepa_ros.planning import PoseGoal, make_planner

    m2, meta2 = load_checkpoint(out)
    plan_cfg = dict((provenance["planner"] or {}).get("planner") or {})
    objectives = dict((provenance["planner"] or {}).get("objectives") or {}) or None
    planner = make_planner(plan_cfg, m2, objectives, meta2["action_low"], meta2["action_high"])
    with torch.no_grad():
        z = m2.encode(torch.zeros(1, m2.cfg.frame_stack, m2.cfg.image_size, m2.cfg.image_size, 3, dtype=torch.uint8))[0]
    goal = z if planner.objectives.needs_goal else None
    pose_goal = None
    if goal is not None and planner.objectives["goal"].metric == "pose":  # the goal where the robot stands
        pose_goal = PoseGoal(torch.zeros(3), torch.zeros(m2.cfg.relative_pose.history, m2.action_dim))
    plan = planner.plan(z, goal, pose_goal=pose_goal)
    if not plan.ok:
        raise CheckpointError(out, "exported model produced a non-finite plan")
    result = {
        "export": out,
        "source": src,
        "action_low": meta2["action_low"],
        "action_high": meta2["action_high"],
        "bytes": os.path.getsize(out),
        "test_plan_ms": round(plan.elapsed_ms, 2),
    }
    if cfg.export.format == "onnx":
        result["onnx"] = export_onnx(m2, out)
    return result


def export_onnx(model: torch.nn.Module, checkpoint: str, samples: int = 4) -> dict[str, str]:
    """Write the encoder and the rollout step of `model` (loaded from `checkpoint`) as ONNX files next
    to `checkpoint` (`onnx_paths`), batch dims dynamic, tagged with the checkpoint's sha256 so a
    backend can refuse graphs of another model. `samples`: the batch traced (any batch runs). Exports
    from the CPU (moves `model` there)."""
    model = model.eval().cpu()
    c = model.cfg
    paths = onnx_paths(checkpoint)
    sha = file_sha256(checkpoint)
    frames = torch.zeros(2, c.frame_stack, c.image_size, c.image_size, 3, dtype=torch.uint8)
    with torch.no_grad():
        z = model.encode(
            torch.randint(0, 256, frames.shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
        )
    z = z[:1].expand(samples, -1).contiguous()
    action = torch.zeros(samples, c.action_dim)
    batch = torch.export.Dim("batch", min=1)
    graphs = {
        "encoder": (EncoderGraph(model), (frames,), ENCODER_INPUTS, ENCODER_OUTPUTS),
        "rollout_step": (RolloutStep(model), (z, action), STEP_INPUTS, STEP_OUTPUTS),
    }
    for name, (graph, args, inputs, outputs) in graphs.items():
        with torch.no_grad():
            program = torch.onnx.export(
                graph.eval(),
                args,
                input_names=list(inputs),
                output_names=list(outputs),
                dynamic_shapes=tuple({0: batch} for _ in args),
                dynamo=True,
                external_data=False,
                verbose=False,
            )
        program.model.metadata_props[SOURCE_KEY] = sha
        program.save(paths[name], external_data=False)
    return paths


def describe(path: str) -> dict:
    return read_meta(path)
