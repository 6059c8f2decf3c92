"""Exact-resume training checkpoints: safetensors for tensors, JSON for everything else, no pickles.

A checkpoint is a directory `<root>/step_<N>/` holding
  - `model.safetensors`   the world model, written by `moejepa_ros.model.save_checkpoint`, so a
                          training checkpoint is also an inference checkpoint for the node;
  - `state.safetensors`   optimiser state tensors (flattened `optim.<param>.<key>`) and extra
                          training-side modules (`module.<name>.<key>`);
  - `state.json`          step, scheduler, optimiser param groups and scalar state, torch, numpy
                          and python RNG states, data-sampler positions (one per DDP rank), config.
It is written under a temporary name and renamed into place, then `<root>/latest` (a one-line
text file) is replaced atomically, so a kill at any moment leaves the previous checkpoint valid.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

STEP_DIR = re.compile(r"^step_(\d{8})$")


class ResumeError(RuntimeError):
    """A training checkpoint is missing, incomplete or does not match the run (names the path)."""


# ----------------------------------------------------------------------------- RNG states
def capture_rng() -> dict:
    """JSON of this process's torch / CUDA / numpy / python RNG states (byte states as int lists)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    py_version, py_state, py_gauss = random.getstate()
    js = {
        "numpy": {
            "kind": kind,
            "keys": np.asarray(keys).astype(np.int64).tolist(),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": {"version": py_version, "state": list(py_state), "gauss_next": py_gauss},
        "torch": torch.get_rng_state().tolist(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        js["cuda"] = [s.tolist() for s in torch.cuda.get_rng_state_all()]
    return js


def restore_rng(js: dict) -> None:
    """Inverse of `capture_rng`."""
    n = js["numpy"]
    np.random.set_state(
        (n["kind"], np.asarray(n["keys"], dtype=np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
    )
    p = js["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss_next"]))
    torch.set_rng_state(torch.tensor(js["torch"], dtype=torch.uint8))
    if js.get("cuda") and torch.cuda.is_available():  # the devices this machine has (a run may move machines)
        states = js["cuda"][: torch.cuda.device_count()]
        torch.cuda.set_rng_state_all([torch.tensor(s, dtype=torch.uint8) for s in states])


# ------------------------------------------------------------------- optimiser flattening
def flatten_optimizer(opt: torch.optim.Optimizer) -> tuple[dict, dict[str, torch.Tensor]]:
    """Optimiser state_dict -> (JSON: param groups + scalar state, tensors: `optim.<i>.<key>`)."""
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"optim.{idx}.{k}"] = v.detach().clone().contiguous().cpu()
            else:
                scalars.setdefault(str(idx), {})[k] = v
    groups = []
    for g in sd["param_groups"]:
        groups.append({k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()})
    return {"param_groups": groups, "scalars": scalars}, tensors


def unflatten_optimizer(opt: torch.optim.Optimizer, js: dict, tensors: dict[str, torch.Tensor]) -> None:
    """Load the output of `flatten_optimizer` back into `opt` (tensors moved to its params' devices)."""
    state: dict[int, dict[str, Any]] = {}
    for key, v in tensors.items():
        if not key.startswith("optim."):
            continue
        _, idx, name = key.split(".", 2)
        state.setdefault(int(idx), {})[name] = v
    for idx, st in js.get("scalars", {}).items():
        state.setdefault(int(idx), {}).update(st)
    groups = []
    for g in js["param_groups"]:
        g = dict(g)
        if "betas" in g:
            g["betas"] = tuple(g["betas"])
        groups.append(g)
    n_saved = sum(len(g["params"]) for g in groups)
    n_now = sum(len(g["params"]) for g in opt.param_groups)
    if n_saved != n_now:
        raise ResumeError(
            f"optimiser has {n_now} parameters but the checkpoint has {n_saved} "
            "(model config or frozen modules changed since the checkpoint)"
        )
    opt.load_state_dict({"state": state, "param_groups": groups})


# ----------------------------------------------------------------------- JSON helpers
def jsonable(x: Any) -> Any:
    """Numpy scalars/arrays and tuples -> plain JSON types (sampler states may hold them)."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return {"__ndarray__": x.tolist(), "dtype": str(x.dtype)}
    if isinstance(x, np.generic):
        return x.item()
    if torch.is_tensor(x):
        return {"__ndarray__": x.cpu().numpy().tolist(), "dtype": str(x.cpu().numpy().dtype)}
    return x


def from_jsonable(x: Any) -> Any:
    """Inverse of `jsonable` for arrays (tuples come back as lists)."""
    if isinstance(x, dict):
        if "__ndarray__" in x and "dtype" in x and len(x) == 2:
            return np.asarray(x["__ndarray__"], dtype=x["dtype"])
        return {k: from_jsonable(v) for k, v in x.items()}
    if isinstance(x, list):
        return [from_jsonable(v) for v in x]
    return x


def _write_json(path: str, obj: Any) -> None:
    with open(path, "w") as f:
        json.dump(obj, f)
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


# ---------------------------------------------------------------------------- manager
class CheckpointManager:
    """Writes, finds and loads exact-resume checkpoints under `root`, keeping the newest `keep`."""

    def __init__(self, root: str, keep: int = 2):
        self.root, self.keep = root, max(1, int(keep))

    def dir_for(self, step: int) -> str:
        return os.path.join(self.root, f"step_{step:08d}")

    def save(
        self,
        step: int,
        save_model: Callable[[str], None],
        optimizer: torch.optim.Optimizer | None,
        state: dict,
        tensors: dict[str, torch.Tensor] | None = None,
        modules: dict[str, torch.nn.Module] | None = None,
    ) -> str:
        """Write checkpoint `step` atomically; `save_model(path)` writes model.safetensors."""
        os.makedirs(self.root, exist_ok=True)
        final = self.dir_for(step)
        tmp = final + f".tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        save_model(os.path.join(tmp, "model.safetensors"))
        all_t: dict[str, torch.Tensor] = dict(tensors or {})
        js = dict(state)
        js["step"] = int(step)
        if optimizer is not None:
            ojs, ot = flatten_optimizer(optimizer)
            js["optimizer"] = ojs
            all_t.update(ot)
        for name, mod in (modules or {}).items():
            for k, v in mod.state_dict().items():
                all_t[f"module.{name}.{k}"] = v.detach().clone().contiguous().cpu()
        save_file({k: v.contiguous() for k, v in all_t.items()}, os.path.join(tmp, "state.safetensors"))
        _write_json(os.path.join(tmp, "state.json"), jsonable(js))
        _fsync_dir(tmp)
        if os.path.exists(final):
            shutil.rmtree(final)
        os.replace(tmp, final)
        pointer = os.path.join(self.root, "latest")
        _write_json(pointer + ".tmp", {"step": int(step), "dir": os.path.basename(final)})
        os.replace(pointer + ".tmp", pointer)
        _fsync_dir(self.root)
        self._prune()
        return final

    def _complete(self) -> list[str]:
        if not os.path.isdir(self.root):
            return []
        out = []
        for name in sorted(os.listdir(self.root)):
            d = os.path.join(self.root, name)
            if STEP_DIR.match(name) and all(
                os.path.isfile(os.path.join(d, f)) for f in ("model.safetensors", "state.safetensors", "state.json")
            ):
                out.append(d)
        return out

    def _prune(self) -> None:
        dirs = self._complete()
        for d in dirs[: -self.keep]:
            shutil.rmtree(d, ignore_errors=True)
        for name in os.listdir(self.root):  # leftovers of killed writers
            if ".tmp-" in name and not name.endswith(f".tmp-{os.getpid()}"):
                shutil.rmtree(os.path.join(self.root, name), ignore_errors=True)

    def latest(self) -> str | None:
        """Newest complete checkpoint dir (the `latest` pointer, else the highest step), or None."""
        pointer = os.path.join(self.root, "latest")
        if os.path.isfile(pointer):
            try:
                with open(pointer) as f:
                    d = os.path.join(self.root, json.load(f)["dir"])
                if d in self._complete():
                    return d
            except (ValueError, KeyError, OSError):
                pass
        dirs = self._complete()
        return dirs[-1] if dirs else None

    @staticmethod
    def load(path: str) -> tuple[dict, dict[str, torch.Tensor]]:
        """(state.json, state.safetensors tensors) of the checkpoint dir `path`."""
        for f in ("model.safetensors", "state.safetensors", "state.json"):
            if not os.path.isfile(os.path.join(path, f)):
                raise ResumeError(f"training checkpoint {path} is incomplete: missing {f}")
        try:
            with open(os.path.join(path, "state.json")) as f:
                js = from_jsonable(json.load(f))
            tensors = load_file(os.path.join(path, "state.safetensors"))
        except (ValueError, OSError) as e:
            raise ResumeError(f"training checkpoint {path} is unreadable: {e}") from e
        return js, tensors

    @staticmethod
    def load_modules(tensors: dict[str, torch.Tensor], modules: dict[str, torch.nn.Module]) -> None:
        for name, mod in modules.items():
            pre = f"module.{name}."
            sd = {k[len(pre) :]: v for k, v in tensors.items() if k.startswith(pre)}
            if not sd:
                raise ResumeError(f"training checkpoint has no weights for training module '{name}'")
            mod.load_state_dict(sd)
