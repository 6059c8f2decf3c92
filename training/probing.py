"""Probes on frozen embeddings: how much true state a latent holds (linear and MLP regressors).

Two-Rooms follows PLDM's protocol (Sobal et al. 2025): regress the agent's (x, y) from the
frozen encoder's latent; report MSE in px² on probe sets `normal` (layouts and positions as in
the data), `wall` (within 4 px of the wall), `wall_other` (wall positions absent from the
training data) and `expert` (long-horizon: latents *predicted* by the world model along
straight expert paths through the door, probed at every step). Other envs: a train/val split of
the cached episodes' state vectors, MSE in standardised units and R², and the linear probe's R²
per named state dim (odometry x, y, yaw: the pose; yaw as (sin, cos), so the wrap at ±π is no jump).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn


# ------------------------------------------------------------------------------ probes
def fit_linear(x: torch.Tensor, y: torch.Tensor, ridge: float = 1.0):
    """Closed-form ridge regression on standardised features (+ bias); returns a callable probe.

    Standardising makes the ridge comparable across encoders whose latents differ in scale;
    the unpenalised mean of y is the bias, so a useless latent scores the targets' variance.
    """
    mx, sx = x.mean(0), x.std(0).clamp_min(1e-6)
    my = y.mean(0)
    xs = ((x - mx) / sx).double()
    a = xs.t() @ xs + ridge * torch.eye(xs.shape[1], dtype=torch.float64)
    w = torch.linalg.solve(a, xs.t() @ (y - my).double()).float()
    return lambda q: ((q - mx) / sx) @ w + my


def fit_mlp(
    x: torch.Tensor,
    y: torch.Tensor,
    epochs: int = 200,
    hidden: int = 256,
    seed: int = 0,
    val_frac: float = 0.1,
    check_every: int = 20,
):
    """Two-layer MLP probe: full-batch Adam on standardised inputs/targets with a cosine-decayed learning
    rate, keeping the weights that score best on `val_frac` of the frames held out from its fit.

    A probe that stops short of convergence measures its own fit, not the latent: 200 epochs left the
    committed Two-Rooms model's probe at 2.35 px² on its own training frames (BENCHMARKS.md section 7.2).
    """
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(x), generator=g)
    n_val = int(len(x) * val_frac) if len(x) >= 20 else 0
    val, fit = perm[:n_val], perm[n_val:]
    mx, sx = x[fit].mean(0), x[fit].std(0).clamp_min(1e-6)
    my, sy = y[fit].mean(0), y[fit].std(0).clamp_min(1e-6)
    net = nn.Sequential(nn.Linear(x.shape[1], hidden), nn.ReLU(), nn.Linear(hidden, y.shape[1]))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * (1.0 / math.sqrt(max(1, p.shape[-1]))))
    epochs = max(1, int(epochs))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    xs, ys = (x - mx) / sx, (y - my) / sy
    best, kept = float("inf"), None
    with torch.enable_grad():
        for e in range(epochs):
            opt.zero_grad()
            loss = (net(xs[fit]) - ys[fit]).pow(2).mean()
            loss.backward()
            opt.step()
            sched.step()
            if n_val and (e % check_every == check_every - 1 or e == epochs - 1):
                with torch.no_grad():
                    v = float((net(xs[val]) - ys[val]).pow(2).mean())
                if v < best:
                    best, kept = v, {k: t.clone() for k, t in net.state_dict().items()}
    if kept is not None:
        net.load_state_dict(kept)
    net.eval()

    def probe(q):
        with torch.no_grad():
            return net((q - mx) / sx) * sy + my

    return probe


TWO_ROOMS_STATE = ("x", "y", "wall_x", "door_y")
MIN_R2 = -1.0  # reported R^2 is clipped here: below 0 a probe is worse than the mean, by how much is noise


def state_names(cache) -> list[str]:
    """The cache's state names (`state_names` in its index), Two-Rooms' for a nameless 4-d state, else s0.."""
    names = cache.state_names
    if names:
        return list(names)
    if cache.state_dim == len(TWO_ROOMS_STATE):
        return list(TWO_ROOMS_STATE)
    return [f"s{i}" for i in range(cache.state_dim or 0)]


def probe_targets(state: torch.Tensor, names: list[str]) -> dict[str, torch.Tensor]:
    """name -> target columns [N, 1] (yaw -> [N, 2] as sin, cos)."""
    out = {}
    for i, n in enumerate(names):
        col = state[:, i : i + 1]
        out[n] = torch.cat([col.sin(), col.cos()], 1) if n == "yaw" else col
    return out


def r2(pred: torch.Tensor, y: torch.Tensor) -> float | None:
    """1 - SSE / SST summed over the target's columns (SST about the test targets' own mean), clipped at
    `MIN_R2`; None when the targets do not vary (nothing to explain)."""
    sst = float((y - y.mean(0)).pow(2).sum())
    if not sst > 1e-9 * len(y):
        return None
    return max(MIN_R2, 1.0 - float((pred - y).pow(2).sum()) / sst)


def probe_r2(z_fit, s_fit, z_test, s_test, names: list[str]) -> dict[str, float]:
    """Per state dim: R^2 on (z_test, s_test) of a ridge probe fitted on (z_fit, s_fit); NaN rows skipped,
    dims constant in the test set left out."""
    out = {}
    ok_fit, ok_test = torch.isfinite(s_fit).all(1), torch.isfinite(s_test).all(1)
    if ok_fit.sum() < 2 or ok_test.sum() < 2:
        return out
    fit_y = probe_targets(s_fit[ok_fit], names)
    test_y = probe_targets(s_test[ok_test], names)
    for n in names:
        pr = fit_linear(z_fit[ok_fit], fit_y[n])
        score = r2(pr(z_test[ok_test]), test_y[n])
        if score is not None:
            out[n] = round(score, 4)
    return out


def mse(pred: torch.Tensor, y: torch.Tensor) -> float:
    """Mean over samples of the squared error summed over target dims (px² for positions)."""
    return float((pred - y).pow(2).sum(-1).mean())


@torch.no_grad()
def embed(model, stacks: np.ndarray, batch: int = 256) -> torch.Tensor:
    """Online-encoder latents of uint8 stacks [N, k, H, W, 3]."""
    out = []
    for i in range(0, len(stacks), batch):
        out.append(model.encode(torch.from_numpy(np.ascontiguousarray(stacks[i : i + batch]))).float().cpu())
    return torch.cat(out) if out else torch.zeros(0, model.latent_dim)


def cache_stacks(
    cache, episodes: np.ndarray, k: int, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n random (stack [k,H,W,3], state at its last frame, action after it) from cached episodes."""
    eps = [int(e) for e in episodes if cache.episode_lengths[e] >= k]
    if not eps:
        raise ValueError(f"no cached episode has {k} frames for probing")
    lens = np.array([cache.episode_lengths[e] - k + 1 for e in eps], np.float64)
    pick = rng.choice(len(eps), size=n, p=lens / lens.sum())
    stacks, states, actions = [], [], []
    for i in pick:
        e = eps[i]
        t = int(rng.integers(0, cache.episode_lengths[e] - k + 1))
        s0 = int(cache.episode_starts[e]) + t
        k_sh = int(cache.episode_shard[e])
        loc = s0 - int(cache.shard_offsets[k_sh])
        stacks.append(np.asarray(cache.frames[k_sh][loc : loc + k]))
        states.append(cache.state[s0 + k - 1] if cache.state is not None else np.zeros(0, np.float32))
        actions.append(cache.actions[s0 + k - 1])
    return np.stack(stacks), np.stack(states).astype(np.float32), np.stack(actions).astype(np.float32)


