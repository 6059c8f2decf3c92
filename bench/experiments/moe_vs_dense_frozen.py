"""MoE vs dense predictor on the same frozen latents, at equal active parameters.

`bench.experiments.moe_vs_dense` trains encoder and predictor together, so each variant has its own
latent space and the copy-last baseline it is divided by differs between them (a dense model
whose latent barely moves wins any ratio). Here both predictors are trained by `moejepa-train
refine` on the latents of one frozen encoder (the committed Two-Rooms checkpoint's), from the
same data (the long random walks of `config/train/two_rooms_goal.yaml`: random walls and doors,
free motion, wall contact, door passages), with the same steps, horizon and seed:

- `moe`: the checkpoint's predictor shape (4 experts x 512 hidden, top-2), newly initialised;
- `dense`: one expert whose hidden width gives the same *active* parameters (`dense_equivalent`).

Measured on the held-out episodes: open-loop latent error at 1/5/10/16 steps divided by the
copy-last error (the same denominator for both, since the latents are the same), the one-step
ratio by dynamics mode (free / wall or border contact / in the door, from the recorded state),
refine wall time and steps/s, ms per plan (the demo's CEM, the two models interleaved call by
call), ms per training step (the two interleaved step by step), and for the MoE the expert loads, their
CV and the mutual information between the top-1 expert and the dynamics mode and room side.

    .venv/bin/python -m bench.experiments.moe_vs_dense_frozen --steps 12000

Needs the long-walk data (`moejepa-train collect -c two_rooms -c two_rooms_goal`, under
runs/two_rooms_goal). Writes moe_vs_dense_frozen.json and .png through `bench.record`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from bench import record
from bench.experiments.blocked_steps import episodes, open_long_walks
from bench.experiments.moe_vs_dense import dynamics_mode
from bench.experiments.probing import refine
from moejepa_ros.model.checkpoint import load_checkpoint
from moejepa_ros.model.config import active_predictor_params, dense_equivalent
from moejepa_ros.planning import build_objectives, make_planner
from testing.demo_planner import goal_only, plain_demo_planner

HORIZONS = (1, 5, 10, 16)
MODES = ("free", "contact", "door")
PLANNER = plain_demo_planner()
OBJECTIVES = goal_only()


def predictor_shape(cfg, variant: str) -> dict:
    if variant == "moe":
        return {"num_experts": cfg.num_experts, "top_k": cfg.top_k, "expert_hidden": cfg.expert_hidden}
    return {"dense": True, "num_experts": 1, "top_k": 1, "expert_hidden": dense_equivalent(cfg).expert_hidden}


def train(a, variant: str, shape: dict, log: Path) -> tuple[Path, dict]:
    run = Path(a.root) / f"{variant}_s{a.seed}"
    out = run / "refine" / "model.safetensors"
    side = run / "bench_refine.json"
    if out.is_file() and side.is_file():
        return out, json.loads(side.read_text())
    overrides = [
        f"data.bags=[{a.data_run}/collect/bags]",
        f"data.cache_dir={a.data_run}/cache",
        f"refine.checkpoint={a.checkpoint}",
        f"refine.predictor={json.dumps(shape)}",
        f"refine.steps={a.steps}",
        f"refine.horizon={a.horizon}",
    ]
    summary = refine(run, a.seed, overrides, log)
    side.write_text(json.dumps(summary))
    return out, summary


def held_out(a, model):
    """Latents, actions and states (numpy) of the held-out episodes (every frame stack)."""
    data = open_long_walks(a.data_run, model)
    zs, acts, states = episodes(model, data, [int(e) for e in data.val_episodes])
    return zs, acts, [s.numpy() for s in states]


@torch.no_grad()
def open_loop(pred, zs, acts, states, stride: int) -> dict:
    """Error / copy-last at HORIZONS over windows from every `stride`-th offset; one-step ratio by mode."""
    H = max(HORIZONS)
    z0, a, tgt, mode = [], [], [], []
    for z, u, s in zip(zs, acts, states):
        for t in range(0, len(z) - H, stride):
            z0.append(z[t]), a.append(u[t : t + H]), tgt.append(z[t + 1 : t + 1 + H])
            mode.append(dynamics_mode(s[t : t + 2])[1])  # the state the first step lands in
    z0, a, tgt, mode = torch.stack(z0), torch.stack(a), torch.stack(tgt), np.array(mode)
    out = pred.rollout(z0, a)
    err = (out - tgt).norm(dim=-1)  # [N, H]
    copy = (z0[:, None] - tgt).norm(dim=-1)
    ratio = [float(err[:, h - 1].mean() / copy[:, h - 1].mean()) for h in HORIZONS]
    by_mode = {
        m: float(err[mode == i, 0].mean() / copy[mode == i, 0].mean()) if (mode == i).any() else None
        for i, m in enumerate(MODES)
    }
    return {
        "windows": len(z0),
        "ratio": ratio,
        "one_step_by_mode": by_mode,
        "mode_counts": np.bincount(mode, minlength=3).tolist(),
    }


@torch.no_grad()
def routing(model, zs, acts, states) -> dict:
    """Top-k load per expert, its CV, and MI(top-1 expert; dynamics mode / room side) in bits."""
    from training.evaluate import mutual_information

    z, u = torch.cat([x[:-1] for x in zs]), torch.cat([x[:-1] for x in acts])
    s = np.concatenate([x[:-1] for x in states])
    _, idx, _ = model.predictor.moe.route(z, model.predictor.embed(u))
    E = model.cfg.experts
    load = np.bincount(idx.reshape(-1).numpy(), minlength=E) / idx.numel()
    top1 = idx[:, 0].numpy()
    side = (s[:, 0] > s[:, 2]).astype(int)
    mode = dynamics_mode(s)
    tab = np.zeros((3, E))
    np.add.at(tab, (mode, top1), 1)
    return {
        "load": load.round(4).tolist(),
        "load_cv": float(load.std() / load.mean()),
        "specialisation_bits": {
            "dynamics": mutual_information(top1, mode),
            "room_side": mutual_information(top1, side),
        },
        "mode_expert_share": (tab / tab.sum(1, keepdims=True).clip(1)).round(3).tolist(),
    }


def plan_times(models: dict, zs, calls: int) -> dict:
    """ms per plan (the demo's CEM and learned goal), the models interleaved call by call."""
    torch.manual_seed(0)
    z_all = torch.cat(zs)
    pick = torch.randint(0, len(z_all), (calls + 1, 2))
    planners = {
        n: make_planner(PLANNER, m, build_objectives(OBJECTIVES), meta["action_low"], meta["action_high"])
        for n, (m, meta) in models.items()
    }
    ms = {n: [] for n in models}
    for c, (i, j) in enumerate(pick.tolist()):
        for n, p in planners.items():
            t = time.perf_counter()
            p.plan(z_all[i], z_all[j])
            if c:  # the first round warms up
                ms[n].append((time.perf_counter() - t) * 1e3)
    return {n: float(np.median(v)) for n, v in ms.items()}


def train_step_times(models: dict, zs, acts, horizon: int, calls: int, batch: int = 128) -> dict:
    """ms per refine-like training step (rollout with grad over `horizon`, multi-step loss, MoE aux
    loss, backward, Adam) on copies of the two predictors, interleaved step by step."""
    import copy

    from moejepa_ros.model import losses as L
    from training.refine import latent_windows

    gen = torch.Generator().manual_seed(0)
    keep = [i for i, z in enumerate(zs) if len(z) > horizon]
    z_ep, a_ep = [zs[i] for i in keep], [acts[i] for i in keep]
    preds = {n: copy.deepcopy(m.predictor).train() for n, (m, _) in models.items()}
    opts = {n: torch.optim.Adam(p.parameters(), lr=1e-4) for n, p in preds.items()}
    ms = {n: [] for n in preds}
    for c in range(calls + 3):
        z0, a, tgt = latent_windows(z_ep, a_ep, horizon, batch, gen)
        for n, p in preds.items():
            t = time.perf_counter()
            out = p.rollout(z0, a)
            bal, zl = L.moe_aux_loss(p.last_aux, 0.01, 0.001)
            loss = L.multistep_latent_loss(out, tgt, 0.9) + bal + zl
            opts[n].zero_grad(set_to_none=True)
            loss.backward()
            opts[n].step()
            if c >= 3:  # the first steps warm up
                ms[n].append((time.perf_counter() - t) * 1e3)
    return {n: float(np.median(v)) for n, v in ms.items()}


def plot(rep: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    v = rep["variants"]
    fig, ax = plt.subplots(1, 3, figsize=(13, 3.6))
    for n, r in v.items():
        ax[0].plot(HORIZONS, r["open_loop"]["ratio"], "o-", label=f"{n} ({r['active_params'] / 1e3:.0f}k active)")
    ax[0].set_xlabel("open-loop steps"), ax[0].set_ylabel("latent error / copy-last")
    ax[0].set_title("held-out open-loop error (lower is better)", fontsize=9), ax[0].legend(fontsize=8)
    x = np.arange(len(MODES))
    for i, (n, r) in enumerate(v.items()):
        ax[1].bar(x + (i - 0.5) * 0.4, [r["open_loop"]["one_step_by_mode"][m] or 0 for m in MODES], 0.4, label=n)
    ax[1].set_xticks(x, MODES), ax[1].set_ylabel("one-step error / copy-last")
    ax[1].set_title("one step, by what the agent does", fontsize=9), ax[1].legend(fontsize=8)
    load = v["moe"]["routing"]["load"]
    ax[2].bar(np.arange(len(load)), load)
    ax[2].axhline(0.10, color="r", ls=":", lw=1)
    ax[2].set_xlabel("expert"), ax[2].set_ylabel("share of top-k assignments")
    ax[2].set_title(
        f"MoE load (CV {v['moe']['routing']['load_cv']:.2f}; MI with mode "
        f"{v['moe']['routing']['specialisation_bits']['dynamics']:.3f} b)",
        fontsize=9,
    )
    fig.suptitle(
        f"MoE vs dense on frozen Two-Rooms latents: {rep['steps']} refine steps, horizon {rep['horizon']}", fontsize=10
    )
    record.save_figure(fig, path, dpi=80)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", default="checkpoints/two_rooms.safetensors", help="the frozen encoder's model")
    ap.add_argument(
        "--data-run", default="runs/two_rooms_goal", help="run dir holding the long walks (collect/, cache/)"
    )
    ap.add_argument("--steps", type=int, default=12000)
    ap.add_argument("--horizon", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--stride", type=int, default=4, help="offset between held-out windows")
    ap.add_argument("--plan-calls", type=int, default=100)
    ap.add_argument("--train-calls", type=int, default=60, help="interleaved training steps timed per model")
    ap.add_argument("--root", default="runs/bench_moe_frozen")
    record.add_arguments(ap, "moe_vs_dense_frozen")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    Path(a.root).mkdir(parents=True, exist_ok=True)
    log = Path(a.root) / "bench.log"
    src, _ = load_checkpoint(a.checkpoint)
    models, rep = (
        {},
        {
            "checkpoint": a.checkpoint,
            "data_run": a.data_run,
            "steps": a.steps,
            "horizon": a.horizon,
            "seed": a.seed,
            "threads": 1,
            "variants": {},
        },
    )
    for v in ("moe", "dense"):
        shape = predictor_shape(src.cfg, v)
        path, summary = train(a, v, shape, log)
        m, meta = load_checkpoint(path)
        models[v] = (m.eval(), meta)
        rep["variants"][v] = {
            "shape": shape,
            "active_params": active_predictor_params(m.cfg),
            "predictor_params": sum(p.numel() for p in m.predictor.parameters()),
            "refine_train_seconds": summary["train_seconds"],
            "steps_per_s": summary["steps_per_s"],
        }
    enc = [m.encoder.state_dict() for m, _ in models.values()]
    assert all(torch.equal(enc[0][k], enc[1][k]) for k in enc[0]), "the two models must share the frozen encoder"
    zs, acts, states = held_out(a, models["moe"][0])
    for v, (m, _) in models.items():
        rep["variants"][v]["open_loop"] = open_loop(m.predictor, zs, acts, states, a.stride)
    rep["variants"]["moe"]["routing"] = routing(models["moe"][0], zs, acts, states)
    for v, ms in plan_times(models, zs, a.plan_calls).items():
        rep["variants"][v]["plan_ms"] = ms
    for v, ms in train_step_times(models, zs, acts, a.horizon, a.train_calls).items():
        rep["variants"][v]["train_step_ms"] = ms
    moe, dense = rep["variants"]["moe"], rep["variants"]["dense"]
    rep["moe_over_dense"] = {
        "open_loop_ratio": [round(x / y, 4) for x, y in zip(moe["open_loop"]["ratio"], dense["open_loop"]["ratio"])],
        "train_time_ratio": round(moe["refine_train_seconds"] / dense["refine_train_seconds"], 3),
        "train_step_ratio_side_by_side": round(moe["train_step_ms"] / dense["train_step_ms"], 3),
        "plan_time_ratio": round(moe["plan_ms"] / dense["plan_ms"], 3),
    }
    record.write_result(a, rep)
    plot(rep, record.figure_path(a))
    print(
        json.dumps(
            {
                "moe_over_dense": rep["moe_over_dense"],
                "moe": moe["open_loop"],
                "dense": dense["open_loop"],
                "routing": moe["routing"],
            },
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
