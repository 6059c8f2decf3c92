"""Shortest paths through an episode's own graph (the `goal` command's targets)."""

import numpy as np
import pytest
import torch

from training.goal_distance import graph_distances


def walk(xs):
    return torch.tensor([[float(x), 0.0] for x in xs])


def test_consecutive_steps_count_one_each():
    z = walk([0, 1, 2, 3, 4, 5])
    d = graph_distances(z, np.array([0, 2]), step=1.0, revisit=0.5)
    assert d.shape == (2, 6)
    assert np.allclose(d[0], [0, 1, 2, 3, 4, 5]) and np.allclose(d[1], [2, 1, 0, 1, 2, 3])


def test_a_revisit_is_a_shortcut():
    """Out to 4 and back: the last latent is the first place again, so it is ~0 steps from the start,
    not 8; coming back 0.7 beside the way out, beyond the 0.5 radius, takes no shortcut."""
    z = walk([0, 1, 2, 3, 4, 3, 2, 1, 0.05])
    near = graph_distances(z, np.array([0]), step=1.0, revisit=0.5)[0]
    assert near[8] == pytest.approx(0.05, abs=1e-6) and near[7] == pytest.approx(1.0, abs=0.01)
    back = torch.tensor([[3.0, 0.7], [2.0, 0.7], [1.0, 0.7], [0.0, 0.7]])  # 0.7 beside the way out
    far = graph_distances(torch.cat([walk([0, 1, 2, 3, 4]), back]), np.array([0]), step=1.0, revisit=0.5)[0]
    assert far[8] == pytest.approx(8.0)


def test_step_scales_the_shortcut_and_the_distance_is_symmetric():
    z = walk([0, 2, 4, 6, 4.5, 0.4])
    d = graph_distances(z, np.arange(6), step=2.0, revisit=0.5)
    assert d[0, 5] == pytest.approx(0.2)  # ||0 - 0.4|| / 2
    assert np.allclose(d, d.T)
