"""`python -m examples.two_rooms_demo` (`make demo`): Two-Rooms goal reaching, closed loop over DDS.

sim_node and planner_node run as separate processes (config/sim_demo.yaml, plus the overrides
below); this process is only a collector (a moejepa_ros.ros.probe.Probe): it reads `~/episode_result`, the
stamped commands (image stamp → command receipt = loop latency) and `/diagnostics`, then prints
a summary, writes `summary.json`, a trajectories PNG and a GIF of one episode.

Loop mode `lockstep` (default): sim_node holds each frame until planner_node has answered that
very frame (TwistStamped carries the frame's stamp), so the success rate measures the model and
the planner, not scheduling jitter on a loaded machine. `--realtime` runs the sim on its own
clock at `--rate` with zero-order hold instead. The checkpoint comes from the training recipe
config/recipes/two_rooms_demo.yaml, run step by step as `training.cli` subprocesses when it is
missing or with `--retrain`.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from moejepa_ros.share import share_path
from training.recipe import load_recipe, train_argv

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CHECKPOINT = ROOT / "checkpoints" / "two_rooms.safetensors"
DEFAULT_CONFIG = share_path("config", "sim_demo.yaml")
DEMO = load_recipe("two_rooms_demo")  # the committed checkpoint's training recipe (--retrain runs it)
# what each simulator's goal task is, for the summary: (title, task and success test, distance unit)
TASKS = {
    "two_rooms": (
        "Two-Rooms goal reaching",
        "two_rooms goal reaching (start and goal in opposite rooms; success: squared distance < 1 px^2)",
        "px",
    ),
    "mobile_base": (
        "Mobile-base goal-image reaching",
        "mobile_base goal-image reaching (goal 0.5-3 body lengths away; success: within 0.1 m and 0.25 rad)",
        "m",
    ),
    "dmc:reacher": (
        "Reacher goal-image reaching",
        "reacher goal-image reaching (the goal 25 steps ahead on a held-out random trajectory; success: every "
        "joint within 0.05 rad)",
        "rad",
    ),
}


def task_of(params: dict[str, Any]) -> tuple[str, str, str]:
    env = params["sim_node"].get("env", "two_rooms")
    return TASKS.get(env, (env, f"{env} goal reaching", "units"))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m examples.two_rooms_demo", description=__doc__.split("\n\n")[0])
    ap.add_argument("--episodes", type=int, default=20, help="episodes to run (default 20)")
    ap.add_argument(
        "--checkpoint",
        type=Path,
        default=DEFAULT_CHECKPOINT,
        help="world-model checkpoint (.safetensors); trained with moejepa-train if missing",
    )
    ap.add_argument(
        "--retrain",
        action="store_true",
        help="train the checkpoint again (collect, fit, long walks, refine, goal, export, push walks, refit)",
    )
    ap.add_argument("--out", type=Path, default=Path("out/demo"), help="output folder (default out/demo)")
    ap.add_argument(
        "--seed",
        type=int,
        default=1000,
        help="evaluation seed: episode i uses seed+i (default 1000; training data use other seeds)",
    )
    ap.add_argument(
        "--rate",
        type=float,
        default=None,
        help="sim steps per second: an upper bound in lockstep (default 100), "
        "the sim's clock with --realtime (default 20, what the planner follows on 2 cores)",
    )
    ap.add_argument(
        "--realtime", action="store_true", help="free-running sim at --rate with zero-order hold instead of lockstep"
    )
    ap.add_argument("--max-episode-steps", type=int, default=200, help="steps before an episode is cut (default 200)")
    ap.add_argument(
        "--time-limit",
        type=float,
        default=420.0,
        help="wall-clock cap in seconds for the episodes (default 420); the summary says if it hit",
    )
    ap.add_argument(
        "--config", type=Path, default=DEFAULT_CONFIG, help="node parameters (default config/sim_demo.yaml)"
    )
    ap.add_argument(
        "--gif-episode",
        type=int,
        default=None,
        help="episode index for the GIF (default: the first success, else episode 0)",
    )
    a = ap.parse_args(argv)
    if a.episodes < 1:
        ap.error(f"--episodes={a.episodes} must be >= 1")
    if a.rate is None:
        a.rate = 20.0 if a.realtime else 100.0
    if a.rate <= 0:
        ap.error(f"--rate={a.rate} must be > 0")
    if a.max_episode_steps < 1:
        ap.error(f"--max-episode-steps={a.max_episode_steps} must be >= 1")
    return a


# ----------------------------------------------------------------------------- checkpoint
def train_checkpoint(dest: Path, work: Path) -> float:
    """Run the demo's recipe (config/recipes/two_rooms_demo.yaml) as subprocesses; copy its export to `dest`."""
    work = work.resolve()
    if work.exists():
        shutil.rmtree(work)  # a fresh run, not a resume of some older one
    t0 = time.monotonic()
    for step in DEMO.steps:
        argv = train_argv(step, work)
        print(f"[demo] {' '.join(argv[1:])}", flush=True)
        r = subprocess.run(argv, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"training step '{step.command}' failed (exit {r.returncode}); see its log above")
    src = work / DEMO.export
    if not src.is_file():
        raise RuntimeError(f"training finished but {src} is missing")
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dest)
    return time.monotonic() - t0


