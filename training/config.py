"""Training configuration: a typed dataclass schema merged with YAML files and `key=value`.

The schema is the single source of truth for every option: OmegaConf type-checks the YAML
and the command-line dotlist against it, and `--help` prints each field's `help` metadata.
Model, planner and objective settings are free-form dicts here because their own dataclasses
(`ModelConfig`, `PlannerConfig`, `build_objectives`) validate them and name bad fields.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from typing import Any

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from moejepa_ros import share
from moejepa_ros.codecs import DEPTH_RANGE, MONO16_RANGE, CodecError, GreyRanges


class ConfigError(ValueError):
    """A training option is missing, of the wrong type or out of range (names the key)."""


def _f(default: Any, help: str, **kw: Any) -> Any:
    """A dataclass field with a help string (mutable defaults go through a factory)."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: type(d)(d), metadata={"help": help}, **kw)
    return field(default=default, metadata={"help": help}, **kw)


@dataclass
class RunConfig:
    out_dir: str = _f("runs/default", "run directory; each subcommand writes under <out_dir>/<subcommand>/")
    seed: int = _f(0, "global seed (torch, numpy, python, sampler); rank r uses seed + r for its data")
    device: str = _f("auto", "auto | cpu | cuda | cuda:N (auto = cuda if available)")
    precision: str = _f("auto", "auto (bf16 autocast on GPU, fp32 on CPU) | fp32 | bf16 (GPU only)")
    threads: int = _f(0, "torch intra-op threads (0 = torch default)")
    resume: str = _f("auto", "auto (resume from the latest checkpoint in the run dir) | never | <checkpoint dir>")
    log_every: int = _f(10, "steps between TensorBoard scalar writes")
    ckpt_every: int = _f(200, "steps between training checkpoints (also written at the end)")
    keep_ckpts: int = _f(2, "training checkpoints kept (oldest are deleted)")
    tensorboard: bool = _f(True, "write TensorBoard event files under <run>/tb")
    progress: bool = _f(True, "show a tqdm progress bar with ETA and the key losses")


@dataclass
class DataConfig:
    bags: list[str] = _f([], "rosbag2 paths or folders holding bags (default: <out_dir>/collect/bags)")
    cache_dir: str = _f("", "decoded frame cache (default: <out_dir>/cache); rebuilt when the bags change")
    topics: dict[str, Any] = _f(
        {},
        "TopicConfig keys for robot bags: preset=robot and/or image, action, reward, episode, state topics; "
        "stamp_source=auto|header|log, max_hold_s",
    )
    skip_bad: bool = _f(
        False,
        "skip what cannot be read (bags, records, topics; a cut mcap file's readable prefix is kept) and list it in "
        "<out_dir>/data_summary.json; false: the first problem stops the run naming file, topic and record",
    )
    depth_range: list[float] = _f(
        list(DEPTH_RANGE),
        "depth images (16UC1 mm, 32FC1 m, compressedDepth) map [lo, hi] metres to 0..255, the same in every frame; "
        "[] = each frame's own min-max. Saved in the checkpoint; planner_node uses it",
    )
    mono16_range: list[float] = _f(
        list(MONO16_RANGE), "mono16 images map [lo, hi] raw counts to 0..255; [] = each frame's own min-max"
    )
    horizon: int = _f(4, "prediction steps per window (window length = model frame_stack + horizon)")
    batch_size: int = _f(32, "windows per step and per rank")
    augment_shift: int = _f(0, "random-shift augmentation in pixels (0 = off)")
    augment_rotate: float = _f(
        0.0,
        "mbrl.loop=online: turn each replay window about the image centre by up to this many degrees (0 = off, "
        "180 = any angle); only for a task the turn leaves the same (reacher), never one with gravity in the image",
    )
    prefetch: int = _f(2, "batches prepared ahead in a background thread (0 = synchronous)")
    val_episodes: int = _f(2, "episodes held out from training for evaluation")
    reward_scale: float = _f(
        1.0, "rewards are multiplied by this before the loss (e.g. 0.02 for Two-Rooms' -distance in px)"
    )