# ------------------------------------------------------------------------- Two-Rooms
def _free_pos(rng, wall_x: int, door_y: int, near_wall: bool = False) -> tuple[float, float]:
    from moejepa_ros.sim.two_rooms import ARENA_HI, ARENA_LO, WALL_HALF, is_free

    for _ in range(1000):
        if near_wall:
            x = wall_x + rng.choice([-1, 1]) * rng.uniform(WALL_HALF + 0.2, WALL_HALF + 4.0)
        else:
            x = rng.uniform(ARENA_LO + 1, ARENA_HI - 1)
        y = rng.uniform(ARENA_LO + 1, ARENA_HI - 1)
        if is_free(x, y, wall_x, door_y):
            return float(x), float(y)
    raise RuntimeError("no free position found")


def _stack_at(rng, p, wall_x: int, door_y: int, k: int) -> np.ndarray:
    """Frames of a short straight approach ending at p (moving stacks, like the data)."""
    from moejepa_ros.sim.two_rooms import move, render_frame

    ang = rng.uniform(-math.pi, math.pi)
    step = rng.uniform(0.3, 1.8)
    back = [p]
    for _ in range(k - 1):
        q = back[-1]
        back.append(move(q[0], q[1], -step * math.cos(ang), -step * math.sin(ang), wall_x, door_y))
    return np.stack([render_frame(q, wall_x, door_y) for q in reversed(back)])