def frame_stack_of(checkpoint: Path) -> int:
    from moejepa_ros.model.checkpoint import read_meta

    return int(read_meta(checkpoint)["model_config"].get("frame_stack", 3))


# ----------------------------------------------------------------------------- parameters
def node_params(cfg_path: Path, a: argparse.Namespace, checkpoint: Path, frame_stack: int) -> dict[str, Any]:
    """sim_demo.yaml's two nodes with the demo's overrides (seed, episodes, loop mode, command type)."""
    doc = yaml.safe_load(cfg_path.read_text())
    try:
        sim = copy.deepcopy(doc["sim_node"]["ros__parameters"])
        plan = copy.deepcopy(doc["planner_node"]["ros__parameters"])
    except (KeyError, TypeError) as e:
        raise ValueError(f"{cfg_path}: needs sim_node and planner_node ros__parameters ({e})") from None
    lock = not a.realtime
    sim.update(
        seed=a.seed,
        episodes=a.episodes,
        max_episode_steps=a.max_episode_steps,
        rate=a.rate,
        action_type="twist_stamped",
        min_result_subscribers=1,
        wait_for_action=True,
        lockstep=lock,
        episode_hold_frames=max(0, frame_stack - 1) if lock else 0,
    )
    plan.update(checkpoint=str(checkpoint), action_type="twist_stamped", autostart=True)
    if lock:  # the sim sets the pace; the planner answers every frame as soon as it can
        plan.update(control_trigger="frame", control_rate=max(float(plan.get("control_rate", 30.0)), a.rate))
    else:
        plan.update(control_rate=float(a.rate))
    return {"sim_node": sim, "planner_node": plan}


# ----------------------------------------------------------------------------- running
def _diag_values(arr: Any) -> dict[str, str] | None:
    for st in arr.status:
        if "planner_node" in st.name and st.name.endswith(": control"):  # not its topic statuses
            return {kv.key: kv.value for kv in st.values}
    return None