@dataclass
class OptimConfig:
    lr: float = _f(1e-3, "peak learning rate of AdamW")
    min_lr_ratio: float = _f(0.1, "final LR as a fraction of the peak (cosine decay floor)")
    warmup_steps: int = _f(100, "linear warm-up steps")
    weight_decay: float = _f(0.01, "AdamW decoupled weight decay (not applied to biases and norms)")
    beta1: float = _f(0.9, "AdamW beta1")
    beta2: float = _f(0.99, "AdamW beta2")
    grad_clip: float = _f(1.0, "global gradient-norm clip (0 = off)")
    ema_momentum: float | None = _f(None, "target-encoder EMA momentum (null = the model's default)")
    encoder_lr_scale: float = _f(1.0, "LR multiplier for the encoder (e.g. 0.1 when fine-tuning a Stage-1 encoder)")


@dataclass
class TrainLoopConfig:
    steps: int = _f(1000, "total optimiser steps (sets the LR schedule)")
    stop_at: int = _f(0, "stop early after this step, keeping the schedule of `steps` (0 = run to `steps`)")


@dataclass
class FitConfig:
    init_encoder: str = _f(
        "", "Stage-1 checkpoint to start the encoder from ('' = random init, 'auto' = <out_dir>/pretrain)"
    )
    freeze_encoder: bool = _f(False, "keep the Stage-1 encoder frozen (else it is fine-tuned at encoder_lr_scale)")
    idm_weight: float = _f(
        0.0,
        "weight of an inverse-dynamics loss a_t <- (z_t, z_t+1) on the online encoder "
        "(training-side head; keeps small moving objects in the latent), also in pretrain",
    )
    idm_horizon: int = _f(
        1,
        "inverse-dynamics steps K: > 1 predicts the mean action over j = 1..K steps from "
        "(z_t, z_t+j) (multi-step inverse model; needs data.horizon >= K)",
    )
    reach: int = _f(60, "fit.reach_weight > 0: steps N of the temporal-distance loss (frames up to N steps apart)")
    reach_weight: float = _f(
        0.0,
        "weight of a temporal-distance loss on the online encoder: steps to a frame of the same drive up to "
        "fit.reach later (keeps where the robot is in the latent; robot bags), expectile goal.expectile",
    )


@dataclass
class CollectConfig:
    env: str = _f("two_rooms", "simulator: two_rooms | mobile_base | dmc:<domain>_<task>")
    env_kwargs: dict[str, Any] = _f({}, "keyword arguments for make_env")
    policy: str = _f(
        "walk", "data policy: walk (the env's own: Two-Rooms' random walk, the mobile base's random driving) | random"
    )
    policy_kwargs: dict[str, Any] = _f(
        {},
        "keyword arguments for the walk (moejepa_ros.sim.data_policy), e.g. "
        "{cross_prob: 0} for Two-Rooms data without deliberate door crossings",
    )
    topics: str = _f(
        "sim",
        "bag topics: sim (image, /action, /reward, /episode, /state) | robot (camera, /cmd_vel, /odom only) | "
        "arm (camera, /joint_commands, /joint_states only)",
    )
    max_steps: int | None = _f(None, "step limit per episode (null = the env's own limit)")
    episodes: int = _f(20, "episodes to record")
    workers: int = _f(1, "parallel recording processes")
    storage: str = _f("mcap", "bag storage: mcap | sqlite3")
    overwrite: bool = _f(False, "replace existing bags in <out_dir>/collect/bags")


@dataclass
class PlanConfig:
    planner: dict[str, Any] = _f({}, "PlannerConfig fields (method, samples, horizon, iterations, ...)")
    objectives: dict[str, Any] = _f(
        {}, "objectives: {name: {enabled, weight, ...}}, as planner_node's objectives.* parameters"
    )


