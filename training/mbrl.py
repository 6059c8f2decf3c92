"""Stage 3 (`mbrl`): plan in the simulator, append the episodes to the replay bags, re-fit; repeat.

Round r: the current model + planner (with exploration noise) records `mbrl.episodes_per_iter`
episodes into `<out_dir>/mbrl/bags/round_<r>`; Stage-2 training continues from the current
weights for `mbrl.fit_steps_per_iter` steps on all bags (collect + every round so far) in
`<out_dir>/mbrl/round_<r>`; closed-loop evaluation runs every `mbrl.eval_every` rounds.
`<out_dir>/mbrl/state.json` records finished rounds, so a killed run resumes at the round it
was in (and that round's re-fit resumes from its own checkpoints).
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time

import torch

from moejepa_ros.model.checkpoint import load_checkpoint, save_checkpoint

from .config import ConfigError, TrainConfig
from .datasets import bag_sources, run_subdir
from .distributed import DistInfo
from .evaluate import closed_loop
from .export import find_model
from .logging_utils import log


def _round_cfg(cfg: TrainConfig) -> TrainConfig:
    steps = cfg.mbrl.fit_steps_per_iter
    return dataclasses.replace(
        cfg, train=dataclasses.replace(cfg.train, steps=steps, stop_at=0),
        optim=dataclasses.replace(cfg.optim, warmup_steps=min(cfg.optim.warmup_steps, max(1, steps // 10))),
        run=dataclasses.replace(cfg.run, resume="auto"),
        fit=dataclasses.replace(cfg.fit, init_encoder=""))


def mbrl(cfg: TrainConfig, device: torch.device) -> dict:
    from training.rollouts import record_rollouts

    from .policy import PlannerPolicy
    from .stages import train_stage
    m = cfg.mbrl
    root = run_subdir(cfg, "mbrl")
    os.makedirs(root, exist_ok=True)
    state_path = os.path.join(root, "state.json")
    state = {"rounds": [], "history": []}
    if os.path.isfile(state_path):
        with open(state_path) as f:
            state = json.load(f)
    start = len(state["rounds"])
    current = state["rounds"][-1]["checkpoint"] if state["rounds"] else find_model(cfg, "", order=("fit",))
    base_sources = [s for s in bag_sources(dataclasses.replace(cfg, data=cfg.data)) if not s.endswith("mbrl/bags")]
    env_kwargs = dict(cfg.collect.env_kwargs)
    env_kwargs.update(m.env_kwargs)
    info = DistInfo()
    t0 = time.perf_counter()
    for r in range(start, m.iterations):
        model, meta = load_checkpoint(current, device)
        pol = PlannerPolicy(model, cfg.plan.planner, cfg.plan.objectives, meta["action_low"], meta["action_high"],
                            device, explore_std=m.explore_std, seed=cfg.run.seed + r)
        bag_dir = os.path.join(root, "bags", f"round_{r:03d}")
        shutil.rmtree(bag_dir, ignore_errors=True)  # a half-written round from a killed run
        tr = time.perf_counter()
        record_rollouts(cfg.collect.env, pol, m.episodes_per_iter, bag_dir, workers=1, storage=cfg.collect.storage,
                        seed=cfg.run.seed + 100_003 * (r + 1), max_steps=m.max_episode_steps, env_kwargs=env_kwargs)
        collect_s = time.perf_counter() - tr
        rounds = [os.path.join(root, "bags", f"round_{i:03d}") for i in range(r + 1)]
        res = train_stage(_round_cfg(cfg), 2, f"mbrl/round_{r:03d}", info, device,
                          sources=base_sources + rounds, init_weights=model, desc=f"mbrl {r}")
        entry = {"round": r, "checkpoint": res.checkpoint, "collect_seconds": round(collect_s, 2),
                 "fit_seconds": round(res.elapsed_s, 2), "last": res.last_terms}
        if m.eval_episodes > 0 and (m.eval_every and (r + 1) % m.eval_every == 0 or r == m.iterations - 1):
            new_model, new_meta = load_checkpoint(res.checkpoint, device)
            entry["eval"] = closed_loop(cfg, new_model, new_meta, m.eval_episodes, m.max_episode_steps, device,
                                        env_kwargs=m.env_kwargs)
            log.info("mbrl round %d: success %.2f, return %.3g", r, entry["eval"]["success_rate"],
                     entry["eval"]["return_mean"])
        state["rounds"].append(entry)
        current = res.checkpoint
        tmp = state_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(state, f, indent=1)
        os.replace(tmp, state_path)
    if not state["rounds"]:
        raise ConfigError("mbrl: no rounds were run (mbrl.iterations must be >= 1)")
    final = os.path.join(root, "model.safetensors")
    model, meta = load_checkpoint(current)
    tr_meta = dict(meta.get("training") or {})
    tr_meta.update(subcommand="mbrl", rounds=len(state["rounds"]))
    save_checkpoint(final, model, {"action_low": meta["action_low"], "action_high": meta["action_high"],
                                   "preprocessing": meta["preprocessing"], "training": tr_meta})
    return {"checkpoint": final, "rounds": len(state["rounds"]),
            "eval": [e.get("eval", {}).get("success_rate") for e in state["rounds"]],
            "seconds": round(time.perf_counter() - t0, 2)}
