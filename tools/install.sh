#!/usr/bin/env bash
# One install path for moejepa_ros: .venv with pinned Python deps (+ ROS 2 wheels when no
# ROS 2 is sourced) and, as root, the Debian packages MuJoCo needs to render offscreen.
# Idempotent: a stamp keyed by the lock file and this script makes a re-run take ~1 s.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
STAMP="$VENV/.moejepa-installed"
KEY=$(cat requirements.lock requirements-ros.lock tools/install.sh setup.py | sha256sum | cut -c1-16)
ROS_FROM_DISTRO=0
if [ -n "${ROS_DISTRO:-}" ] && "$PY" -c "import rclpy" 2>/dev/null; then ROS_FROM_DISTRO=1; fi
KEY="$KEY-ros$ROS_FROM_DISTRO"

# Debian packages for offscreen MuJoCo (EGL / OSMesa) — only when missing.
need_apt=()
for pkg in libegl1 libegl-mesa0 libgl1-mesa-dri libosmesa6; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "[install] apt-get install ${need_apt[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "[install] WARNING: missing ${need_apt[*]} (run as root or: sudo apt-get install ${need_apt[*]}); MuJoCo rendering may fail" >&2
  fi
fi

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$KEY" ]; then
  echo "[install] up to date ($VENV)"; exit 0
fi
if [ ! -x "$VENV/bin/python" ]; then
  if [ "$ROS_FROM_DISTRO" = 1 ]; then
    # A sourced ROS 2 provides rclpy and the messages: see them, never install the wheels beside them.
    "$PY" -m venv --system-site-packages "$VENV"
  else
    "$PY" -m venv "$VENV"
  fi
fi
PIP=("$VENV/bin/python" -m pip install -q --disable-pip-version-check)
filter() { grep -v "is ignored: it is neither a file nor a directory" || true; }
# torch first and pinned, so that no dependency can pull another (CUDA) build.
"${PIP[@]}" "torch==2.13.0" 2>&1 | filter
CONSTRAINT=$(mktemp); echo "torch==2.13.0" > "$CONSTRAINT"
"${PIP[@]}" -c "$CONSTRAINT" -r requirements.lock 2>&1 | filter
if [ "$ROS_FROM_DISTRO" = 0 ]; then
  "${PIP[@]}" -c "$CONSTRAINT" -r requirements-ros.lock 2>&1 | filter
fi
"${PIP[@]}" --no-deps --no-build-isolation -e . 2>&1 | filter
rm -f "$CONSTRAINT"
"$VENV/bin/python" -c "import torch, mujoco, dm_control, rosbags, cv2, safetensors, onnxruntime, onnxscript; assert torch.__version__.startswith('2.13.0'), torch.__version__"
echo "$KEY" > "$STAMP"
echo "[install] done ($VENV, torch $("$VENV/bin/python" -c 'import torch; print(torch.__version__)'))"
