"""A model-free (stable-baselines3) agent's resumable state, written without pickles.

`save_state(agent, extra, path)` writes what `run_model_free` needs to continue a run where it stopped:
  - `agent.pt`: the state dicts SB3 itself saves (the policy with its target critic, each optimiser, SAC's
    entropy coefficient and its optimiser: `agent._get_torch_save_params()`), read back with
    `torch.load(weights_only=True)`;
  - `replay_<name>.npy`: an off-policy agent's replay (observations, actions, rewards, dones, timeouts),
    oldest first, only the filled part, written in place; next observations are the following row's
    observations except where an episode ended, so only those rows are kept (`replay_next_rows.npy`), which
    halves the file;
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
from stable_baselines3.common.save_util import recursive_getattr

from .run_dir import last_complete, swap_in, write_atomic

REPLAY_ARRAYS = ("observations", "actions", "rewards", "dones", "timeouts")  # next_observations: see above
BLOCK = 1024  # replay rows compared at a time


def _save_replay(buf, folder: str) -> None:
    n, size = buf.size(), buf.buffer_size
    order = (np.arange(n) + (buf.pos if buf.full else 0)) % size  # ring index of each row, oldest first
    for name in REPLAY_ARRAYS:
        arr = getattr(buf, name)
        file = os.path.join(folder, f"replay_{name}.npy")
        out = np.lib.format.open_memmap(file, "w+", arr.dtype, (n,) + arr.shape[1:])
        for j in range(0, n, BLOCK):
            out[j : j + BLOCK] = arr[order[j : j + BLOCK]]
        out.flush()
        del out
    nxt = getattr(buf, "next_observations", None)
    if nxt is None:  # optimize_memory_usage: SB3 keeps them in `observations` itself
        return
    rows = []
    for j in range(0, n - 1, BLOCK):
        idx = order[j : min(j + BLOCK, n - 1)]
        differs = (nxt[idx] != buf.observations[(idx + 1) % size]).reshape(len(idx), -1).any(1)
        rows += (j + np.flatnonzero(differs)).tolist()
    rows = np.asarray(rows + ([n - 1] if n else []), np.int64)
    np.save(os.path.join(folder, "replay_next_rows.npy"), rows)
    np.save(os.path.join(folder, "replay_next_observations.npy"), nxt[order[rows]])


def _load_replay(buf, folder: str) -> None:
    obs = np.load(os.path.join(folder, "replay_observations.npy"), mmap_mode="r")
    first = max(0, len(obs) - buf.buffer_size)  # a smaller buffer keeps the newest rows
    m = len(obs) - first
    for name in REPLAY_ARRAYS:
        getattr(buf, name)[:m] = np.load(os.path.join(folder, f"replay_{name}.npy"), mmap_mode="r")[first:]
    if getattr(buf, "next_observations", None) is not None and m:
        buf.next_observations[: m - 1] = obs[first + 1 :]
        rows = np.load(os.path.join(folder, "replay_next_rows.npy"))
        stored = np.load(os.path.join(folder, "replay_next_observations.npy"), mmap_mode="r")
        keep = rows >= first
        buf.next_observations[rows[keep] - first] = stored[keep]
    buf.full, buf.pos = m >= buf.buffer_size, m % buf.buffer_size


def save_state(agent, extra: dict, path: str) -> None:
    tmp = f"{path}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    dicts, tensors = agent._get_torch_save_params()
    torch.save(
        {
            "state_dicts": {n: recursive_getattr(agent, n).state_dict() for n in dicts},
            "tensors": {n: recursive_getattr(agent, n).detach().cpu().clone() for n in tensors},
        },
        os.path.join(tmp, "agent.pt"),
    )
    if getattr(agent, "replay_buffer", None) is not None:
        _save_replay(agent.replay_buffer, tmp)
    counters = {"num_timesteps": int(agent.num_timesteps), "episodes": int(agent._episode_num)}
    counters["updates"] = int(getattr(agent, "_n_updates", 0))
    write_atomic(os.path.join(tmp, "state.json"), json.dumps({**counters, "extra": extra}))
    swap_in(tmp, path)


def load_state(agent, path: str) -> dict | None:
    """Restore `agent` from `path` (or `<path>.old`, left by a save that was killed); its `extra`, or None."""
    found = last_complete(path)
    if found is None:
        return None
    with open(os.path.join(found, "state.json")) as f:
        state = json.load(f)
    saved = torch.load(os.path.join(found, "agent.pt"), map_location=agent.device, weights_only=True)
    for n, sd in saved["state_dicts"].items():
        recursive_getattr(agent, n).load_state_dict(sd)
    for n, t in saved["tensors"].items():
        recursive_getattr(agent, n).data.copy_(t)
    if getattr(agent, "replay_buffer", None) is not None:
        _load_replay(agent.replay_buffer, found)
    agent.num_timesteps, agent._episode_num = state["num_timesteps"], state["episodes"]
    if hasattr(agent, "_n_updates"):
        agent._n_updates = state["updates"]
    return state["extra"]