def run_episodes(a: argparse.Namespace, params: dict[str, Any], out: Path) -> dict[str, Any]:
    """Start both nodes, collect results until `episodes` are done or the time cap hits."""
    from diagnostic_msgs.msg import DiagnosticArray
    from geometry_msgs.msg import TwistStamped
    from sensor_msgs.msg import Image
    from std_msgs.msg import String

    from moejepa_ros.ros.messages import CAMERA_QOS, COMMAND_QOS, RESULTS_QOS, stamp_ns
    from moejepa_ros.ros.node_process import NodeProcess
    from moejepa_ros.ros.probe import Probe, wait_until
    from testing.ros_harness import write_params

    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    pfile = write_params(out / "params.yaml", params)
    env = {"ROS_LOG_DIR": str(logs / "ros")}
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    lat_ms: list[float] = []
    cmd_times: list[float] = []
    frame_stamps: set[int] = set()

    def on_image(msg: Any) -> None:
        frame_stamps.add(stamp_ns(msg.header.stamp))

    def on_action(msg: Any) -> None:
        """A command for a frame (it carries the frame's stamp); zero commands are stamped 'now'."""
        now = time.time_ns()
        s = stamp_ns(msg.header.stamp)
        if s in frame_stamps:
            cmd_times.append(time.monotonic())
            lat_ms.append((now - s) / 1e6)

    diag: dict[str, str] = {}

    def on_diag(msg: Any) -> None:
        v = _diag_values(msg)
        if v is not None:
            diag.clear()
            diag.update(v)

    probe = Probe("demo_collector")
    procs: list[Any] = []
    results: list[dict[str, Any]] = []
    capped = False
    died = None
    t_start = time.monotonic()
    t_first = None
    try:
        probe.node.create_subscription(Image, "image", on_image, CAMERA_QOS)
        probe.node.create_subscription(TwistStamped, "action", on_action, COMMAND_QOS)
        probe.node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 10)
        for name in ("planner_node", "sim_node"):
            procs.append(NodeProcess(name, pfile, log_path=logs / f"{name}.log", env=env).start())
        deadline = t_start + a.time_limit
        # sim_node waits for a results subscriber (min_result_subscribers): subscribe only once this
        # collector has discovered the planner's publishers, so no command or diagnostic is missed.
        wait_until(
            lambda: (
                (probe.node.count_publishers("action") >= 1 and probe.node.count_publishers("/diagnostics") >= 1)
                or not all(p.alive() for p in procs)
            ),
            a.time_limit,
            "planner_node's action and /diagnostics publishers",
        )
        box = probe.subscribe(String, "sim_node/episode_result", RESULTS_QOS)
        seen = 0
        while len(results) < a.episodes:
            if t_first is None and cmd_times:
                t_first = cmd_times[0]
                print(f"[demo] planner answering after {t_first - t_start:.1f} s (model load + discovery)", flush=True)
            for m in box.msgs[seen:]:
                r = json.loads(m.data)
                results.append(r)
                mark = (
                    f"reached the goal in {r['steps']} steps"
                    if r["success"]
                    else f"not reached ({r['steps']} steps, {r.get('final_distance') or 0:.1f} px away)"
                )
                print(f"[demo] episode {r['episode'] + 1:>3}/{a.episodes}: {mark}", flush=True)
            seen = len(box.msgs)
            if len(results) >= a.episodes:
                break
            if time.monotonic() > deadline:
                capped = True
                print(f"[demo] time cap of {a.time_limit:.0f} s reached after {len(results)} episodes", flush=True)
                break
            dead = [p for p in procs if not p.alive()]
            if dead and len(results) < a.episodes:
                time.sleep(0.5)  # a last result may still be in flight
                if len(box.msgs) == seen:
                    died = dead[0]
                    break
            time.sleep(0.05)
        t_end = time.monotonic()
        diag_final = dict(diag)
    finally:
        for p in reversed(procs):
            p.stop()
        probe.close()
    if died is not None:
        name = died.cmd[2].rsplit(".", 1)[-1]
        tail = died.output()[-3000:]
        raise RuntimeError(f"{name} exited early (code {died.proc.returncode}); log tail:\n{tail}")
    n_cmd = sum(1 for t in cmd_times if t <= t_end)
    return {
        "results": results,
        "capped": capped,
        "latency_ms": lat_ms,
        "commands": n_cmd,
        "t_start": t_start,
        "t_first": t_first,
        "t_end": t_end,
        "diagnostics": diag_final,
    }


# ----------------------------------------------------------------------------- summary
def _pct(xs: list[float], q: float) -> float | None:
    return round(float(np.percentile(np.asarray(xs), q)), 2) if xs else None


