"""`goal`: learn a trained world model's goal distance d(z, g) from its recorded trajectories.

The L2 distance between latents is a straight-line distance: a goal behind a wall looks near, and
a planner that follows it presses against the wall. The goal-distance head φ (`GoalDistanceHead`)
is trained so that ||φ(z) - φ(g)|| approximates the number of steps from z to g along the ways the
robot has actually travelled:

- Each episode is a graph: consecutive stacks are one step apart, and wherever the walk came back
  to a place it had been (static-stack latents closer than `goal.revisit` median steps) the two
  visits are joined. Shortest paths through that graph (Dijkstra) are the targets, so a goal in
  the other room is as far as the way through the door. The places are the static-stack latents
  (one frame repeated k times): blind to velocity, so a revisit counts whichever way the walk was
  heading, and exactly how the planner node encodes a goal image.
- The head regresses the targets with a squared error relative to the target, so near goals
  count as much as far ones; goals are the current stack (distance 0) or uniform in the episode.
- The planner evaluates d on *imagined* latents. Every step also fits ẑ_t, the frozen predictor's
  open-loop prediction of z_t from z_{t-j} (1 <= j <= imagine_steps) under the recorded actions,
  to the same target, so the head is trained where the planner uses it.
- Encoder, predictor and the other heads stay bit-identical (checked before saving).
- Like `fit` and `refine` it checkpoints every `run.ckpt_every` steps under `<out_dir>/goal/ckpt` and
  resumes exactly (`run.resume`); resuming with other `goal.*` options is refused in one line.

The expectile-TD alternative (HILP, Park et al. 2024) learned the straight-line distance on the
Two-Rooms walks (BENCHMARKS.md section 7.3), so it is not offered.

`goal.reach=N` (N > 0) learns a *local* temporal distance instead, for data such as a robot's
random driving, where a place is seldom revisited with the same view (a forward camera sees a
place differently from every heading, so revisits are not found and the graph's paths are the
drives' detours): a pair N steps apart or less regresses its step count j at a low expectile
(`goal.expectile`, the quick ways there: the same displacement took j steps on a detour and fewer
on a straight drive), and a pair further apart, or from another drive, is pushed to at least N.
Turning takes steps as driving does, so the distance weighs heading against position in the
robot's own time. Planning goals lie within N steps (far ones read as "N or more").
"""

from __future__ import annotations

import os
import time

import numpy as np
import torch

from moejepa_ros.model.checkpoint import load_checkpoint, save_derived

from .aux_losses import expectile_sq
from .config import ConfigError, TrainConfig, to_dict
from .datasets import open_data, run_subdir
from .export import find_model
from .logging_utils import RunLogger, log
from .model_part import check_unchanged, train_only, with_new_part
from .optim import make_optimizer
from .refine import encode_episodes, encode_stacks
from .run_dir import move_aside, record, resume_path
from .train_state import CheckpointManager, ResumeError, capture_rng, restore_rng, unflatten_optimizer


@torch.no_grad()
def encode_goal_stacks(model, cache, episodes, batch: int, device: torch.device) -> list[torch.Tensor]:
    """Per episode: latents of static stacks (frame t repeated k times) for t = k-1 .. T-1."""
    k = model.cfg.frame_stack
    out = []
    for e in episodes:
        ep = cache.episode(int(e))
        if len(ep.frames) < k + 1:
            continue
        frames = torch.from_numpy(ep.frames[k - 1 :])
        out.append(encode_stacks(model, frames[:, None].expand(-1, k, -1, -1, -1), batch, device))
    return out


def graph_distances(z: torch.Tensor, sources: np.ndarray, step: float, revisit: float) -> np.ndarray:
    """Steps from each source to every latent of one episode [S, T], through the episode's own
    graph: an edge of 1 between consecutive latents, and an edge of ||z_i - z_j|| / step wherever the
    walk came back within `revisit` median steps of an earlier latent (inf where unreachable).
    `z` are the static-stack (place) latents."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import dijkstra

    n = len(z)
    rows, cols, w = [np.arange(n - 1)], [np.arange(1, n)], [np.ones(n - 1)]
    d = torch.cdist(z[None].double(), z[None].double())[0].numpy() / step
    i, j = np.nonzero(np.triu(d < revisit, k=2))
    rows.append(i), cols.append(j), w.append(np.maximum(d[i, j], 1e-3))
    graph = coo_matrix((np.concatenate(w), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)).tocsr()
    return dijkstra(graph, directed=False, indices=sources).astype(np.float32)


class _Flat:
    """Episodes' tensors concatenated, with per-episode start offsets, for batched indexing."""

    def __init__(self, zs, gs, acts):
        self.z, self.g, self.a = torch.cat(zs), torch.cat(gs), torch.cat(acts)
        lens = torch.tensor([len(z) for z in zs])
        self.start = torch.cumsum(lens, 0) - lens
        self.len = lens


