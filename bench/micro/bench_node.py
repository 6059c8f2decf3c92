"""planner_node end to end over DDS: camera process → planner_node → action listener process.

Three processes, like on a robot: a camera publishing rgb8 images at 30 Hz stamped with the
wall clock, planner_node (config/planner.yaml, the default config, with the default
untrained world model unless --checkpoint is given), and a listener that timestamps every
command. Reports image-stamp → command-receipt latency p50/p99, the achieved control rate,
frames the planner skipped, the planner's CPU % and RSS, deadline misses from its
/diagnostics. Cases: 64×64 and 480×640 images, control_trigger frame vs timer side by side
(same run, so the ratio is meaningful on a shared machine). `--debug` runs every case twice,
debug view off and on (`debug.enabled`: plan path, scalars, debug image), so its cost shows
side by side. `--soak SECONDS` adds one long 64×64 run reporting RSS at start and end. On a GPU,
`--param device=cuda` (and `cuda_graphs`, `encoder_precision`, `backend` likewise) runs the planner
there. Writes `bench.record`'s node.json.

    .venv/bin/python -m bench.micro.bench_node [--seconds 10] [--soak 120] [--debug] [--checkpoint PATH] [--record]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from bench import record
from moejepa_ros.share import share_path

ROOT = record.ROOT

os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("ROS_DOMAIN_ID", str(50 + os.getpid() % 40))
os.environ.setdefault("ROS_LOG_DIR", str(ROOT / "build" / "ros_log"))
os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")


# ============================================================== child roles
def role_camera(a: argparse.Namespace) -> None:
    """Publish `a.rate` Hz rgb8 images of a.height×a.width for a.seconds, stamped with time.time_ns()."""
    from sensor_msgs.msg import Image

    from moejepa_ros import codecs
    from moejepa_ros.ros.messages import IMAGE_PUB_QOS
    from moejepa_ros.ros.probe import Probe

    probe = Probe("bench_camera")
    pub = probe.publisher(Image, "image", IMAGE_PUB_QOS)
    probe.wait_for_subscribers(pub, 1, timeout=60)
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (a.height, a.width, 3), dtype=np.uint8) for _ in range(8)]
    msg = codecs.make_image(Image, frames[0], "rgb8", 0, "camera")
    sent = 0
    stamps: list[int] = []
    t_next = time.monotonic()
    t_end = t_next + a.seconds
    while time.monotonic() < t_end:
        codecs.fill_image(msg, frames[sent % len(frames)], "rgb8")
        ns = time.time_ns()
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(ns, 1_000_000_000)
        pub.publish(msg)
        stamps.append(ns)
        sent += 1
        t_next += 1.0 / a.rate
        time.sleep(max(0.0, t_next - time.monotonic()))
    Path(a.out).write_text(json.dumps({"sent": sent, "seconds": a.seconds, "stamps": stamps}))
    probe.close()


def role_listener(a: argparse.Namespace) -> None:
    """Record (stamp, receipt) of every command and the planner's last diagnostics until a.seconds pass."""
    from diagnostic_msgs.msg import DiagnosticArray
    from geometry_msgs.msg import TwistStamped

    from moejepa_ros.ros.probe import Probe

    probe = Probe("bench_listener")
    rows: list[tuple[int, int]] = []
    diags: list[tuple[int, dict[str, str]]] = []

    def on_action(m: TwistStamped) -> None:
        rows.append((m.header.stamp.sec * 1_000_000_000 + m.header.stamp.nanosec, time.time_ns()))

    def on_diag(m: DiagnosticArray) -> None:
        for st in m.status:
            if "planner_node" in st.name and st.name.endswith(": control"):  # not its topic statuses
                diags.append((time.time_ns(), {kv.key: kv.value for kv in st.values}))

    probe.node.create_subscription(TwistStamped, "action", on_action, 100)
    probe.node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 10)
    Path(a.out + ".ready").write_text("1")
    time.sleep(a.seconds)  # the measurement window itself, not a synchronisation wait
    Path(a.out).write_text(json.dumps({"rows": rows, "diags": diags}))
    probe.close()