def summarise(
    a: argparse.Namespace,
    run: dict[str, Any],
    checkpoint: Path,
    params: dict[str, Any],
    wall_s: float,
    train_s: float | None,
) -> dict[str, Any]:
    res = run["results"]
    ok = [r for r in res if r["success"]]
    steps = sum(int(r["steps"]) for r in res)
    loop_s = (run["t_end"] - run["t_first"]) if run["t_first"] else None
    d = run["diagnostics"]
    starts = [
        float(np.hypot(r["path"][0][0] - r["goal"][0], r["path"][0][1] - r["goal"][1]))
        for r in res
        if r.get("path") and r.get("goal")
    ]

    def dnum(k: str) -> float | None:
        try:
            return round(float(d[k]), 2)
        except (KeyError, ValueError):
            return None

    plan = params["planner_node"]
    return {
        "task": task_of(params)[1],
        "title": task_of(params)[0],
        "distance_unit": task_of(params)[2],
        "loop_mode": "realtime" if a.realtime else "lockstep",
        "checkpoint": str(checkpoint),
        "episodes_requested": a.episodes,
        "episodes": len(res),
        "capped": run["capped"],
        "time_limit_s": a.time_limit,
        "seed": a.seed,
        "max_episode_steps": a.max_episode_steps,
        "successes": len(ok),
        "success_rate": round(len(ok) / len(res), 4) if res else None,
        "mean_steps_to_goal": round(float(np.mean([r["steps"] for r in ok])), 2) if ok else None,
        "mean_final_distance_px": round(
            float(np.mean([r["final_distance"] for r in res if r.get("final_distance") is not None])), 3
        )
        if res
        else None,
        "mean_start_distance_px": round(float(np.mean(starts)), 3) if starts else None,
        "sim_steps": steps,
        "control_rate_hz": round(steps / loop_s, 2) if loop_s and steps else None,
        # commands the collector matched to a frame it saw (best effort: a lower bound)
        "commands_per_s": round(run["commands"] / loop_s, 2) if loop_s else None,
        "planner_control_rate_hz": dnum("control_rate_hz"),
        "loop_latency_ms_p50": _pct(run["latency_ms"], 50),
        "loop_latency_ms_p99": _pct(run["latency_ms"], 99),
        "planner_latency_ms_p50": dnum("latency_ms_p50"),
        "planner_latency_ms_p99": dnum("latency_ms_p99"),
        "plan_ms_p50": dnum("plan_ms_p50"),
        "plan_ms_p99": dnum("plan_ms_p99"),
        "planner": {k: plan.get(k) for k in ("planner", "objectives")},
        "startup_s": round(run["t_first"] - run["t_start"], 2) if run["t_first"] else None,
        "episodes_s": round(loop_s, 2) if loop_s else None,
        "train_s": round(train_s, 1) if train_s is not None else None,
        "wall_s": round(wall_s, 2),
        "results": [{k: v for k, v in r.items() if k != "path"} for r in res],
    }


def print_summary(s: dict[str, Any], files: dict[str, str]) -> None:
    def f(x: Any, unit: str = "") -> str:
        return "n/a" if x is None else f"{x:g}{unit}" if isinstance(x, float) else f"{x}{unit}"

    mode = (
        "lockstep (sim_node holds each frame until planner_node has answered it)"
        if s["loop_mode"] == "lockstep"
        else "realtime (sim_node free-running, zero-order hold)"
    )
    line = "=" * 78
    rows = [
        ("task", s["task"]),
        ("loop", f"{mode}; sim_node + planner_node as separate processes over DDS"),
        ("checkpoint", s["checkpoint"]),
        (
            "episodes",
            f"{s['episodes']} of {s['episodes_requested']} "
            f"(seeds {s['seed']}..{s['seed'] + s['episodes_requested'] - 1}, "
            f"max {s['max_episode_steps']} steps)" + ("  ** CAPPED by --time-limit **" if s["capped"] else ""),
        ),
        ("success rate", f"{s['successes']}/{s['episodes']} = {100 * (s['success_rate'] or 0):.1f}%"),
        (
            "steps to goal",
            f"mean {f(s['mean_steps_to_goal'])} (successful episodes); "
            f"mean distance to goal {f(s['mean_start_distance_px'], ' ' + s['distance_unit'])} at start, "
            f"{f(s['mean_final_distance_px'], ' ' + s['distance_unit'])} at the end",
        ),
        (
            "control rate",
            f"{f(s['control_rate_hz'], ' sim steps/s')} achieved (each step = one plan on its own frame)"
            if s["loop_mode"] == "lockstep"
            else f"{f(s['control_rate_hz'], ' sim steps/s')} (sim clock); "
            f"planner {f(s['planner_control_rate_hz'], ' Hz')}",
        ),
        (
            "latency",
            f"frame stamp -> command received p50 {f(s['loop_latency_ms_p50'], ' ms')}, "
            f"p99 {f(s['loop_latency_ms_p99'], ' ms')}",
        ),
        (
            "planner",
            f"image -> command p50 {f(s['planner_latency_ms_p50'], ' ms')}, "
            f"p99 {f(s['planner_latency_ms_p99'], ' ms')}; "
            f"plan p50 {f(s['plan_ms_p50'], ' ms')} (last 300 steps, /diagnostics)",
        ),
        (
            "time",
            f"startup {f(s['startup_s'], ' s')}, episodes {f(s['episodes_s'], ' s')}, total {f(s['wall_s'], ' s')}"
            + (f" (incl. training {s['train_s']} s)" if s["train_s"] is not None else ""),
        ),
    ] + [(k, v) for k, v in files.items()]
    print(line)
    print(f" moejepa_ros demo: {s['title']} with a MoE JEPA world model + latent CEM")
    print(line)
    for k, v in rows:
        print(f" {k:<14} {v}")
    print(line, flush=True)