def two_rooms_sets(n: int, k: int, seen_walls: list[int], rng: np.random.Generator) -> dict[str, tuple]:
    """Probe sets name -> (stacks [N,k,64,64,3], xy [N,2]); `wall_other` needs unseen wall positions."""
    from moejepa_ros.sim.two_rooms import DOOR_Y_RANGE, WALL_X_RANGE

    all_walls = list(range(WALL_X_RANGE[0], WALL_X_RANGE[1] + 1))
    other = [w for w in all_walls if w not in set(seen_walls)]
    seen = list(seen_walls) or all_walls
    sets: dict[str, tuple] = {}
    for name, walls, near in (("normal", seen, False), ("wall", seen, True), ("wall_other", other, False)):
        if not walls:
            continue
        st, xy = [], []
        for _ in range(n):
            wx = int(rng.choice(walls))
            dy = int(rng.integers(DOOR_Y_RANGE[0], DOOR_Y_RANGE[1] + 1))
            p = _free_pos(rng, wx, dy, near)
            st.append(_stack_at(rng, p, wx, dy, k))
            xy.append(p)
        sets[name] = (np.stack(st), np.asarray(xy, np.float32))
    return sets


def expert_paths(n: int, k: int, length: int, seen_walls: list[int], rng: np.random.Generator):
    """Straight-line paths room -> door -> other room: (start stacks, actions [N,L,2], xy [N,L,2])."""
    from moejepa_ros.sim.two_rooms import DOOR_Y_RANGE, MAX_ACTION, WALL_HALF, move

    walls = list(seen_walls) or [32]
    stacks, acts, xys = [], [], []
    for _ in range(n):
        wx = int(rng.choice(walls))
        dy = int(rng.integers(DOOR_Y_RANGE[0], DOOR_Y_RANGE[1] + 1))
        side = rng.choice([-1, 1])
        start = (wx + side * rng.uniform(8, 14), float(np.clip(dy + rng.uniform(-12, 12), 4, 59)))
        waypoints = [
            (wx + side * (WALL_HALF + 3), dy),
            (wx - side * (WALL_HALF + 3), dy),
            (wx - side * 12.0, float(np.clip(dy + rng.uniform(-12, 12), 4, 59))),
        ]
        p, a_l, xy_l = start, [], []
        speed = 0.8 * MAX_ACTION
        for _t in range(length):
            while waypoints and math.hypot(waypoints[0][0] - p[0], waypoints[0][1] - p[1]) < 0.5:
                waypoints.pop(0)
            tgt = waypoints[0] if waypoints else p
            d = (tgt[0] - p[0], tgt[1] - p[1])
            nd = math.hypot(*d)
            a = (0.0, 0.0) if nd < 1e-6 else (d[0] / nd * min(speed, nd), d[1] / nd * min(speed, nd))
            p = move(p[0], p[1], a[0], a[1], wx, dy)
            a_l.append(a)
            xy_l.append(p)
        stacks.append(_stack_at(rng, start, wx, dy, k))
        acts.append(a_l)
        xys.append(xy_l)
    return np.stack(stacks), np.asarray(acts, np.float32), np.asarray(xys, np.float32)


