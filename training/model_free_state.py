"""A model-free (stable-baselines3) agent's resumable state, written without pickles.

`save_state(agent, extra, path)` writes what `run_model_free` needs to continue a run where it stopped:
  - `agent.pt`: the state dicts SB3 itself saves (the policy, each optimiser, SAC's entropy coefficient and
    its optimiser: `agent._get_torch_save_params()`), read back with `torch.load(weights_only=True)`;
  - `replay_<name>.npy`: an off-policy agent's replay (observations, next observations, actions, rewards,
    dones, timeouts), oldest first, only the filled part;
  - `state.json`: the counters (env steps, episodes, updates) and the caller's `extra` (the curve, ...).
A save goes to `<path>.tmp` and then replaces `path` (the one before kept as `<path>.old` until the swap
is done), so a run killed mid-save resumes from the previous one. `load_state(agent, path)` restores into
an agent built with the same settings and returns `extra` (None when there is nothing to resume); a replay
larger than the new agent's buffer keeps its newest transitions.
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import torch

REPLAY_ARRAYS = ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")


def _attr(obj, dotted: str):
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def _replay_arrays(agent) -> dict[str, np.ndarray]:
    """The filled part of an off-policy agent's replay, oldest first ({} for on-policy agents)."""
    buf = getattr(agent, "replay_buffer", None)
    if buf is None:
        return {}
    out = {}
    for name in REPLAY_ARRAYS:
        arr = getattr(buf, name, None)
        if arr is None:
            continue
        out[name] = np.concatenate([arr[buf.pos :], arr[: buf.pos]]) if buf.full else arr[: buf.pos]
    return out


def save_state(agent, extra: dict, path: str) -> None:
    tmp, old = f"{path}.tmp", f"{path}.old"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    dicts, tensors = agent._get_torch_save_params()
    torch.save(
        {
            "state_dicts": {n: _attr(agent, n).state_dict() for n in dicts},
            "tensors": {n: _attr(agent, n).detach().cpu().clone() for n in tensors},
        },
        os.path.join(tmp, "agent.pt"),
    )
    for name, arr in _replay_arrays(agent).items():
        np.save(os.path.join(tmp, f"replay_{name}.npy"), arr)
    counters = {"num_timesteps": int(agent.num_timesteps), "episodes": int(agent._episode_num)}
    counters["updates"] = int(getattr(agent, "_n_updates", 0))
    with open(os.path.join(tmp, "state.json"), "w") as f:
        json.dump({**counters, "extra": extra}, f)
    if os.path.isdir(path):
        shutil.rmtree(old, ignore_errors=True)
        os.replace(path, old)
    os.replace(tmp, path)
    shutil.rmtree(old, ignore_errors=True)


def load_state(agent, path: str) -> dict | None:
    """Restore `agent` from `path` (or `<path>.old`, left by a save that was killed); its `extra`, or None."""
    found = next((p for p in (path, f"{path}.old") if os.path.isfile(os.path.join(p, "state.json"))), None)
    if found is None:
        return None
    with open(os.path.join(found, "state.json")) as f:
        state = json.load(f)
    saved = torch.load(os.path.join(found, "agent.pt"), map_location=agent.device, weights_only=True)
    for n, sd in saved["state_dicts"].items():
        _attr(agent, n).load_state_dict(sd)
    for n, t in saved["tensors"].items():
        _attr(agent, n).data.copy_(t)
    buf = getattr(agent, "replay_buffer", None)
    if buf is not None:
        n = 0
        for name in REPLAY_ARRAYS:
            file = os.path.join(found, f"replay_{name}.npy")
            if getattr(buf, name, None) is None or not os.path.isfile(file):
                continue
            arr = np.load(file, mmap_mode="r")[-buf.buffer_size :]
            getattr(buf, name)[: len(arr)] = arr
            n = len(arr)
        buf.full, buf.pos = n >= buf.buffer_size, n % buf.buffer_size
    agent.num_timesteps, agent._episode_num = state["num_timesteps"], state["episodes"]
    if hasattr(agent, "_n_updates"):
        agent._n_updates = state["updates"]
    return state["extra"]
