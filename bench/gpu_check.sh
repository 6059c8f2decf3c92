#!/usr/bin/env bash
# The GPU figures in one `device` call: the CUDA tests, then the planner, encoder, control-step (torch,
# CUDA graphs, onnxruntime) and node benches on CUDA, every result as JSON under one folder.
#
#   PYTHON=<python with a CUDA torch> bench/gpu_check.sh [--smoke] [OUT_DIR]
#
# OUT_DIR defaults to $OUT (the device machine's return folder), else out/gpu_check. It holds env.json
# (torch, CUDA, card, onnxruntime providers), one <bench>.json per bench in bench.record's schema, its
# printed lines (<bench>.jsonl), steps.jsonl (each step's exit status and seconds), summary.json
# (all of it in one file) and gpu_check.log (stderr). Every step has its own time limit and a failing
# step does not stop the next; the limits add up to under 8 minutes. Without a CUDA device it stops
# after env.json. `--smoke`: the same steps on the CPU in a tiny configuration (seconds per step), to
# check the script itself where no GPU is lent.
set -u
SMOKE=0
if [ "${1:-}" = "--smoke" ]; then SMOKE=1; shift; fi
cd "$(dirname "$0")/.."
OUT_DIR=$(mkdir -p "${1:-${OUT:-out/gpu_check}}" && cd "${1:-${OUT:-out/gpu_check}}" && pwd)
PY=${PYTHON:-python3}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} MUJOCO_GL=${MUJOCO_GL:-egl}
LOG=$OUT_DIR/gpu_check.log
: >"$OUT_DIR/steps.jsonl"

# step NAME LIMIT_S CMD...: run CMD with a time limit, stdout to NAME.jsonl, its bench JSON to NAME.json
step() {
    local name=$1 limit=$2 t0 rc
    shift 2
    echo "== $name ($limit s): $*" | tee -a "$LOG"
    t0=$(date +%s)
    timeout -k 10 "$limit" "$@" >"$OUT_DIR/$name.jsonl" 2>>"$LOG"
    rc=$?
    [ -f "out/bench/$name.json" ] && mv "out/bench/$name.json" "$OUT_DIR/$name.json"
    echo "{\"step\": \"$name\", \"rc\": $rc, \"seconds\": $(($(date +%s) - t0))}" | tee -a "$OUT_DIR/steps.jsonl"
}

"$PY" - >"$OUT_DIR/env.json" <<'PY'
import json
import torch
env = {"torch": torch.__version__, "torch_cuda": torch.version.cuda, "cuda_available": torch.cuda.is_available()}
if torch.cuda.is_available():
    env.update(gpu=torch.cuda.get_device_name(0), capability=torch.cuda.get_device_capability(0),
               bf16=torch.cuda.is_bf16_supported())
try:
    import onnxruntime
    env.update(onnxruntime=onnxruntime.__version__, providers=onnxruntime.get_available_providers())
except ImportError as e:
    env.update(onnxruntime=None, onnxruntime_error=str(e))
print(json.dumps(env))
PY
cat "$OUT_DIR/env.json"
if [ "$SMOKE" = 0 ] && ! grep -q '"cuda_available": true' "$OUT_DIR/env.json"; then
    echo "gpu_check: $PY has no CUDA device (see env.json); run it with PYTHON=<python with a CUDA torch>" >&2
    exit 2
fi

if [ "$SMOKE" = 1 ]; then
    DEV=cpu
    step tests 120 "$PY" -m pytest -q -p no:cacheprovider test/test_control_device.py
    step planner 120 "$PY" -m bench.micro.bench_planner --device cpu --quick --threads 1 --plans 2 --rounds 1
    step encoder 60 "$PY" -m bench.micro.bench_encoder --device cpu --iters 3 --batches 1,4
    step export 120 "$PY" -m bench.micro.bench_export --device cpu --plans 2
    step node 120 "$PY" -m bench.micro.bench_node --cases 64_frame --seconds 2 --param device=cpu
else
    DEV=cuda
    # the CUDA tests (they skip on a CPU machine), the node test of test_export left out for time
    step tests 90 "$PY" -m pytest -q -p no:cacheprovider test/test_control_device.py test/test_export.py \
        -k "not planner_node"
    step planner 90 "$PY" -m bench.micro.bench_planner --device cuda --threads 1 --plans 40 --rounds 4
    step encoder 45 "$PY" -m bench.micro.bench_encoder --device cuda --iters 200 --batches 1,64,256
    step export 90 "$PY" -m bench.micro.bench_export --device cuda --plans 100
    step node 120 "$PY" -m bench.micro.bench_node --cases 64_frame,480x640_frame --seconds 10 --param device=cuda
fi

"$PY" - "$OUT_DIR" "$DEV" >"$OUT_DIR/summary.json" <<'PY'
import json, pathlib, sys
d = pathlib.Path(sys.argv[1])
summary = {"device": sys.argv[2], "env": json.loads((d / "env.json").read_text()),
           "steps": [json.loads(x) for x in (d / "steps.jsonl").read_text().splitlines() if x.strip()],
           "results": {}}
for s in summary["steps"]:
    f = d / f"{s['step']}.json"
    if f.exists():
        summary["results"][s["step"]] = json.loads(f.read_text())
print(json.dumps(summary, indent=1))
PY
echo "gpu_check: results in $OUT_DIR (summary.json)"
