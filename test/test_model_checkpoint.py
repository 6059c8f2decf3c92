"""Checkpoints: bit-exact round trip rebuilt from the JSON header alone; every corruption → CheckpointError."""

import json
import struct

import pytest
import torch
from safetensors.torch import save_file

from moejepa_ros.model import (
    FORMAT_VERSION,
    CheckpointError,
    ModelConfig,
    WorldModel,
    load_checkpoint,
    read_meta,
    save_checkpoint,
)
from testing.models import small_config


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    wm = WorldModel(small_config(encoder="conv"))
    with torch.no_grad():  # make the target differ from the online encoder
        for p in wm.target_encoder.parameters():
            p.add_(1.0)
    path = save_checkpoint(
        tmp_path / "wm.safetensors", wm, {"action_low": [-1, -2], "action_high": [1, 2], "training": {"step": 7}}
    )
    return wm, path


def test_round_trip_is_bit_exact_and_rebuilt_from_json(saved, tmp_path):
    wm, path = saved
    assert [p.name for p in tmp_path.iterdir()] == ["wm.safetensors"]  # no temp file left
    model, meta = load_checkpoint(path)
    assert meta["format_version"] == FORMAT_VERSION
    assert meta["action_low"] == [-1.0, -2.0] and meta["action_high"] == [1.0, 2.0]
    assert meta["training"] == {"step": 7} and meta["preprocessing"]["frame_stack"] == 3
    assert model.cfg == wm.cfg and ModelConfig.from_dict(meta["model_config"]) == wm.cfg
    a, b = wm.state_dict(), model.state_dict()
    assert a.keys() == b.keys() and any(k.startswith("target_encoder.") for k in a)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    frames = torch.randint(0, 256, (2, 3, 16, 16, 3), dtype=torch.uint8)
    wm.eval()
    assert torch.equal(wm.encode(frames), model.encode(frames))
    assert torch.equal(wm.encode_target(frames), model.encode_target(frames))
    save_checkpoint(path, model, {})  # overwrite in place (atomic replace)
    assert load_checkpoint(path)[1]["action_low"] is None


def test_vit_config_round_trip(tmp_path):
    wm = WorldModel(small_config(encoder="vit", vit_patch=4, vit_dim=16, vit_depth=1, vit_heads=2))
    model, _ = load_checkpoint(save_checkpoint(tmp_path / "v.safetensors", wm))
    for k, v in wm.state_dict().items():
        assert torch.equal(v, model.state_dict()[k])


def _header(path):
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    return json.loads(raw[8 : 8 + n]), raw[8 + n :]


def _rewrite(path, header, body):
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    path.write_bytes(struct.pack("<Q", len(h)) + h + body)


def _meta_edit(key, value):
    def edit(path):
        header, body = _header(path)
        header["__metadata__"][key] = value
        _rewrite(path, header, body)

    return edit


def _meta_drop(key):
    def edit(path):
        header, body = _header(path)
        del header["__metadata__"][key]
        _rewrite(path, header, body)

    return edit


def _truncate(path):
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])


def _garbage(path):
    path.write_bytes(b"\x00\x01 not a checkpoint")


def _wrong_shapes(path):
    meta = read_meta(path)
    cfg = dict(meta["model_config"], latent_dim=64)  # header says 64, tensors are for 32
    header, _ = _header(path)
    tensors = {k: v.contiguous() for k, v in WorldModel(small_config()).state_dict().items()}
    md = dict(header["__metadata__"], model_config=json.dumps(cfg))
    save_file(tensors, str(path), metadata=md)


def _missing_tensor(path):
    header, _ = _header(path)
    tensors = {
        k: v.contiguous()
        for k, v in WorldModel(small_config()).state_dict().items()
        if not k.startswith("target_encoder.")
    }
    save_file(tensors, str(path), metadata=header["__metadata__"])


def _no_metadata(path):
    save_file({"x": torch.zeros(2)}, str(path))


CASES = {
    "missing": (lambda p: p.unlink(), "does not exist"),
    "truncated": (_truncate, "truncated|readable"),
    "garbage": (_garbage, "readable"),
    "no metadata": (_no_metadata, "metadata"),
    "unknown version": (_meta_edit("format_version", "99"), "format_version"),
    "garbled config json": (_meta_edit("model_config", "{not json"), "model_config"),
    "bad config value": (_meta_edit("model_config", json.dumps({"latent_dim": -3})), "latent_dim"),
    "missing config": (_meta_drop("model_config"), "model_config"),
    "bad bounds": (_meta_edit("action_low", "[1, 2, 3]"), "action_low"),
    "wrong shapes": (_wrong_shapes, "shape"),
    "missing tensors": (_missing_tensor, "missing"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_corrupt_checkpoints_raise_checkpoint_error(saved, case):
    _, path = saved
    corrupt, match = CASES[case]
    corrupt(path)
    with pytest.raises(CheckpointError, match=match) as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_save_rejects_bad_meta(tmp_path):
    wm = WorldModel(small_config())
    with pytest.raises(CheckpointError, match="action_high"):
        save_checkpoint(tmp_path / "x.safetensors", wm, {"action_high": [1.0]})
    with pytest.raises(CheckpointError, match="unknown meta"):
        save_checkpoint(tmp_path / "x.safetensors", wm, {"optimizer": 1})
    assert not list(tmp_path.iterdir())


def test_a_derived_checkpoint_keeps_the_parents_bounds_and_preprocessing(saved, tmp_path):
    from moejepa_ros.model.checkpoint import save_derived

    wm, path = saved
    model, meta = load_checkpoint(path)
    meta["preprocessing"] = {**meta["preprocessing"], "depth_range": [0.0, 5.0]}
    out = save_derived(tmp_path / "refined.safetensors", model, meta, {"subcommand": "refine"})
    _, derived = load_checkpoint(out)
    assert derived["action_low"] == [-1.0, -2.0] and derived["action_high"] == [1.0, 2.0]
    assert derived["preprocessing"] == meta["preprocessing"]
    assert derived["training"] == {"subcommand": "refine"}
