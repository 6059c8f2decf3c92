"""Two recorded `dmc_pixels` runs compared evaluation by evaluation: is variant B ahead of A beyond the noise?

Every variant in BENCHMARKS 7.3 runs on the same seeds, and a seed's evaluation episodes start from the same
states at every evaluation (training/mbrl.py), so an evaluation of B has a twin in A: the same seed and frames,
the same episode starts. This pairs the (seed, frames) cells both runs evaluated with as many episodes, takes
B - A, and reports the mean difference per evaluation (frames), per seed and overall, how many cells B leads,
and two 95% intervals for the overall mean: a bootstrap over the cells, too narrow since one seed's cells are
one agent learning, and a t-interval over the per-seed means (seeds are independent; wide with three).

    python -m bench.experiments.dmc_paired --task reacher_easy --a bench/results/dmc_pixels.json \\
        --b bench/results/dmc_pixels_idm50.json --frames-max 70000 [--record --name dmc_paired_idm50_reacher]
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from bench import record

BOOTSTRAP = 10000


def curves(path: str, task: str) -> dict[str, dict[int, list[float]]]:
    """seed -> frames -> the evaluation's per-episode returns, from a recorded dmc_pixels JSON."""
    with open(path) as f:
        tasks = json.load(f)["figures"]["tasks"]
    if task not in tasks:
        raise SystemExit(f"dmc_paired: {path} has no task {task!r} (has {', '.join(sorted(tasks))})")
    return {
        seed: {int(p["frames"]): list(p["returns"]) for p in points if p.get("returns")}
        for seed, points in tasks[task]["curves"].items()
    }


def pair(a: dict, b: dict, frames_max: int | None = None) -> tuple[list[tuple[str, int]], list[np.ndarray], list]:
    """The (seed, frames) cells both runs evaluated with the same number of episodes, their B - A differences,
    and the cells left out with why."""
    cells, diffs, skipped = [], [], []
    for seed in sorted(set(a) & set(b), key=int):
        for frames in sorted(set(a[seed]) & set(b[seed])):
            if frames_max is not None and frames > frames_max:
                continue
            ra, rb = a[seed][frames], b[seed][frames]
            if len(ra) != len(rb):
                skipped.append([seed, frames, f"{len(ra)} against {len(rb)} episodes"])
                continue
            cells.append((seed, frames))
            diffs.append(np.asarray(rb, float) - np.asarray(ra, float))
    return cells, diffs, skipped


def bootstrap_interval(values: np.ndarray, rng: np.random.Generator) -> list[float]:
    """95% percentile interval of the mean of `values` resampled with replacement."""
    idx = rng.integers(0, len(values), (BOOTSTRAP, len(values)))
    return [round(float(x), 1) for x in np.percentile(values[idx].mean(1), [2.5, 97.5])]


def t_interval(values: np.ndarray) -> list[float] | None:
    """95% Student-t interval of the mean of independent `values` (None for fewer than two)."""
    from scipy import stats

    if len(values) < 2:
        return None
    half = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return [round(float(values.mean() - half), 1), round(float(values.mean() + half), 1)]


def compare(a: dict, b: dict, frames_max: int | None = None, seed: int = 0) -> dict:
    cells, diffs, skipped = pair(a, b, frames_max)
    if not cells:
        raise SystemExit("dmc_paired: the two runs share no (seed, frames) evaluation")
    rng = np.random.default_rng(seed)
    cell_mean = np.array([d.mean() for d in diffs])
    seeds = sorted({s for s, _ in cells}, key=int)
    per_seed = {s: float(np.concatenate([d for (c, _), d in zip(cells, diffs) if c == s]).mean()) for s in seeds}
    per_frames = {}
    for frames in sorted({f for _, f in cells}):
        m = [cell_mean[i] for i, (_, f) in enumerate(cells) if f == frames]
        per_frames[str(frames)] = {"mean_diff": round(float(np.mean(m)), 1), "seeds": len(m)}
    return {
        "cells": len(cells),
        "episodes": int(sum(len(d) for d in diffs)),
        "mean_diff": round(float(cell_mean.mean()), 1),
        "ci95_cells": bootstrap_interval(cell_mean, rng),
        "ci95_seeds_t": t_interval(np.array(list(per_seed.values()))),
        "b_ahead_cells": int((cell_mean > 0).sum()),
        "b_behind_cells": int((cell_mean < 0).sum()),
        "per_seed_mean_diff": {s: round(v, 1) for s, v in per_seed.items()},
        "per_frames": per_frames,
        "skipped": skipped,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--task", required=True)
    ap.add_argument("--a", required=True, help="the reference run's recorded JSON")
    ap.add_argument("--b", required=True, help="the variant's recorded JSON")
    ap.add_argument("--frames-max", type=int, default=None, help="only evaluations up to this many frames")
    ap.add_argument("--seed", type=int, default=0, help="the bootstrap's generator")
    record.add_arguments(ap, "dmc_paired")
    args = ap.parse_args()
    res = {"task": args.task, "a": args.a, "b": args.b, "frames_max": args.frames_max}
    res.update(compare(curves(args.a, args.task), curves(args.b, args.task), args.frames_max, args.seed))
    print(json.dumps({k: v for k, v in res.items() if k != "per_frames"}, indent=1))
    record.write_result(args, res)


if __name__ == "__main__":
    main()