# ============================================================== orchestration
def proc_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def make_checkpoint(path: Path) -> Path:
    import torch

    from moejepa_ros.model import ModelConfig, WorldModel, save_checkpoint

    torch.manual_seed(0)
    cfg = ModelConfig()  # the default world model
    return save_checkpoint(
        path, WorldModel(cfg), {"action_low": [-1.0] * cfg.action_dim, "action_high": [1.0] * cfg.action_dim}
    )


def run_case(
    name: str,
    ckpt: Path,
    height: int,
    width: int,
    seconds: float,
    trigger: str,
    work: Path,
    warmup: float = 3.0,
    overrides: dict | None = None,
) -> dict:
    """One case's latency and rate, with the planner's CPU % / RSS sampled over the measured window."""
    import threading

    from moejepa_ros.ros.node_process import NodeProcess
    from moejepa_ros.ros.probe import wait_until
    from testing.ros_harness import write_params

    base = yaml.safe_load(share_path("config", "planner.yaml").read_text())["planner_node"]["ros__parameters"]
    p = dict(base)
    p.update(checkpoint=str(ckpt), action_type="twist_stamped", control_trigger=trigger, diagnostics_period=1.0)
    p.update(overrides or {})
    params = write_params(work / f"{name}.yaml", {"planner_node": p})
    total = warmup + seconds
    planner = NodeProcess("planner_node", params, log_path=work / f"{name}.planner.log").start()
    usage: dict = {}
    watcher = threading.Thread(target=watch_usage, args=(planner.pid, warmup, seconds, usage), daemon=True)
    watcher.start()
    me = [sys.executable, "-m", "bench.micro.bench_node"]  # run from the repo root, like this process
    lst_out, cam_out = work / f"{name}.listener.json", work / f"{name}.camera.json"
    listener = NodeProcess("x", log_path=work / f"{name}.listener.log")
    listener.cmd = me + ["--role", "listener", "--seconds", str(total + 6), "--out", str(lst_out)]
    camera = NodeProcess("x", log_path=work / f"{name}.camera.log")
    camera.cmd = me + [
        "--role",
        "camera",
        "--seconds",
        str(total),
        "--height",
        str(height),
        "--width",
        str(width),
        "--out",
        str(cam_out),
    ]
    try:
        listener.start()
        wait_until(lambda: Path(str(lst_out) + ".ready").exists(), 60, "the listener")
        camera.start()
        wait_until(lambda: cam_out.exists() or not camera.alive(), total + 90, "the camera run")
        wait_until(lambda: lst_out.exists() or not listener.alive(), 30, "the listener result")
    finally:
        for proc in (camera, listener):
            proc.stop()
    res_cam = json.loads(cam_out.read_text())
    res = json.loads(lst_out.read_text())
    planner.stop()
    watcher.join(timeout=5)
    rows = np.asarray(res["rows"], dtype=np.int64).reshape(-1, 2)
    cam = np.asarray(res_cam["stamps"], dtype=np.int64)
    start = cam[0] + int(warmup * 1e9)
    # The planner's report from the end of the window (its rate estimates cover the last 2 s).
    before = [v for t, v in res["diags"] if t <= cam[-1] - 500_000_000]
    d = before[-1] if before else {}
    # Only commands answering camera frames (zero commands are stamped by the planner itself).
    keep = np.isin(rows[:, 0], cam) & (rows[:, 0] >= start)
    lat = (rows[keep, 1] - rows[keep, 0]) / 1e6
    stamps = np.unique(rows[keep, 0])
    span = (stamps.max() - stamps.min()) / 1e9 if len(stamps) > 1 else float("nan")
    sent_in_window = int((cam >= start).sum())
    return {
        "case": name,
        "image": f"{height}x{width}",
        "trigger": trigger,
        "seconds": seconds,
        "frames_sent": res_cam["sent"],
        "commands": int(keep.sum()),
        "latency_ms_p50": round(float(np.percentile(lat, 50)), 2) if len(lat) else None,
        "latency_ms_p99": round(float(np.percentile(lat, 99)), 2) if len(lat) else None,
        "latency_ms_max": round(float(lat.max()), 2) if len(lat) else None,
        "control_rate_hz": round((len(stamps) - 1) / span, 2) if len(stamps) > 1 else 0.0,
        "frames_in_window": sent_in_window,
        "frames_skipped": int(sent_in_window - len(stamps)),
        "planner_diag": {
            k: d.get(k)
            for k in (
                "plan_ms_p50",
                "plan_ms_p99",
                "compute_ms_p99",
                "encode_ms_p50",
                "debug_ms_p50",
                "debug_ms_p99",
                "deadline_misses",
                "frames_dropped",
                "input_rate_hz",
                "control_rate_hz",
                "planner",
            )
        },
        **usage,
    }