@dataclass
class MBRLConfig:
    loop: str = _f(
        "rounds",
        "rounds: collect episodes as bags, re-fit Stage 2 on all bags, repeat (PlaNet's loop; goal tasks) | "
        "online: TD-MPC's loop on the reward, `updates_per_step` model/Q/actor updates per env step from an "
        "in-memory replay (needs model.num_q >= 1)",
    )
    env_kwargs: dict[str, Any] = _f({}, "keyword arguments for make_env (mode etc.)")
    iterations: int = _f(3, "collect -> append -> re-fit rounds (online: planner episodes after the seed ones)")
    episodes_per_iter: int = _f(4, "planner episodes appended to the replay data per round")
    fit_steps_per_iter: int = _f(200, "optimiser steps of re-fitting per round")
    max_episode_steps: int = _f(100, "step limit per planner episode")
    explore_std: float = _f(
        0.1, "Gaussian noise (fraction of the action range) added to planner actions when collecting"
    )
    explore_std_final: float = _f(
        -1.0,
        "online: the noise falls linearly from explore_std to this over explore_decay_steps env steps "
        "(TD-MPC's schedule, 0.5 to 0.05); -1 = constant explore_std",
    )
    explore_decay_steps: int = _f(25000, "online: env steps over which the explore noise falls (TD-MPC: 25000)")
    horizon_ramp_steps: int = _f(
        0,
        "online: the planner's horizon grows as int(1 + (H - 1) x env_steps / horizon_ramp_steps), H = "
        "plan.planner.horizon, in training and evaluation (TD-MPC's schedule: 25000); 0 = H throughout",
    )
    eval_every: int = _f(1, "rounds between evaluation episodes (0 = only at the end)")
    eval_episodes: int = _f(2, "closed-loop evaluation episodes")
    seed_episodes: int = _f(5, "online: episodes of uniform random actions before planning (PlaNet / TD-MPC)")
    seed_updates: int = _f(-1, "online: one burst of updates on the seed data (-1 = as many as seed env steps)")
    updates_per_step: float = _f(1.0, "online: gradient updates per environment step after the seed phase")
    tau: float = _f(0.01, "online: EMA rate of the target Q ensemble (TD-MPC's 0.01)")
    n_step: int = _f(1, "online: TD target steps n (<= data.horizon)")
    q_target: str = _f("min2", "online: TD bootstrap from the target ensemble: min2 (min of two random) | mean")
    idm_weight: float = _f(
        0.0, "online: weight of inverse dynamics a_0 <- (z_0, z_1) on the online latents (as fit.idm_weight); 0 = off"
    )
    priority_alpha: float = _f(
        0.0, "online: replay windows drawn by TD-error priority^alpha (TD-MPC: 0.6); 0 = uniform"
    )
    priority_beta: float = _f(0.4, "online: importance-weight exponent of the prioritized replay (TD-MPC: 0.4)")


@dataclass
class DistillConfig:
    checkpoint: str = _f("", "world-model checkpoint to distill (default: <out_dir>/fit latest)")
    samples: int = _f(256, "latents labelled by the planner per round")
    rounds: int = _f(2, "DAgger rounds (round 0 labels replay data; later ones the actor's own visits)")
    steps: int = _f(200, "actor optimiser steps per round")
    batch_size: int = _f(64, "labelled latents per actor step")
    lr: float = _f(1e-3, "actor learning rate")


@dataclass
class RefineConfig:
    checkpoint: str = _f("", "Stage-2 model to refine (default: <out_dir>/fit/model.safetensors)")
    steps: int = _f(3000, "predictor optimiser steps on the cached latents")
    horizon: int = _f(16, "open-loop training rollout length H (the planner imagines 20-60 steps)")
    batch_size: int = _f(128, "latent windows per step")
    lr: float = _f(1e-3, "peak learning rate (warm-up + cosine from optim.*)")
    rho: float = _f(0.9, "step j of the rollout weighs rho**(j-1) (0.5 would ignore the far steps)")
    encode_batch: int = _f(256, "frame stacks per encoder call when caching the latents")
    predictor: dict[str, Any] = _f(
        {},
        "train a new predictor of this size instead (e.g. {expert_hidden: 256}); "
        "keys: action_embed_dim, num_experts, top_k, expert_hidden, router_noise, moe_impl, dense",
    )


