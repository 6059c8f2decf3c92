"""The `LatentModel` protocol the planners need, and an analytic linear model (tests, reference).

Planners only call `rollout` (required) and, when an objective asks for it, `reward`,
`value`, `q`, `cost` or `actor`, so any torch module with these methods plans the same way a
trained `WorldModel` does.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

OPTIONAL_HEADS = ("reward", "value", "q", "cost", "actor", "goal_distance", "relative_pose")


@runtime_checkable
class LatentModel(Protocol):
    """What a planner needs from a world model (see docs/interfaces.md).

    `rollout(z0[N, D], actions[N, H, A]) -> z[N, H, D]`: latents after each action.
    Optional: `reward(z, a) -> [...]` (reward for taking `a` in `z`), `value(z)`, `q(z, a) -> [M, ...]`
    (an ensemble of M action values, `a` in command units), `cost(z)`
    (energy, lower = more familiar), `actor(z) -> a` in [-1, 1] (scaled by the planner),
    `goal_distance(z, g) -> [...]` (learned steps from z to the goal latent g),
    `relative_pose` (both `relative_pose(image, goal) -> [N, 3]`, where a goal image was taken, and
    `motion(history, commands) -> [N, 3]`, where commands take the robot; the goal metric `pose`).
    """

    latent_dim: int
    action_dim: int

    def rollout(self, z0: Tensor, actions: Tensor) -> Tensor:  # pragma: no cover - protocol
        ...


def has_head(model: object, name: str) -> bool:
    """True when `model` offers the optional head `name`: listed in its `heads` when it has that
    attribute (a model whose heads depend on its config), else a callable attribute."""
    listed = getattr(model, "heads", None)
    if listed is not None:
        return name in listed
    return callable(getattr(model, name, None))


def check_model(model: object) -> None:
    """Raise a clear TypeError when `model` does not satisfy the `LatentModel` protocol."""
    missing = [n for n in ("rollout", "latent_dim", "action_dim") if not hasattr(model, n)]
    if missing:
        raise TypeError(f"model {type(model).__name__} is not a LatentModel: missing {missing}")
    if not callable(model.rollout):
        raise TypeError(f"model {type(model).__name__}.rollout is not callable")


class LinearLatentModel(torch.nn.Module):
    """z' = A z + B a, reward(z, a) = -||A z + B a - g||^2 (reward of the state reached).

    Differentiable and exactly solvable, so planner tests can compare against a closed
    form optimum. `cost(z) = ||z - g||^2` and `value(z) = -||z - g||^2` are provided too;
    `actor(z)` is a saturated proportional controller towards `g` (an optional prior).
    """

    def __init__(self, A: Tensor, B: Tensor, goal: Tensor | None = None, actor_gain: float = 1.0):
        super().__init__()
        A = torch.as_tensor(A, dtype=torch.float32)
        B = torch.as_tensor(B, dtype=torch.float32)
        if A.ndim != 2 or A.shape[0] != A.shape[1]:
            raise ValueError(f"A must be square [D, D], got {tuple(A.shape)}")
        if B.ndim != 2 or B.shape[0] != A.shape[0]:
            raise ValueError(f"B must be [D, A] with D={A.shape[0]}, got {tuple(B.shape)}")
        goal = torch.zeros(A.shape[0]) if goal is None else torch.as_tensor(goal, dtype=torch.float32)
        if goal.shape != (A.shape[0],):
            raise ValueError(f"goal must be [{A.shape[0]}], got {tuple(goal.shape)}")
        self.register_buffer("A", A)
        self.register_buffer("B", B)
        self.register_buffer("goal", goal)
        self.actor_gain = float(actor_gain)
        self.latent_dim = int(A.shape[0])
        self.action_dim = int(B.shape[1])

    def step(self, z: Tensor, a: Tensor) -> Tensor:
        return z @ self.A.T + a @ self.B.T

    def rollout(self, z0: Tensor, actions: Tensor) -> Tensor:
        if z0.ndim != 2 or actions.ndim != 3 or z0.shape[0] != actions.shape[0]:
            raise ValueError(f"rollout wants z0[N, D], actions[N, H, A]; got {tuple(z0.shape)}, {tuple(actions.shape)}")
        # B a for all steps in one matmul; only the A-recursion is sequential in H.
        drive = actions @ self.B.T
        out = []
        z = z0
        for t in range(actions.shape[1]):
            z = z @ self.A.T + drive[:, t]
            out.append(z)
        return torch.stack(out, 1)

    def reward(self, z: Tensor, a: Tensor) -> Tensor:
        return -(self.step(z, a) - self.goal).pow(2).sum(-1)

    def value(self, z: Tensor) -> Tensor:
        return -(z - self.goal).pow(2).sum(-1)

    def cost(self, z: Tensor) -> Tensor:
        return (z - self.goal).pow(2).sum(-1)

    def actor(self, z: Tensor) -> Tensor:
        # Least-squares action that moves z towards the goal in one step, squashed to [-1, 1].
        want = self.goal - z @ self.A.T
        a = torch.linalg.lstsq(self.B, want.reshape(-1, self.latent_dim).T).solution.T
        return torch.tanh(self.actor_gain * a).reshape(*z.shape[:-1], self.action_dim)