def watch_usage(pid: int, warmup: float, seconds: float, out: dict) -> None:
    """Put the CPU % and RSS of process `pid` over the measured window into `out` (nothing if it ends first)."""
    time.sleep(warmup + 4.0)  # the camera waits for discovery; begin after model load + warm-up
    w = CpuWatch(pid)
    try:
        w.start()
        time.sleep(max(1.0, seconds - 2.0))
        out.update(w.stop())
    except (FileNotFoundError, ProcessLookupError):
        pass


class CpuWatch:
    """CPU % and RSS of a process between start() and stop() (from /proc)."""

    def __init__(self, pid: int):
        self.pid = pid

    def start(self) -> None:
        self.t0, self.c0, self.rss0 = time.monotonic(), proc_cpu_seconds(self.pid), proc_rss_mb(self.pid)

    def stop(self) -> dict:
        dt = time.monotonic() - self.t0
        return {
            "cpu_percent": round(100 * (proc_cpu_seconds(self.pid) - self.c0) / dt, 1),
            "rss_mb_start": round(self.rss0, 1),
            "rss_mb_end": round(proc_rss_mb(self.pid), 1),
        }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--role", choices=["camera", "listener"], help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--rate", type=float, default=30.0)
    ap.add_argument("--height", type=int, default=64)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=10.0, help="measured seconds per case")
    ap.add_argument("--soak", type=float, default=0.0, help="also run one 64x64 case this long")
    ap.add_argument("--checkpoint", default=None, help="default: an untrained default-config model")
    ap.add_argument("--debug", action="store_true", help="run every case with the debug view off and on")
    ap.add_argument(
        "--cases",
        default="64_frame,64_timer,480x640_frame",
        help="comma list of 64_frame, 64_timer, 480x640_frame, 480x640_timer",
    )
    ap.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=YAML",
        help="override a planner_node parameter in every case, e.g. planner.samples=64",
    )
    record.add_arguments(ap, "node")
    a = ap.parse_args()
    if a.role == "camera":
        return role_camera(a)
    if a.role == "listener":
        return role_listener(a)

    from moejepa_ros.ros import dds

    dds.ensure_fastdds_profile()
    work = Path(tempfile.mkdtemp(prefix="bench_node_"))
    ckpt = Path(a.checkpoint) if a.checkpoint else make_checkpoint(work / "default.safetensors")
    overrides = {k: yaml.safe_load(v) for k, v in (x.split("=", 1) for x in a.param)}
    results = []
    for case in a.cases.split(","):
        size, trigger = case.rsplit("_", 1)
        h, w = (64, 64) if size == "64" else tuple(int(x) for x in size.split("x"))
        for debug in (False, True) if a.debug else (False,):
            name = f"{case}_debug" if debug else case
            over = {**overrides, "debug.enabled": True} if debug else overrides
            r = run_case(name, ckpt, h, w, a.seconds, trigger, work, overrides=over)
            r["debug"] = debug
            print(json.dumps(r), flush=True)
            results.append(r)
    if a.soak > 0:
        r = run_case("soak_64_frame", ckpt, 64, 64, a.soak, "frame", work, overrides=overrides)
        print(json.dumps(r), flush=True)
        results.append(r)
    out = {
        "meta": {
            "checkpoint": "default ModelConfig (untrained)" if not a.checkpoint else a.checkpoint,
            "config": "config/planner.yaml",
            "overrides": overrides,
            "debug": "each case with debug.enabled off, then on" if a.debug else "off",
            "fastdds_profile": os.environ.get("FASTDDS_DEFAULT_PROFILES_FILE"),
            "note": "shared 2-core machine: compare cases within one run",
        },
        "results": results,
    }
    record.write_result(a, out)


if __name__ == "__main__":
    main()