@torch.no_grad()
def probe_two_rooms(
    model, data, n_train: int, epochs: int, seed: int = 0, n_test: int = 200, expert_len: int = 16
) -> dict[str, dict]:
    """PLDM-style probe MSEs (px²) for linear and MLP probes on the model's frozen encoder."""
    rng = np.random.default_rng(seed)
    k = model.cfg.frame_stack
    cache = data.cache
    stacks, states, _ = cache_stacks(cache, data.train_episodes, k, n_train, rng)
    x, y = embed(model, stacks), torch.from_numpy(states[:, :2])
    seen = sorted({int(round(v)) for v in cache.state[:, 2][np.isfinite(cache.state[:, 2])]})
    probes = {"linear": fit_linear(x, y), "mlp": fit_mlp(x, y, epochs, seed=seed)}
    sets = two_rooms_sets(n_test, k, seen, rng)
    res: dict[str, dict] = {name: {} for name in probes}
    for sname, (st, xy) in sets.items():
        z = embed(model, st)
        for pname, pr in probes.items():
            res[pname][sname] = mse(pr(z), torch.from_numpy(xy))
    st, acts, xy = expert_paths(max(8, n_test // 8), k, expert_len, seen, rng)
    z0 = embed(model, st)
    pred = model.rollout(z0, torch.from_numpy(acts)).float()  # [N, L, D]
    for pname, pr in probes.items():
        res[pname]["expert"] = mse(pr(pred.reshape(-1, pred.shape[-1])), torch.from_numpy(xy.reshape(-1, 2)))
    res["info"] = {
        "train_frames": int(n_train),
        "test_per_set": int(n_test),
        "expert_len": expert_len,
        "seen_wall_x": seen,
        "units": "px^2 (x, y)",
    }
    return res


@torch.no_grad()
def probe_generic(model, data, n_train: int, epochs: int, seed: int = 0) -> dict[str, dict]:
    """Probe the full state vector: train on training episodes, test on validation episodes."""
    rng = np.random.default_rng(seed)
    k = model.cfg.frame_stack
    test_eps = data.val_episodes if len(data.val_episodes) else data.train_episodes
    st, s, _ = cache_stacks(data.cache, data.train_episodes, k, n_train, rng)
    st2, s2, _ = cache_stacks(data.cache, test_eps, k, max(64, n_train // 4), rng)
    ok, ok2 = np.isfinite(s).all(1), np.isfinite(s2).all(1)
    mu, sd = s[ok].mean(0), s[ok].std(0) + 1e-6
    y, y2 = torch.from_numpy((s[ok] - mu) / sd), torch.from_numpy((s2[ok2] - mu) / sd)
    x, x2 = embed(model, st[ok]), embed(model, st2[ok2])
    res: dict[str, dict] = {}
    for pname, pr in (("linear", fit_linear(x, y)), ("mlp", fit_mlp(x, y, epochs, seed=seed))):
        m = mse(pr(x2), y2) / y.shape[1]
        res[pname] = {"normal": m, "r2": 1.0 - m / float(y2.var(0).mean().clamp_min(1e-9))}
    names = state_names(data.cache)
    res["linear"]["r2_per_dim"] = probe_r2(x, torch.from_numpy(s[ok]), x2, torch.from_numpy(s2[ok2]), names)
    res["info"] = {"units": "standardised state, mean over dims; r2_per_dim: raw state, yaw as (sin, cos)"}
    return res


def probe(model, data, n_train: int, epochs: int, seed: int = 0, two_rooms: bool | None = None):
    if data.cache.state is None:
        return {"skipped": "the data has no /state topic"}
    if two_rooms is None:
        two_rooms = data.cache.state_dim == 4
    return (probe_two_rooms if two_rooms else probe_generic)(model, data, n_train, epochs, seed)