@dataclass
class GoalConfig:
    checkpoint: str = _f("", "world model to add the goal distance to (default: <out_dir>/refine, then fit)")
    revisit: float = _f(
        1.5, "two stacks of an episode are the same place when their latents are closer than this many median steps"
    )
    max_sources: int = _f(
        512,
        "source stacks per episode for the shortest paths (the table holds episodes x sources "
        "x longest episode floats)",
    )
    reach: int = _f(
        0,
        "0 = shortest paths through each episode's graph; N > 0 = local temporal distance: pairs up to N steps "
        "apart regress their steps at goal.expectile, pairs further apart are pushed to >= N (random driving)",
    )
    expectile: float = _f(0.25, "goal.reach > 0: expectile of the steps a displacement took (< 0.5: the quick ways)")
    steps: int = _f(20000, "optimiser steps on the cached latents")
    batch_size: int = _f(1024, "(latent, goal) pairs per step")
    lr: float = _f(3e-4, "Adam learning rate")
    p_current: float = _f(
        0.2, "share of goals that are the current stack (distance 0); the rest are uniform in the episode"
    )
    imagine_steps: int = _f(4, "also fit on predicted latents from up to this many steps back (0 = off)")
    imagine_weight: float = _f(1.0, "weight of the loss on predicted latents")
    embed_dim: int = _f(64, "goal embedding size (model_config goal_embed_dim)")
    hidden: int = _f(256, "hidden width of the goal-distance MLP")
    encode_batch: int = _f(256, "frame stacks per encoder call when caching the latents")


@dataclass
class PoseConfig:
    checkpoint: str = _f(
        "", "world model to add the relative-pose parts to (default: <out_dir>/goal, refine, then fit)"
    )
    parts: dict[str, Any] = _f(
        {},
        "model_config relative_pose fields: channels, hidden (pair pose net R and place net L), history, horizon, "
        "motion_hidden (motion model M), yaw_scale (metres per radian); {} = their defaults "
        "(moejepa_ros.model.config); `place` is the stage's choice",
    )
    steps: int = _f(3000, "pair pose net R: optimiser steps (Adam, cosine schedule)")
    batch_size: int = _f(64, "pair pose net R: image pairs per step")
    lr: float = _f(1e-3, "peak learning rate of both parts")
    beta: float = _f(0.05, "smooth-L1 beta of both parts' loss on the regressed pose vector")
    near_share: float = _f(
        0.4, "share of R's pairs at most pose.near_frames apart; the rest: any two frames of a drive"
    )
    near_frames: int = _f(8, "largest frame offset of a near pair")
    max_distance: float = _f(1.2, "R's pairs are at most this far apart (metres)")
    max_turn: float = _f(1.8, "R's pairs differ in heading by at most this much (radians)")
    motion_steps: int = _f(3000, "motion model M: optimiser steps (seconds on one core)")
    place_steps: int = _f(
        4000,
        "place net L: optimiser steps on single frames and their odometry pose (batch pose.batch_size); kept "
        "when it places held-out goals better than R (odometry in one frame across drives); 0 = no L",
    )
    motion_batch_size: int = _f(128, "motion model M: command windows per step")
    free_space: float = _f(
        0.05,
        "with L kept: cell size (metres) of the free-space map of where the drives went, which routes goals "
        "out of plain sight round obstacles (control/route.py; cells grow where the drives span more than 256); "
        "0 = no map",
    )
    skip_without_odometry: bool = _f(
        False, "true: bags without odometry skip the stage in one line (the robot recipe); false: refuse (exit 2)"
    )


@dataclass
class JointsConfig:
    checkpoint: str = _f("", "world model to add the joint-angle probe to (default: <out_dir>/goal, refine, then fit)")
    steps: int = _f(3000, "optimiser steps (Adam, cosine schedule) on the frozen model's latents")
    batch_size: int = _f(192, "latents per step: a third each recorded stacks, static stacks, imagined")
    lr: float = _f(1e-3, "peak learning rate")
    hidden: int = _f(128, "hidden width of the probe MLP (model_config joint_probe_hidden)")
    imagine_steps: int = _f(24, "also fit on latents predicted up to this many steps ahead (the planner's reach)")
    encode_batch: int = _f(256, "frame stacks per encoder call when caching the latents")