def _imagined(model, d: _Flat, zi, j: int) -> torch.Tensor:
    """ẑ at flat indices `zi`, predicted open loop from j steps earlier under the recorded actions (each
    index at least j steps into its episode)."""
    acts = torch.stack([d.a[zi - j + i] for i in range(j)], dim=1)
    return model.predictor.rollout(d.z[zi - j], acts)[:, -1]


class _Graph:
    """Per-episode shortest-path steps from sampled source stacks, padded into one [E, S, T] table."""

    def __init__(self, d: _Flat, step: float, revisit: float, max_sources: int, first: int, gen: np.random.Generator):
        n_max = int(d.len.max())
        src_max = min(max_sources, max(n_max - 1 - first, 1))
        self.src = torch.zeros(len(d.len), src_max, dtype=torch.long)
        self.dist = torch.full((len(d.len), src_max, n_max), float("inf"))
        self.count = torch.zeros(len(d.len), dtype=torch.float64)
        for e in range(len(d.len)):
            n, s0 = int(d.len[e]), int(d.start[e])
            cand = np.arange(first, n - 1)
            src = np.sort(gen.choice(cand, min(len(cand), max_sources), replace=False))
            self.src[e, : len(src)] = torch.from_numpy(src)
            self.dist[e, : len(src), :n] = torch.from_numpy(graph_distances(d.g[s0 : s0 + n], src, step, revisit))
            self.count[e] = len(src)

    def sample(self, d: _Flat, batch: int, p_current: float, gen: torch.Generator):
        """(flat index of z, flat index of the goal, steps from z to the goal, near mask (all true)) for
        `batch` finite pairs or fewer."""
        ep = torch.multinomial(self.count, batch, replacement=True, generator=gen)
        row = (torch.rand(batch, generator=gen) * self.count[ep]).long()
        t = self.src[ep, row]
        uniform = (torch.rand(batch, generator=gen) * d.len[ep]).long()
        gt = torch.where(torch.rand(batch, generator=gen) < p_current, t, uniform)
        tgt = self.dist[ep, row, gt]
        ok = torch.isfinite(tgt)
        s = d.start[ep][ok]
        return s + t[ok], s + gt[ok], tgt[ok], torch.ones(int(ok.sum()), dtype=torch.bool)

    @staticmethod
    def loss(head, z, g, tgt, near, expectile: float) -> torch.Tensor:
        """Squared error relative to the target (+1 step), so near pairs count as much as far ones."""
        return ((head(z, g) - tgt).pow(2) / (tgt + 1.0)).mean()


class _Local:
    """Pairs for `goal.reach`: (z_t, g_{t+j}) with j <= reach steps in one drive, and far pairs."""

    def __init__(self, d: _Flat, reach: int, first: int):
        self.reach, self.first = int(reach), int(first)
        self.count = (d.len - first).clamp(min=0).double()

    def sample(self, d: _Flat, batch: int, p_current: float, gen: torch.Generator):
        """(z index, goal index, target steps, near mask): near pairs have target j, far ones target reach."""
        ep = torch.multinomial(self.count, batch, replacement=True, generator=gen)
        t = self.first + (torch.rand(batch, generator=gen) * self.count[ep]).long()
        j = torch.randint(0, self.reach + 1, (batch,), generator=gen)
        j = torch.where(torch.rand(batch, generator=gen) < p_current, torch.zeros_like(j), j)
        j = torch.minimum(j, d.len[ep] - 1 - t)
        zi, gi = d.start[ep] + t, d.start[ep] + t + j
        far = torch.rand(batch, generator=gen) < 0.25  # a quarter: a goal anywhere else in the data
        other = torch.randint(0, len(d.g), (batch,), generator=gen)
        same = (other >= d.start[ep]) & (other < d.start[ep] + d.len[ep])
        far &= ~same | ((other - zi).abs() > self.reach)
        gi = torch.where(far, other, gi)
        tgt = torch.where(far, torch.full_like(j, self.reach), j).float()
        return zi, gi, tgt, ~far

    @staticmethod
    def loss(head, z, g, tgt, near, expectile: float) -> torch.Tensor:
        """Near pairs: expectile regression of the steps (relative to them); far pairs: at least `reach`."""
        d = head(z, g)
        far_l = torch.relu(tgt - d).pow(2)
        return (torch.where(near, expectile_sq(tgt - d, expectile), far_l) / (tgt + 1.0)).mean()


