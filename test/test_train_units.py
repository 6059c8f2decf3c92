"""Units of the training side: config schema/overrides/help, LR schedule, optimiser flattening,
RNG capture, atomic checkpoint directories."""

import json
import os
import random

import numpy as np
import pytest
import torch

from training.cli import build_parser
from training.config import ConfigError, load_config, options_help
from training.optim import WarmupCosine, make_optimizer
from training.train_state import CheckpointManager, capture_rng, flatten_optimizer, restore_rng, unflatten_optimizer


def test_yaml_and_overrides_merge_with_schema():
    cfg = load_config(["tiny"], ["optim.lr=0.5", "model.latent_dim=24", "data.bags=[a,b]", "run.seed=3"])
    assert cfg.optim.lr == 0.5 and cfg.model["latent_dim"] == 24 and cfg.data.bags == ["a", "b"]
    assert cfg.model["conv_channels"] == [8, 16, 16, 16]  # from tiny.yaml
    assert cfg.run.seed == 3 and cfg.train.steps == 20


@pytest.mark.parametrize(
    "override, needle",
    [
        ("optim.lr=abc", "optim.lr"),
        ("optim.nope=1", "nope"),
        ("optim.lr=-1", "optim.lr"),
        ("collect.storage=zip", "collect.storage"),
        ("baseline.kind=magic", "baseline.kind"),
        ("data.depth_range=[5,1]", r"data.depth_range=\[5.0, 1.0\] must be \[lo, hi\]"),
        ("data.mono16_range=[1,2,3]", "data.mono16_range"),
        ("lr", "key=value"),
        ("data.augment_rotate=200", r"data.augment_rotate=200.0: must be in \[0, 180\]"),
        ("data.augment_rotate=90", "set mbrl.loop=online"),  # the rounds loop's data never turns
    ],
)
def test_bad_options_name_the_key(override, needle):
    with pytest.raises(ConfigError, match=needle):
        load_config([], [override])


def test_missing_config_file_lists_known():
    with pytest.raises(ConfigError, match="tiny"):
        load_config(["no_such_config"], [])


def test_help_documents_every_option(capsys):
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(["fit", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for key in (
        "optim.lr",
        "optim.warmup_steps",
        "train.stop_at",
        "run.ckpt_every",
        "fit.init_encoder",
        "baseline.kind",
        "data.batch_size",
        "run.resume",
    ):
        assert key in out
    assert "peak learning rate" in out
    assert "mbrl.iterations" in options_help(["mbrl"])


def test_warmup_cosine_schedule():
    p = torch.nn.Parameter(torch.zeros(3))
    opt = torch.optim.SGD([p], lr=1.0)
    s = WarmupCosine(opt, 1.0, warmup=4, total=14, min_ratio=0.1)
    lrs = []
    for _ in range(14):
        lrs.append(opt.param_groups[0]["lr"])
        s.step()
    assert lrs[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert lrs[4] == pytest.approx(1.0) and lrs[-1] > 0.1 and lrs[-1] < 0.15
    assert all(a >= b for a, b in zip(lrs[3:], lrs[4:]))
    s2 = WarmupCosine(opt, 1.0, 4, 14, 0.1)
    s2.load_state_dict(s.state_dict())
    assert s2.get_lr() == pytest.approx(0.1)


def test_no_weight_decay_on_biases_and_lr_scale():
    m = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4))
    opt = make_optimizer(m, 1e-3, 0.1, (0.9, 0.99), lr_scale={"1.": 0.5})
    for g in opt.param_groups:
        for n in g["names"]:
            assert (g["weight_decay"] > 0) == (n == "0.weight")
            assert g["lr_scale"] == (0.5 if n.startswith("1.") else 1.0)


def test_optimizer_flatten_roundtrip():
    torch.manual_seed(0)
    m = torch.nn.Linear(4, 3)
    opt = make_optimizer(m, 1e-2, 0.01, (0.9, 0.99))
    for _ in range(3):
        opt.zero_grad()
        m(torch.randn(5, 4)).pow(2).sum().backward()
        opt.step()
    js, tensors = flatten_optimizer(opt)
    json.dumps(js)  # JSON-only besides the tensors
    m2 = torch.nn.Linear(4, 3)
    opt2 = make_optimizer(m2, 1e-2, 0.01, (0.9, 0.99))
    unflatten_optimizer(opt2, json.loads(json.dumps(js)), tensors)
    for (a, sa), (b, sb) in zip(opt.state.items(), opt2.state.items()):
        for k in sa:
            assert torch.equal(sa[k], sb[k])


def test_rng_capture_restore_through_json():
    js = json.loads(json.dumps(capture_rng()))
    a = (torch.rand(3), np.random.rand(3), random.random())
    restore_rng(js)
    b = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]


def test_checkpoint_manager_atomic_latest_and_prune(tmp_path):
    mgr = CheckpointManager(str(tmp_path / "ckpt"), keep=2)
    lin = torch.nn.Linear(2, 2)

    def save_model(p):
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in lin.state_dict().items()}, p)

    for step in (1, 2, 3):
        mgr.save(step, save_model, None, {"x": step})
    assert sorted(os.listdir(tmp_path / "ckpt")) == ["latest", "step_00000002", "step_00000003"]
    assert mgr.latest().endswith("step_00000003")
    js, _ = mgr.load(mgr.latest())
    assert js["x"] == 3 and js["step"] == 3
    # a writer killed mid-way leaves a tmp dir and a dangling pointer: the last complete one wins
    os.makedirs(tmp_path / "ckpt" / "step_00000004.tmp-999")
    (tmp_path / "ckpt" / "latest").write_text(json.dumps({"step": 4, "dir": "step_00000004"}))
    assert mgr.latest().endswith("step_00000003")
    os.remove(tmp_path / "ckpt" / "step_00000003" / "state.json")
    assert mgr.latest().endswith("step_00000002")
