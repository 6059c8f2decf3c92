"""Which loss shapes the encoder? Each TD loss term's gradient on the encoder of an online-loop agent.

The online loop (training/td.py) trains the encoder through one weighted sum: latent consistency, reward and
the Q ensemble's TD error (plus the router's small terms). Their weights are fixed, but their sizes are
not: the TD error is in return units, which grow with the reward's scale and the discount. This loads an
agent (`<run>/mbrl/agent`: the model, its target Q and the loop's settings) and the episodes it trained on,
draws batches as the loop does (DrQ's shift; uniform here, not by priority) and reports, per term, the norm
of its weighted gradient on the encoder's parameters (mean over `--batches`), and the whole update's
gradient norm against the loop's clip.

    python -m bench.experiments.td_gradients --runs <dmc_pixels runs>/cartpole_swingup/seed0 [seed1 ...]

The episodes are read, never rewritten (the replay's own `load` removes files after the ones it loads).
"""

from __future__ import annotations

import argparse
import glob
import json
import os

import numpy as np

from bench import record

TERMS = ("latent", "reward", "value")


def read_replay(run: str, frame_stack: int, horizon: int, shift: int):
    """The run's episodes (the first `episodes` of its last agent checkpoint) in a fresh in-memory replay."""
    from training.replay import EpisodeReplay

    with open(os.path.join(run, "mbrl", "agent", "state.json")) as f:
        episodes = json.load(f)["episodes"]
    files = sorted(glob.glob(os.path.join(run, "mbrl", "episodes", "episode_*.npz")))[:episodes]
    if not files:
        raise SystemExit(f"td_gradients: no episodes under {run}/mbrl/episodes")
    replay = EpisodeReplay(os.path.join(run, "mbrl", "episodes"), frame_stack, horizon, shift)
    for path in files:
        with np.load(path) as d:
            replay.add(d["frames"], d["actions"], d["rewards"], save=False)
    return replay, len(files)


def measure(run: str, batches: int, batch_size: int, horizon: int, shift: int, seed: int) -> dict:
    import torch
    from safetensors.torch import load_file

    from moejepa_ros.model.checkpoint import load_checkpoint
    from training.mbrl import AGENT_TENSORS
    from training.td import TDLearner

    agent = os.path.join(run, "mbrl", "agent")
    model, meta = load_checkpoint(os.path.join(agent, "model.safetensors"))
    learner = TDLearner(model, meta["action_low"], meta["action_high"], gamma=model.cfg.losses.gamma, seed=seed)
    with open(os.path.join(agent, "state.json")) as f:
        learner.load_state(json.load(f)["learner"], load_file(os.path.join(agent, AGENT_TENSORS)))
    replay, episodes = read_replay(run, model.cfg.frame_stack, horizon, shift)
    rng = np.random.default_rng(seed)
    encoder = list(model.encoder.parameters())
    trained = [p for g in learner.opt.param_groups for p in g["params"]]
    norms: dict[str, list[float]] = {k: [] for k in (*TERMS, "total")}
    model.train()
    for _ in range(batches):
        out = learner.losses(replay.sample(batch_size, rng))
        for k in TERMS:
            g = torch.autograd.grad(out["weights"][k] * out["terms"][k].mean(), encoder, retain_graph=True)
            norms[k].append(float(torch.sqrt(sum(x.square().sum() for x in g))))
        total = out["per_window"].mean() + out["aux"]
        g = torch.autograd.grad(total, trained, allow_unused=True)
        norms["total"].append(float(torch.sqrt(sum(x.square().sum() for x in g if x is not None))))
    model.eval()
    res = {k: round(float(np.mean(v)), 4) for k, v in norms.items()}
    return {
        "run": run,
        "episodes": episodes,
        "gamma": model.cfg.losses.gamma,
        "reward_bins": model.cfg.reward_bins,
        "weights": {k: float(v) for k, v in out["weights"].items()},
        "encoder_grad_norm": {k: res[k] for k in TERMS},
        "update_grad_norm": res["total"],
        "value_over_latent": round(res["value"] / max(res["latent"], 1e-12), 2),
    }


def main(argv: list[str] | None = None) -> dict:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", nargs="+", required=True, help="run directories of the online loop (each has mbrl/)")
    ap.add_argument("--batches", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=128, help="windows per batch (config/train/dmc.yaml: 128)")
    ap.add_argument("--horizon", type=int, default=3, help="window horizon (data.horizon of the runs)")
    ap.add_argument("--shift", type=int, default=4, help="DrQ random shift (data.augment_shift of the runs)")
    ap.add_argument("--grad-clip", type=float, default=10.0, help="the loop's optim.grad_clip, for the report")
    ap.add_argument("--seed", type=int, default=0)
    record.add_arguments(ap, "td_gradients")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    agents = [measure(r, a.batches, a.batch_size, a.horizon, a.shift, a.seed) for r in a.runs]
    res = {"batches": a.batches, "batch_size": a.batch_size, "grad_clip": a.grad_clip, "agents": agents}
    record.write_result(a, res)
    print(json.dumps(res))
    return res


if __name__ == "__main__":
    main()
