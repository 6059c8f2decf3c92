"""A tiny real world model and planner settings for control-step tests (untrained: behaviour, not skill)."""

import torch

from moejepa_ros.model import ModelConfig, WorldModel

#: A small CEM budget and a goal-only objective: fast enough for many test plans.
PLANNER = {"samples": 16, "elites": 4, "keep_elites": 2, "horizon": 3, "iterations": 2}
GOAL_ONLY = {"goal": {"enabled": True, "weight": 1.0}}
#: Asymmetric bounds, so a clamp that mixes up the axes shows.
LOW, HIGH = [-1.0, -2.0], [1.0, 2.0]


def tiny_model(seed: int = 0) -> WorldModel:
    """A 2-expert top-1 world model with a 16-d latent over 64x64 RGB stacks of 3 frames, in eval mode."""
    torch.manual_seed(seed)
    return WorldModel(
        ModelConfig(
            conv_channels=[8, 8, 8, 8],
            latent_dim=16,
            expert_hidden=16,
            num_experts=2,
            top_k=1,
            head_hidden=16,
            stage1_hidden=16,
            action_embed_dim=8,
        )
    ).eval()
