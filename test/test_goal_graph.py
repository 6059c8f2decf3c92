"""Shortest paths through an episode's own graph (the `goal` command's targets)."""
import numpy as np
import pytest
import torch

from training.goal_distance import graph_distances, near_places


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


def test_near_places_skip_the_walk_and_find_the_other_side_of_a_wall():
    """A U-shaped walk: out along y = 0, back along y = 0.3 (the wall's other side). The nearest places of
    a source are the ones across, not its neighbours on the graph, and a short episode pads with -1."""
    out = walk([0, 1, 2, 3, 4])
    back = torch.tensor([[4.0, 0.3], [3.0, 0.3], [2.0, 0.3], [1.0, 0.3], [0.0, 0.3]])
    z = torch.cat([out, back])
    src = np.array([1, 3])
    steps = graph_distances(z, src, step=1.0, revisit=0.1)
    near = near_places(z, src, k=2, gap=1.5, steps=steps)
    assert near.shape == (2, 2)
    assert near[0, 0] == 8 and near[1, 0] == 6  # (1, 0) faces (1, 0.3); (3, 0) faces (3, 0.3)
    assert (steps[np.arange(2)[:, None], near] > 1.5).all()  # never within the gap by the graph
    short = walk([0, 1, 2])
    assert (near_places(short, np.array([0]), 4, 1.5, graph_distances(short, np.array([0]), 1.0, 0.1))
            == np.array([[2, -1, -1]])).all()


def test_sampler_draws_near_place_goals_with_their_graph_distance():
    """With p_near = 1 the sampled goals are the near places, and their targets are the long way round."""
    from training.goal_distance import _Flat, _Graph
    z = torch.cat([walk([0, 1, 2, 3, 4]), torch.tensor([[4.0, 0.3], [3.0, 0.3], [2.0, 0.3], [1.0, 0.3], [0.0, 0.3]])])
    flat = _Flat([z], [z], [torch.zeros(len(z), 2)])
    graph = _Graph(flat, step=1.0, revisit=0.1, max_sources=8, first=0, gen=np.random.default_rng(0), near_k=1,
                   near_gap=1.5)
    s, t, gt, tgt = graph.sample(flat, 256, 0.0, torch.Generator().manual_seed(0), p_near=1.0)
    assert len(t) == 256 and (gt - t).abs().min() > 1
    cross = (t <= 4) & (gt == 9 - t)  # the place facing t across the gap
    assert cross.float().mean() > 0.5 and torch.allclose(tgt[cross], (gt[cross] - t[cross]).abs().float())
