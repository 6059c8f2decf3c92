"""Tiny and small real world models and planner settings for tests (untrained: behaviour, not skill)."""

import torch

from moejepa_ros.model import ModelConfig, WorldModel

#: A small CEM budget and a goal-only objective: fast enough for many test plans.
PLANNER = {"samples": 16, "elites": 4, "keep_elites": 2, "horizon": 3, "iterations": 2}
GOAL_ONLY = {"goal": {"enabled": True, "weight": 1.0}}
#: Asymmetric bounds, so a clamp that mixes up the axes shows.
LOW, HIGH = [-1.0, -2.0], [1.0, 2.0]

#: 2 experts, top-1, a 16-d latent over the default 64x64 RGB stacks of 3 frames: a node or planner runs it fast.
TINY = dict(
    conv_channels=[8, 8, 8, 8],
    latent_dim=16,
    expert_hidden=16,
    num_experts=2,
    top_k=1,
    head_hidden=16,
    stage1_hidden=16,
    action_embed_dim=8,
)
#: `moejepa-train mbrl -c dmc` overrides for a seconds-long online loop (a tiny model, batch and planner).
TINY_DMC_AGENT = [
    "run.threads=1",
    "run.progress=false",
    "model.latent_dim=16",
    "model.conv_channels=[8,8,8,8]",
    "model.expert_hidden=16",
    "model.head_hidden=16",
    "model.stage1_hidden=16",
    "model.action_embed_dim=8",
    "data.batch_size=4",
    "plan.planner.samples=16",
    "plan.planner.elites=4",
    "plan.planner.keep_elites=2",
    "plan.planner.iterations=2",
    "plan.planner.policy_prior_samples=2",
    "mbrl.seed_updates=3",
    "mbrl.max_episode_steps=6",
]
#: A 32-d latent over 16x16 RGB: small enough to train for hundreds of steps in a unit test.
SMALL = dict(
    image_size=16,
    conv_channels=[8, 16],
    latent_dim=32,
    expert_hidden=32,
    head_hidden=32,
    stage1_hidden=32,
    action_embed_dim=8,
)


#: `plan.*` overrides for a bench that plays tiny DMC agents (`tiny_dmc_checkpoint`): one small CEM iteration.
TINY_DMC_PLANNER = [
    "plan.planner.samples=32",
    "plan.planner.iterations=1",
    "plan.planner.elites=4",
    "plan.planner.policy_prior_samples=4",
]


def tiny_dmc_checkpoint(path, action_dim: int, training: dict | None = None) -> WorldModel:
    """Save an untrained tiny DMC agent (16-d latent, two Q heads, actions in [-1, 1]) at `path`, with
    `training` as its checkpoint's training metadata when given; returns the model."""
    from moejepa_ros.model.checkpoint import save_checkpoint

    cfg = ModelConfig(
        latent_dim=16, conv_channels=[8, 8, 8, 8], expert_hidden=16, head_hidden=16, stage1_hidden=16, num_q=2
    )
    cfg.action_dim = action_dim
    model = WorldModel(cfg)
    meta = {"action_low": [-1.0] * action_dim, "action_high": [1.0] * action_dim}
    save_checkpoint(path, model, {**meta, "training": training} if training is not None else meta)
    return model


def tiny_config(**overrides) -> ModelConfig:
    """`TINY`, then `overrides`."""
    return ModelConfig(**{**TINY, **overrides})


def small_config(**overrides) -> ModelConfig:
    """`SMALL`, then `overrides`."""
    return ModelConfig(**{**SMALL, **overrides})


def tiny_model(seed: int = 0, **overrides) -> WorldModel:
    """A seeded `tiny_config(**overrides)` world model, in eval mode."""
    torch.manual_seed(seed)
    return WorldModel(tiny_config(**overrides)).eval()


def straight_driving_model(step_m: float, **relative_pose) -> WorldModel:
    """`tiny_model` with relative-pose parts whose motion model says any commands drive `step_m` metres straight
    ahead (its output layer zeroed, its bias that pose): the goal tracker's and pose planners' known motion."""
    from moejepa_ros.model.relative_pose import pose_to_vector

    model = tiny_model(relative_pose=relative_pose)
    last = model.motion_model.net[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(pose_to_vector(torch.tensor([step_m, 0.0, 0.0]), model.cfg.relative_pose.yaw_scale))
    return model