@torch.no_grad()
def _held_out(model, head, d: _Flat, graph: _Graph | _Local, imagine_steps: int, seed: int) -> dict:
    """On held-out episodes: mean |d - target| / (target + 1), and how far d on imagined latents is from d on
    real ones."""
    gen = torch.Generator().manual_seed(seed)
    zi, gi, tgt, near = graph.sample(d, 4096, 0.0, gen)
    zi, gi, tgt = zi[near], gi[near], tgt[near]
    z, g = d.z[zi], d.g[gi]
    pred = head(z, g)
    out = {
        "relative_error": round(float(((pred - tgt).abs() / (tgt + 1.0)).mean()), 4),
        "mean_steps": round(float(tgt.mean()), 2),
        "mean_distance": round(float(pred.mean()), 2),
    }
    if imagine_steps:
        z_hat = _imagined(model, d, zi, imagine_steps)
        out[f"imagined_gap_h{imagine_steps}"] = round(float((head(z_hat, g) - pred).abs().mean() / pred.mean()), 4)
    return out


def _fit(
    model, head, opt, d: _Flat, graph: _Graph | _Local, gc, log_every: int, gen, logger: RunLogger, start, curve, save
) -> list:
    """Steps start+1 .. goal.steps; `save(step)` writes a checkpoint every `run.ckpt_every` steps and at the end."""
    head.train()
    for step in range(start + 1, gc.steps + 1):
        zi, gi, tgt, near = graph.sample(d, gc.batch_size, gc.p_current, gen)
        g = d.g[gi]
        loss = graph.loss(head, d.z[zi], g, tgt, near, gc.expectile)
        if gc.imagine_steps:
            j = int(torch.randint(1, gc.imagine_steps + 1, (1,), generator=gen))
            with torch.no_grad():
                z_hat = _imagined(model, d, zi, j)
            loss = loss + gc.imagine_weight * graph.loss(head, z_hat, g, tgt, near, gc.expectile)
        _step(opt, loss, step)
        logger.progress(1)
        if step % log_every == 0 or step == gc.steps:
            curve.append((step, float(loss.detach())))
            logger.scalars(step, {"loss/goal": curve[-1][1]})
            log.info("goal step %d/%d loss %.4f", step, gc.steps, curve[-1][1])
        save(step)
    return curve


def _resume(path: str, ckpt: CheckpointManager, cfg: TrainConfig, src: str, model, opt, gen) -> dict:
    """Load a goal checkpoint into the head, optimiser and generator; returns its state.json."""
    from safetensors.torch import load_file

    js, tensors = ckpt.load(path)
    again = "run.resume=never moves the old run aside and starts afresh"
    if js.get("stage") != "goal" or js.get("source") != os.path.abspath(src):
        raise ResumeError(f"{path}: a {js.get('stage')} checkpoint of {js.get('source')}, not a goal of {src}; {again}")
    old, new = js["config"]["goal"], to_dict(cfg)["goal"]
    changed = [f"goal.{k}: {old.get(k)} -> {v}" for k, v in new.items() if old.get(k) != v and k != "steps"]
    if changed:
        raise ResumeError(f"{path}: cannot resume with changed goal options ({'; '.join(changed)}); {again}")
    model.load_state_dict(load_file(os.path.join(path, "model.safetensors")))
    unflatten_optimizer(opt, js["optimizer"], tensors)
    gen.set_state(torch.tensor(js["generator"], dtype=torch.uint8))
    restore_rng(js["rng"])
    log.info("resumed from %s at step %d", path, js["step"])
    return js


