"""Exact resume: a run stopped (or SIGKILLed) after a checkpoint and resumed ends with the same
weights, optimiser state and data position as an uninterrupted run with the same seed."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import torch
from safetensors.torch import load_file

from training.config import load_config
from training.data.cache import build_cache
from training.data.sampler import WindowSampler
from training.distributed import DistInfo
from training.rollouts import record_rollouts
from training.train_state import CheckpointManager
from training.trainer import Trainer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = [
    "model.latent_dim=16",
    "model.conv_channels=[4,8,8,8]",
    "model.expert_hidden=16",
    "model.head_hidden=16",
    "model.stage1_hidden=16",
    "model.action_embed_dim=4",
    "data.batch_size=4",
    "data.horizon=2",
    "run.progress=false",
    "run.tensorboard=false",
    "run.log_every=2",
    "optim.warmup_steps=2",
]


def windows(run_dir):
    """The trainer's real window source: Two-Rooms walks recorded as a rosbag2, cached, sampled.

    Built once per run dir (a resumed run reopens the same cache), so each test makes its own data."""
    data = os.path.join(run_dir, "data")
    if not os.path.isdir(os.path.join(data, "bag")):
        record_rollouts("two_rooms", "walk", 3, os.path.join(data, "bag"), max_steps=12, seed=1)
    cache = build_cache(os.path.join(data, "bag"), os.path.join(data, "cache"))
    return WindowSampler(cache, window=5, batch_size=4, seed=5, augment_shift=2)


def run(run_dir, steps, stop_at=0, ckpt_every=3, stage=2, prefetch=1, delay=0.0):
    cfg = load_config(
        [],
        TINY
        + [
            f"train.steps={steps}",
            f"train.stop_at={stop_at}",
            f"run.ckpt_every={ckpt_every}",
            f"data.prefetch={prefetch}",
            f"run.out_dir={run_dir}",
        ],
    )
    from moejepa_ros.model.config import ModelConfig
    from moejepa_ros.model.world_model import WorldModel

    torch.manual_seed(0)
    model = WorldModel(ModelConfig.from_dict(cfg.model))
    src = windows(run_dir)
    if delay:
        orig = src.sample
        src.sample = lambda: (time.sleep(delay), orig())[1]
    tr = Trainer(
        cfg,
        str(run_dir),
        model,
        src,
        stage,
        DistInfo(),
        torch.device("cpu"),
        lambda: {"action_low": [-1, -1], "action_high": [1, 1]},
    )
    # one thread in every process that takes part (a subprocess would use every core, this process
    # whatever an earlier in-process node set): a different thread count sums in another order
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return tr.run(), tr
    finally:
        torch.set_num_threads(threads)


def same_weights(a, b):
    wa, wb = load_file(os.path.join(a, "model.safetensors")), load_file(os.path.join(b, "model.safetensors"))
    assert wa.keys() == wb.keys()
    return all(torch.equal(wa[k], wb[k]) for k in wa)


def test_stop_and_resume_equals_uninterrupted(tmp_path):
    ref, ref_tr = run(tmp_path / "ref", 8)
    half, _ = run(tmp_path / "split", 8, stop_at=4)
    assert half.step == 4
    assert not same_weights(tmp_path / "ref", tmp_path / "split")
    res, tr = run(tmp_path / "split", 8)
    assert res.resumed_from.endswith("step_00000004") and res.step == 8
    assert same_weights(tmp_path / "ref", tmp_path / "split")  # online + EMA target + heads, bit-exact
    # optimiser moments and data position match too
    pa = [p for g in ref_tr.optimizer.param_groups for p in g["params"]]
    pb = [p for g in tr.optimizer.param_groups for p in g["params"]]
    for a, b in zip(pa, pb):
        sa, sb = ref_tr.optimizer.state[a], tr.optimizer.state[b]
        assert sa.keys() == sb.keys()
        for k in sa:
            assert torch.equal(sa[k], sb[k])
    assert ref_tr.source.state_dict() == tr.source.state_dict()
    # resuming a finished run is a no-op
    again, _ = run(tmp_path / "split", 8)
    assert again.step == 8


def test_stage1_resume_without_prefetch(tmp_path):
    run(tmp_path / "ref", 6, stage=1, prefetch=0)
    run(tmp_path / "split", 6, stop_at=3, stage=1, prefetch=0)
    run(tmp_path / "split", 6, stage=1, prefetch=0)
    assert same_weights(tmp_path / "ref", tmp_path / "split")


def test_sigkill_after_checkpoint_then_resume(tmp_path):
    """A subprocess is SIGKILLed once its first checkpoint exists; resuming reaches the same weights."""
    script = textwrap.dedent(f"""
        import sys; sys.path.insert(0, {ROOT!r}); sys.path.insert(0, {os.path.join(ROOT, "test")!r})
        from test_train_resume import run
        run({str(tmp_path / "killed")!r}, 10, ckpt_every=2, delay=0.4)
    """)
    p = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT)
    mgr = CheckpointManager(str(tmp_path / "killed" / "ckpt"))
    deadline = time.time() + 120
    try:
        while mgr.latest() is None and time.time() < deadline and p.poll() is None:
            time.sleep(0.05)
        assert mgr.latest() is not None, "no checkpoint appeared"
        os.kill(p.pid, signal.SIGKILL)
    finally:
        p.wait()
    assert p.returncode == -signal.SIGKILL
    killed_at = int(os.path.basename(mgr.latest())[5:])
    assert 0 < killed_at < 10
    res, _ = run(tmp_path / "killed", 10, ckpt_every=2)
    assert res.step == 10 and res.resumed_from is not None
    run(tmp_path / "ref", 10, ckpt_every=2)
    assert same_weights(tmp_path / "ref", tmp_path / "killed")