@dataclass
class EvalConfig:
    checkpoint: str = _f("", "checkpoint to evaluate (default: the latest of fit, then mbrl)")
    horizon: int = _f(8, "open-loop prediction horizon H for the latent-error curve")
    windows: int = _f(256, "held-out windows for the open-loop error")
    probe: bool = _f(True, "fit linear and MLP probes on frozen embeddings to regress the true state")
    probe_samples: int = _f(2000, "frames per probe training set")
    probe_epochs: int = _f(
        2000, "full-batch MLP probe epochs (cosine learning rate; the best on 10% held-out frames is kept)"
    )
    closed_loop_episodes: int = _f(2, "planner episodes in the simulator (0 = skip)")
    max_episode_steps: int = _f(100, "step limit per closed-loop episode")
    plots: bool = _f(True, "write PNG plots (loss curves, error vs horizon, expert heat-maps)")


@dataclass
class BaselineConfig:
    kind: str = _f("none", "none | dense | no_pretrain | pixel_recon | sac | ppo")
    recon_weight: float = _f(1.0, "pixel_recon: weight of the reconstruction loss")
    rl_steps: int = _f(20000, "sac/ppo: environment steps")
    eval_every: int = _f(
        0,
        "sac/ppo: env steps between evaluations; each also saves the agent and its replay, so the run resumes "
        "there (0: evaluate once, at the end)",
    )
    rl_env_kwargs: dict[str, Any] = _f({}, "sac/ppo: keyword arguments for make_env")


@dataclass
class ExportConfig:
    checkpoint: str = _f(
        "",
        "training checkpoint dir or model .safetensors "
        "(default: the first of distill, mbrl, pose, joints, goal, refine, fit, pretrain)",
    )
    output: str = _f("", "inference checkpoint path (default: <out_dir>/export/model.safetensors)")
    action_low: list[float] = _f([], "action lower bounds (default: from the training data / env)")
    action_high: list[float] = _f([], "action upper bounds (default: from the training data / env)")
    format: str = _f(
        "safetensors",
        "safetensors | onnx (onnx: also the encoder and a rollout step as ONNX files next to the safetensors)",
    )


