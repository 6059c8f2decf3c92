"""`moejepa-train`: one CLI from simulator rollouts / rosbags to a checkpoint the robot node loads.

    moejepa-train collect  -c two_rooms                    # simulator -> rosbag2
    moejepa-train pretrain -c two_rooms                    # Stage 1: action-free JEPA on video
    moejepa-train fit      -c two_rooms fit.init_encoder=auto optim.lr=3e-4
    moejepa-train refine   -c two_rooms                    # predictor on frozen latents, long rollouts
    moejepa-train goal     -c two_rooms -c two_rooms_goal  # learned goal distance (walls, doors)
    moejepa-train pose     -c robot                        # relative-pose parts from the bags' odometry
    moejepa-train joints   -c robot -c reacher             # an arm's joint-angle probe from /joint_states
    moejepa-train mbrl     -c two_rooms                    # Stage 3: plan, append, re-fit
    moejepa-train distill  -c two_rooms                    # planner -> actor (Mode-1)
    moejepa-train evaluate -c two_rooms                    # JSON + PNG report
    moejepa-train export   -c two_rooms                    # -> <out_dir>/export/model.safetensors
    moejepa-train export   -c two_rooms --format onnx      # + model.encoder.onnx, model.rollout_step.onnx
    torchrun --nproc_per_node 2 -m training.cli fit -c tiny   # DDP (gloo on CPU, NCCL on GPU)

Options are `section.key=value` overrides (OmegaConf dotlist) on top of the YAML files given
with -c (bare names are looked up in config/train/); `moejepa-train <cmd> --help` lists them.
Each command prints a JSON summary on stdout; progress and logs go to stderr.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable

from .config import EXPORT_FORMATS, ConfigError, TrainConfig, load_config, options_help
from .data.episode import BagDataError

SECTIONS: dict[str, list[str]] = {
    "collect": ["run", "collect"],
    "pretrain": ["run", "data", "model", "optim", "train"],
    "fit": ["run", "data", "model", "optim", "train", "fit", "baseline", "collect"],
    "refine": ["run", "data", "optim", "refine", "collect"],
    "goal": ["run", "data", "optim", "goal", "collect"],
    "pose": ["run", "data", "pose", "collect"],
    "joints": ["run", "data", "joints", "collect"],
    "mbrl": ["run", "data", "model", "optim", "train", "fit", "collect", "plan", "mbrl", "eval"],
    "distill": ["run", "data", "plan", "distill", "collect"],
    "evaluate": ["run", "data", "eval", "plan", "collect"],
    "export": ["run", "export"],
}
SUMMARY = {
    "collect": "record simulator episodes as rosbag2 (collect.env, collect.policy) into <out_dir>/collect/bags",
    "pretrain": "Stage 1: action-free JEPA pre-training of the encoder on video windows",
    "fit": "Stage 2: MoE world model with reward/cost/value heads (optionally from a Stage-1 encoder); "
    "baseline.kind=sac|ppo trains a model-free pixel agent instead",
    "refine": "re-fit the MoE predictor on frozen, cached latents with long open-loop rollouts (cheap on CPU)",
    "goal": "learn the goal distance d(z, g) (steps to go, aware of obstacles) on frozen latents; "
    "the planner uses it with objectives.goal.metric=learned",
    "pose": "learn the pair pose net R(image, goal image) and the motion model M(commands) from the bags' "
    "odometry; the planner uses them with objectives.goal.metric=pose",
    "joints": "learn an arm's joint-angle probe on the bags' /joint_states (recorded, goal and imagined latents); "
    "the planner uses it with objectives.goal.metric=joints",
    "mbrl": "Stage 3: plan in the simulator, append the episodes to the replay bags, re-fit; repeat",
    "distill": "distil the planner into the actor head (Mode-1), DAgger-style",
    "evaluate": "open-loop latent error vs copy-last, probes, routing statistics, closed-loop success",
    "export": "training checkpoint -> clean inference checkpoint (action bounds + preprocessing in meta); "
    "--format onnx also writes the encoder and a rollout step as ONNX",
}


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="moejepa-train",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(f"  {k:9s} {v}" for k, v in SUMMARY.items()),
    )
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, sections in SECTIONS.items():
        p = sub.add_parser(
            name,
            help=SUMMARY[name],
            description=SUMMARY[name],
            formatter_class=argparse.RawDescriptionHelpFormatter,
            epilog="options (key=value):\n" + options_help(sections),
        )
        p.add_argument(
            "-c",
            "--config",
            action="append",
            default=[],
            metavar="YAML",
            help="YAML config file or name in config/train/ (repeatable; later ones win)",
        )
        p.add_argument("overrides", nargs="*", metavar="key=value", help="option overrides (see below)")
        if name == "export":
            p.add_argument("--format", choices=EXPORT_FORMATS, help="shorthand for export.format=FORMAT")
    return ap


# --------------------------------------------------------------------------- commands
def cmd_collect(cfg: TrainConfig, info, device) -> dict:
    from .collect import collect

    return collect(cfg)


def cmd_pretrain(cfg: TrainConfig, info, device) -> dict:
    from .stages import pretrain

    return _train_result(pretrain(cfg, info, device))


def cmd_fit(cfg: TrainConfig, info, device) -> dict:
    if cfg.baseline.kind in ("sac", "ppo"):
        from .baselines import run_model_free
        from .datasets import run_subdir

        return run_model_free(cfg, run_subdir(cfg, cfg.baseline.kind))
    from .stages import fit

    return _train_result(fit(cfg, info, device))


def cmd_refine(cfg: TrainConfig, info, device) -> dict:
    from .refine import refine

    return refine(cfg, device)


def cmd_goal(cfg: TrainConfig, info, device) -> dict:
    from .goal_distance import goal_distance

    return goal_distance(cfg, device)


def cmd_joints(cfg: TrainConfig, info, device) -> dict:
    from .joints import joint_probe

    return joint_probe(cfg, device)


def cmd_pose(cfg: TrainConfig, info, device) -> dict:
    from .pose import relative_pose_parts

    return relative_pose_parts(cfg, device)


def cmd_mbrl(cfg: TrainConfig, info, device) -> dict:
    from .mbrl import mbrl

    return mbrl(cfg, device)


def cmd_distill(cfg: TrainConfig, info, device) -> dict:
    from .distill import distill

    return distill(cfg, device)


def cmd_evaluate(cfg: TrainConfig, info, device) -> dict:
    from .evaluate import evaluate

    return evaluate(cfg, device)


def cmd_export(cfg: TrainConfig, info, device) -> dict:
    from .export import export

    return export(cfg)


COMMANDS: dict[str, Callable] = {
    "collect": cmd_collect,
    "pretrain": cmd_pretrain,
    "fit": cmd_fit,
    "refine": cmd_refine,
    "goal": cmd_goal,
    "pose": cmd_pose,
    "joints": cmd_joints,
    "mbrl": cmd_mbrl,
    "distill": cmd_distill,
    "evaluate": cmd_evaluate,
    "export": cmd_export,
}
DISTRIBUTED = ("pretrain", "fit")


def _train_result(r) -> dict:
    return {
        "step": r.step,
        "checkpoint": r.checkpoint,
        "run_dir": r.run_dir,
        "resumed_from": r.resumed_from,
        "last": r.last_terms,
        "samples_per_s": r.samples_per_s,
        "data_wait_share": r.data_wait_share,
        "seconds": round(r.elapsed_s, 2),
        **({"verdict": r.verdict["line"]} if r.verdict else {}),
    }


def domain_errors() -> tuple[type[Exception], ...]:
    """The errors `moejepa-train` reports in one line with exit code 2 (imported late: some modules import torch)."""
    from moejepa_ros.model.checkpoint import CheckpointError
    from moejepa_ros.sim.errors import SimUnavailableError

    from .train_state import ResumeError

    return (
        ConfigError,
        FileExistsError,
        BagDataError,
        CheckpointError,
        ResumeError,
        SimUnavailableError,
        FloatingPointError,
    )


def json_safe(x):
    """The summary with every non-finite float as null (JSON has no NaN)."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    return x


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    if getattr(args, "format", None):
        args.overrides.append(f"export.format={args.format}")
    try:
        cfg = load_config(args.config, args.overrides)
    except ConfigError as e:
        print(f"moejepa-train {args.command}: {e}", file=sys.stderr)
        return 2
    import torch

    from .distributed import cleanup, init_distributed, resolve_device
    from .logging_utils import setup_console_logging
    from .run_dir import record_command

    record_command(["moejepa-train", *argv])

    if cfg.run.threads > 0:
        torch.set_num_threads(cfg.run.threads)
    try:
        device = resolve_device(cfg.run.device)
    except ValueError as e:
        print(f"moejepa-train {args.command}: {e}", file=sys.stderr)
        return 2
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and args.command not in DISTRIBUTED:
        print(f"moejepa-train {args.command}: runs in one process; only {DISTRIBUTED} use torchrun", file=sys.stderr)
        return 2
    if device.type == "cuda":
        torch.cuda.set_device(device)
    info = init_distributed(device)
    setup_console_logging(info.is_main)
    t0 = time.perf_counter()
    try:
        result = COMMANDS[args.command](cfg, info, device)
    except domain_errors() as e:
        print(f"moejepa-train {args.command}: {e}", file=sys.stderr)
        return 2
    finally:
        cleanup(info)
    if info.is_main:
        result = dict(result or {})
        result.setdefault("command", args.command)
        result["wall_seconds"] = round(time.perf_counter() - t0, 2)
        print(json.dumps(json_safe(result), default=str, allow_nan=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