def _step(opt, loss: torch.Tensor, step: int) -> None:
    if not torch.isfinite(loss):
        raise FloatingPointError(f"goal: non-finite loss at step {step}")
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def goal_distance(cfg: TrainConfig, device: torch.device) -> dict:
    gc = cfg.goal
    src = find_model(cfg, gc.checkpoint, order=("refine", "fit"))
    base, meta = load_checkpoint(src, device)
    model = with_new_part(
        base, "goal_head.", {"goal_embed_dim": gc.embed_dim, "goal_hidden": gc.hidden}, cfg.run.seed, device
    )
    model.eval()
    data = open_data(cfg, model.cfg.image_size, model.cfg.frame_stack + 1)
    t0 = time.perf_counter()
    parts = {}
    for name, eps in (("train", data.train_episodes), ("val", data.val_episodes)):
        zs, acts = encode_episodes(model, data.cache, eps, gc.encode_batch, device)
        gs = encode_goal_stacks(model, data.cache, eps, gc.encode_batch, device)
        keep = [i for i, z in enumerate(zs) if len(z) > gc.imagine_steps + 1]
        if not keep:
            raise ConfigError(
                f"goal.imagine_steps={gc.imagine_steps}: no {name} episode has {gc.imagine_steps + 2} frame stacks"
            )
        parts[name] = _Flat([zs[i] for i in keep], [gs[i] for i in keep], [acts[i] for i in keep])
    encode_s = time.perf_counter() - t0
    frozen = train_only(model, "goal_head.")
    head = model.goal_head
    opt = make_optimizer(head, gc.lr, 0.0, (cfg.optim.beta1, cfg.optim.beta2))
    gen = torch.Generator().manual_seed(cfg.run.seed)
    first = max(gc.imagine_steps, 1)
    t1 = time.perf_counter()
    # median step between consecutive places (the few jumps between episodes do not move a median)
    step = float((parts["train"].g[1:] - parts["train"].g[:-1]).norm(dim=-1).median())
    rng = np.random.default_rng(cfg.run.seed)
    if gc.reach > 0:
        graphs = {k: _Local(v, gc.reach, first) for k, v in parts.items()}
    else:
        graphs = {k: _Graph(v, step, gc.revisit, gc.max_sources, first, rng) for k, v in parts.items()}
    graph_s = time.perf_counter() - t1
    run_dir = run_subdir(cfg, "goal")
    if cfg.run.resume == "never":
        move_aside(run_dir)
    ckpt = CheckpointManager(os.path.join(run_dir, "ckpt"), cfg.run.keep_ckpts)
    start, curve, resumed = 0, [], resume_path(cfg, ckpt)
    if resumed:
        js = _resume(resumed, ckpt, cfg, src, model, opt, gen)
        start, curve = int(js["step"]), [tuple(c) for c in js["curve"]]
    record(run_dir, cfg, resumed)

    def save(step: int) -> None:
        if step % cfg.run.ckpt_every and step != gc.steps:
            return
        state = {
            "stage": "goal",
            "source": os.path.abspath(src),
            "generator": gen.get_state().tolist(),
            "rng": capture_rng(),
            "curve": curve,
            "config": to_dict(cfg),
        }
        ckpt.save(step, lambda p: save_derived(p, model, meta, {"subcommand": "goal", "step": step}), opt, state)

    logger = RunLogger(
        run_dir, True, cfg.run.tensorboard, cfg.run.progress and gc.steps > start, gc.steps, start, "goal"
    )
    try:
        curve = _fit(
            model, head, opt, parts["train"], graphs["train"], gc, cfg.run.log_every, gen, logger, start, curve, save
        )
    finally:
        logger.close()
    head.eval()
    held_out = _held_out(model, head, parts["val"], graphs["val"], gc.imagine_steps, cfg.run.seed + 1)
    held_out["graph_seconds"] = round(graph_s, 2)
    train_s = time.perf_counter() - t1
    check_unchanged(model, frozen, "goal")  # the contract: only the goal head moves
    info = dict(meta.get("training") or {})
    info.update(
        subcommand="goal",
        source=os.path.abspath(src),
        config=to_dict(cfg),
        goal={
            "steps": gc.steps,
            "revisit": gc.revisit,
            "reach": gc.reach,
            "expectile": gc.expectile,
            "step": step,
            "imagine_steps": gc.imagine_steps,
            "held_out": held_out,
        },
    )
    out_path = os.path.join(run_dir, "model.safetensors")
    save_derived(out_path, model, meta, info)
    return {
        "checkpoint": out_path,
        "source": src,
        "steps": gc.steps,
        "latents": int(len(parts["train"].z)),
        "val_latents": int(len(parts["val"].z)),
        "encode_seconds": round(encode_s, 2),
        "train_seconds": round(train_s, 2),
        "steps_per_s": round((gc.steps - start) / max(train_s, 1e-9), 1),
        "resumed_from": resumed,
        "first_loss": curve[0][1] if curve else float("nan"),
        "last_loss": curve[-1][1] if curve else float("nan"),
        "held_out": held_out,
    }