@dataclass
class TrainConfig:
    run: RunConfig = field(default_factory=RunConfig)
    data: DataConfig = field(default_factory=DataConfig)
    model: dict[str, Any] = _f({}, "ModelConfig fields (latent_dim, num_experts, top_k, ...); validated by the model")
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainLoopConfig = field(default_factory=TrainLoopConfig)
    fit: FitConfig = field(default_factory=FitConfig)
    collect: CollectConfig = field(default_factory=CollectConfig)
    plan: PlanConfig = field(default_factory=PlanConfig)
    mbrl: MBRLConfig = field(default_factory=MBRLConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    refine: RefineConfig = field(default_factory=RefineConfig)
    goal: GoalConfig = field(default_factory=GoalConfig)
    pose: PoseConfig = field(default_factory=PoseConfig)
    joints: JointsConfig = field(default_factory=JointsConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    baseline: BaselineConfig = field(default_factory=BaselineConfig)
    export: ExportConfig = field(default_factory=ExportConfig)


def resolve_config_path(name: str | os.PathLike, folder: str = "train", kind: str = "config file") -> str:
    """A YAML path as given, or a bare name (`tiny`, `two_rooms.yaml`) looked up in the package's config/<folder>/."""
    name = os.fspath(name)
    if os.path.isfile(name):
        return name
    try:
        where = share.share_path("config", folder)
    except FileNotFoundError as e:
        raise ConfigError(f"{kind} '{name}' is not a file, and {e}") from e
    for cand in (name, name + ".yaml"):
        p = where / cand
        if p.is_file():
            return str(p)
    known = sorted(f.stem for f in where.glob("*.yaml"))
    raise ConfigError(f"{kind} '{name}' not found (nor in {where}; known: {known})")


def load_config(files: list[str] = (), overrides: list[str] = ()) -> TrainConfig:
    """Schema defaults <- YAML files (in order) <- `key=value` overrides; returns a validated TrainConfig.

    Mappings merge key by key, except that an override `key={}` empties the mapping (so
    `refine.predictor={}` fine-tunes the checkpoint's predictor even where a file sets one)."""
    schema = OmegaConf.structured(TrainConfig)
    layers = [schema]
    for f in files:
        path = resolve_config_path(f)
        try:
            layers.append(OmegaConf.load(path))
        except Exception as e:  # YAML syntax errors
            raise ConfigError(f"cannot parse config file {path}: {e}") from e
    bad = [o for o in overrides if "=" not in o]
    if bad:
        raise ConfigError(f"overrides must be key=value, got {bad}")
    try:
        merged = OmegaConf.merge(*layers, OmegaConf.from_dotlist(list(overrides)))
        for o in overrides:  # `key={}` clears a mapping a file set (a merge would keep its keys)
            key, value = o.split("=", 1)
            if value.strip() == "{}":
                OmegaConf.update(merged, key, {}, merge=False)
        cfg = OmegaConf.to_object(merged)
    except OmegaConfBaseException as e:
        raise ConfigError(f"bad training option: {e}") from e
    validate(cfg)
    return cfg


def grey_ranges(data: DataConfig) -> GreyRanges:
    """`data.depth_range` and `data.mono16_range` as the codecs' `GreyRanges`."""
    try:
        return GreyRanges(list(data.depth_range), list(data.mono16_range))
    except CodecError as e:
        raise ConfigError(f"data.{e}") from None


def validate(cfg: TrainConfig) -> None:
    """Range checks the types cannot express; raises ConfigError naming key and value."""

    def need(ok: bool, key: str, val: Any, what: str) -> None:
        if not ok:
            raise ConfigError(f"{key}={val!r}: {what}")

    need(
        cfg.run.device == "auto" or cfg.run.device == "cpu" or cfg.run.device.startswith("cuda"),
        "run.device",
        cfg.run.device,
        "expected auto, cpu, cuda or cuda:N",
    )
    need(
        cfg.run.precision in ("auto", "fp32", "bf16"), "run.precision", cfg.run.precision, "expected auto, fp32 or bf16"
    )
    need(cfg.run.log_every >= 1, "run.log_every", cfg.run.log_every, "must be >= 1")
    need(cfg.run.ckpt_every >= 1, "run.ckpt_every", cfg.run.ckpt_every, "must be >= 1")
    need(cfg.run.keep_ckpts >= 1, "run.keep_ckpts", cfg.run.keep_ckpts, "must be >= 1")
    need(cfg.data.horizon >= 1, "data.horizon", cfg.data.horizon, "must be >= 1")
    need(cfg.data.batch_size >= 1, "data.batch_size", cfg.data.batch_size, "must be >= 1")
    need(cfg.data.augment_shift >= 0, "data.augment_shift", cfg.data.augment_shift, "must be >= 0")
    need(0 <= cfg.data.augment_rotate <= 180, "data.augment_rotate", cfg.data.augment_rotate, "must be in [0, 180]")
    need(cfg.data.prefetch >= 0, "data.prefetch", cfg.data.prefetch, "must be >= 0")
    grey_ranges(cfg.data)
    need(cfg.optim.lr > 0, "optim.lr", cfg.optim.lr, "must be > 0")
    need(0 <= cfg.optim.min_lr_ratio <= 1, "optim.min_lr_ratio", cfg.optim.min_lr_ratio, "must be in [0, 1]")
    need(cfg.optim.warmup_steps >= 0, "optim.warmup_steps", cfg.optim.warmup_steps, "must be >= 0")
    need(cfg.optim.grad_clip >= 0, "optim.grad_clip", cfg.optim.grad_clip, "must be >= 0")
    need(
        0 <= cfg.optim.beta1 < 1 and 0 <= cfg.optim.beta2 < 1,
        "optim.beta1/beta2",
        (cfg.optim.beta1, cfg.optim.beta2),
        "must be in [0, 1)",
    )
    need(
        cfg.optim.ema_momentum is None or 0 <= cfg.optim.ema_momentum <= 1,
        "optim.ema_momentum",
        cfg.optim.ema_momentum,
        "must be in [0, 1]",
    )
    need(cfg.train.steps >= 1, "train.steps", cfg.train.steps, "must be >= 1")
    need(0 <= cfg.train.stop_at, "train.stop_at", cfg.train.stop_at, "must be >= 0")
    need(cfg.collect.episodes >= 1, "collect.episodes", cfg.collect.episodes, "must be >= 1")
    need(cfg.collect.workers >= 1, "collect.workers", cfg.collect.workers, "must be >= 1")
    need(cfg.collect.storage in ("mcap", "sqlite3"), "collect.storage", cfg.collect.storage, "expected mcap or sqlite3")
    need(cfg.collect.policy in ("walk", "random"), "collect.policy", cfg.collect.policy, "expected walk or random")
    need(
        cfg.collect.topics in ("sim", "robot", "arm"),
        "collect.topics",
        cfg.collect.topics,
        "expected sim, robot or arm",
    )
    need(cfg.baseline.kind in BASELINES, "baseline.kind", cfg.baseline.kind, f"expected one of {BASELINES}")
    need(cfg.baseline.rl_steps >= 1, "baseline.rl_steps", cfg.baseline.rl_steps, "must be >= 1")
    need(cfg.baseline.eval_every >= 0, "baseline.eval_every", cfg.baseline.eval_every, "must be >= 0")
    need(cfg.eval.horizon >= 1, "eval.horizon", cfg.eval.horizon, "must be >= 1")
    need(cfg.fit.idm_weight >= 0, "fit.idm_weight", cfg.fit.idm_weight, "must be >= 0")
    need(cfg.fit.reach_weight >= 0, "fit.reach_weight", cfg.fit.reach_weight, "must be >= 0")
    need(cfg.fit.reach >= 1, "fit.reach", cfg.fit.reach, "must be >= 1")
    need(
        1 <= cfg.fit.idm_horizon <= cfg.data.horizon,
        "fit.idm_horizon",
        cfg.fit.idm_horizon,
        f"must be in [1, data.horizon={cfg.data.horizon}]",
    )
    m = cfg.mbrl
    need(m.iterations >= 1, "mbrl.iterations", m.iterations, "must be >= 1")
    need(m.loop in ("rounds", "online"), "mbrl.loop", m.loop, "expected rounds or online")
    need(
        cfg.data.augment_rotate == 0 or m.loop == "online",
        "data.augment_rotate",
        cfg.data.augment_rotate,
        "turns only the online loop's replay: set mbrl.loop=online, or 0",
    )
    need(m.seed_episodes >= 1, "mbrl.seed_episodes", m.seed_episodes, "must be >= 1")
    need(m.seed_updates >= -1, "mbrl.seed_updates", m.seed_updates, "must be >= -1")
    need(m.updates_per_step >= 0, "mbrl.updates_per_step", m.updates_per_step, "must be >= 0")
    need(
        m.explore_std_final == -1 or m.explore_std_final >= 0,
        "mbrl.explore_std_final",
        m.explore_std_final,
        "must be >= 0, or -1 (constant explore_std)",
    )
    need(m.priority_alpha >= 0, "mbrl.priority_alpha", m.priority_alpha, "must be >= 0")
    need(0 <= m.priority_beta <= 1, "mbrl.priority_beta", m.priority_beta, "must be in [0, 1]")
    need(m.explore_decay_steps >= 1, "mbrl.explore_decay_steps", m.explore_decay_steps, "must be >= 1")
    need(m.horizon_ramp_steps >= 0, "mbrl.horizon_ramp_steps", m.horizon_ramp_steps, "must be >= 0 (0 = no ramp)")
    need(0 < m.tau <= 1, "mbrl.tau", m.tau, "must be in (0, 1]")
    need(1 <= m.n_step <= cfg.data.horizon, "mbrl.n_step", m.n_step, f"must be in [1, data.horizon={cfg.data.horizon}]")
    need(m.q_target in ("min2", "mean"), "mbrl.q_target", m.q_target, "expected min2 or mean")
    need(m.idm_weight >= 0, "mbrl.idm_weight", m.idm_weight, "must be >= 0")
    need(cfg.distill.rounds >= 1, "distill.rounds", cfg.distill.rounds, "must be >= 1")
    need(cfg.refine.steps >= 1, "refine.steps", cfg.refine.steps, "must be >= 1")
    need(cfg.refine.horizon >= 1, "refine.horizon", cfg.refine.horizon, "must be >= 1")
    need(cfg.refine.batch_size >= 1, "refine.batch_size", cfg.refine.batch_size, "must be >= 1")
    need(cfg.refine.lr > 0, "refine.lr", cfg.refine.lr, "must be > 0")
    need(0 < cfg.refine.rho <= 1, "refine.rho", cfg.refine.rho, "must be in (0, 1]")
    need(cfg.refine.encode_batch >= 1, "refine.encode_batch", cfg.refine.encode_batch, "must be >= 1")
    g = cfg.goal
    need(g.revisit > 0, "goal.revisit", g.revisit, "must be > 0")
    need(g.reach >= 0, "goal.reach", g.reach, "must be >= 0")
    need(0 < g.expectile < 1, "goal.expectile", g.expectile, "must be in (0, 1)")
    for key in ("steps", "batch_size", "embed_dim", "hidden", "encode_batch", "max_sources"):
        need(getattr(g, key) >= 1, f"goal.{key}", getattr(g, key), "must be >= 1")
    need(g.lr > 0, "goal.lr", g.lr, "must be > 0")
    need(0 <= g.p_current <= 1, "goal.p_current", g.p_current, "must be in [0, 1]")
    need(g.imagine_steps >= 0, "goal.imagine_steps", g.imagine_steps, "must be >= 0")
    need(g.imagine_weight >= 0, "goal.imagine_weight", g.imagine_weight, "must be >= 0")
    p = cfg.pose
    for key in ("steps", "batch_size", "near_frames", "motion_steps", "motion_batch_size"):
        need(getattr(p, key) >= 1, f"pose.{key}", getattr(p, key), "must be >= 1")
    for key in ("lr", "beta", "max_distance", "max_turn"):
        need(getattr(p, key) > 0, f"pose.{key}", getattr(p, key), "must be > 0")
    need(0 <= p.near_share <= 1, "pose.near_share", p.near_share, "must be in [0, 1]")
    need(p.place_steps >= 0, "pose.place_steps", p.place_steps, "must be >= 0")
    need(
        math.isfinite(p.free_space) and p.free_space >= 0,
        "pose.free_space",
        p.free_space,
        "must be a finite number >= 0",
    )
    need(
        "place" not in p.parts, "pose.parts.place", p.parts.get("place"), "is the stage's choice: set pose.place_steps"
    )
    j = cfg.joints
    for key in ("steps", "batch_size", "hidden", "encode_batch"):
        need(getattr(j, key) >= 1, f"joints.{key}", getattr(j, key), "must be >= 1")
    need(j.lr > 0, "joints.lr", j.lr, "must be > 0")
    need(j.imagine_steps >= 0, "joints.imagine_steps", j.imagine_steps, "must be >= 0")
    need(cfg.export.format in EXPORT_FORMATS, "export.format", cfg.export.format, f"must be one of {EXPORT_FORMATS}")
    if cfg.export.action_low or cfg.export.action_high:
        need(
            len(cfg.export.action_low) == len(cfg.export.action_high),
            "export.action_low/action_high",
            (cfg.export.action_low, cfg.export.action_high),
            "must have equal lengths",
        )


EXPORT_FORMATS = ("safetensors", "onnx")
BASELINES = ("none", "dense", "no_pretrain", "pixel_recon", "sac", "ppo")


def to_dict(cfg: TrainConfig) -> dict[str, Any]:
    """Plain JSON-able dict of the whole config (saved into checkpoints and run dirs)."""
    return dataclasses.asdict(cfg)


def options_help(sections: list[str] | None = None) -> str:
    """One line per option, `section.key (type, default): help`, for argparse epilogs."""
    lines = []
    for sec in dataclasses.fields(TrainConfig):
        if sections is not None and sec.name not in sections:
            continue
        if dataclasses.is_dataclass(sec.type) or isinstance(sec.default_factory, type):
            sub = sec.default_factory()  # type: ignore[misc]
            if dataclasses.is_dataclass(sub):
                lines.append(f"  {sec.name}:")
                for f in dataclasses.fields(sub):
                    d = getattr(sub, f.name)
                    t = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
                    lines.append(f"    {sec.name}.{f.name} ({t}, default {d!r}): {f.metadata.get('help', '')}")
                continue
        lines.append(f"  {sec.name} (dict): {sec.metadata.get('help', '')}")
    return "\n".join(lines)