# ----------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    t0 = time.monotonic()
    out = a.out
    out.mkdir(parents=True, exist_ok=True)
    ckpt = a.checkpoint
    train_s = None
    try:
        if (a.retrain or not ckpt.is_file()) and a.config != DEFAULT_CONFIG:
            raise RuntimeError(f"{ckpt} is missing; --retrain trains only the Two-Rooms checkpoint")
        if a.retrain or not ckpt.is_file():
            why = "--retrain" if a.retrain else f"{ckpt} is missing"
            print(
                f"[demo] training the world model ({why}): moejepa-train {'/'.join(DEMO.commands)} "
                f"(config/recipes/{DEMO.name}.yaml)",
                flush=True,
            )
            train_s = train_checkpoint(ckpt, out / "train")
            print(f"[demo] trained {ckpt} in {train_s:.0f} s", flush=True)
        params = node_params(a.config, a, ckpt.resolve(), frame_stack_of(ckpt))
        print(
            f"[demo] {a.episodes} episodes, {'realtime' if a.realtime else 'lockstep'} loop, seed {a.seed}; "
            f"logs in {out / 'logs'}",
            flush=True,
        )
        run = run_episodes(a, params, out)
    except (RuntimeError, ValueError, OSError) as e:
        print(f"[demo] failed: {e}", file=sys.stderr)
        return 1
    files: dict[str, str] = {}
    results = run["results"]
    summary = summarise(a, run, ckpt, params, time.monotonic() - t0, train_s)
    if any(r.get("path") for r in results):
        from examples.demo_figures import draw_trajectories, write_episode_gif

        title = (
            f"{task_of(params)[0]}, {summary['successes']}/{summary['episodes']} reached "
            f"(seed {a.seed}, {summary['loop_mode']})"
        )
        files["trajectories"] = str(draw_trajectories(results, out / "trajectories.png", title))
        pick = a.gif_episode
        if pick is None:
            pick = next((r["episode"] for r in results if r["success"]), results[0]["episode"])
        chosen = next((r for r in results if r["episode"] == pick), None)
        if chosen is None:
            print(f"[demo] --gif-episode {pick} did not run; no GIF", file=sys.stderr)
        elif "wall_x" in chosen:  # the GIF redraws Two-Rooms frames from the path
            files["episode gif"] = f"{write_episode_gif(chosen, out / 'episode.gif')} (episode {pick})"
    summary["wall_s"] = round(time.monotonic() - t0, 2)
    files["summary"] = str(out / "summary.json")
    summary["files"] = files
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print_summary(summary, files)
    return 0 if results else 1


if __name__ == "__main__":
    sys.exit(main())
