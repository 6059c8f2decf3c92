"""ModelConfig: defaults valid, JSON round trip, errors that name the field, dense sizing."""

import json

import pytest

from moejepa_ros.model import ModelConfig, active_predictor_params, dense_equivalent


def test_defaults_validate_and_round_trip_through_json():
    cfg = ModelConfig()
    assert cfg.validate() is cfg
    again = ModelConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg


@pytest.mark.parametrize(
    "field,value",
    [
        ("encoder", "resnet"),
        ("latent_norm", "batchnorm"),
        ("latent_dim", 100),
        ("top_k", 5),
        ("image_size", 0),
        ("ema_momentum", 1.5),
        ("router_noise", -1.0),
        ("moe_impl", "fast"),
        ("conv_channels", []),
        ("frame_stack", 2.5),
    ],
)
def test_bad_field_is_named(field, value):
    with pytest.raises(ValueError, match=field):
        ModelConfig(**{field: value}).validate()


def test_bad_loss_field_and_unknown_keys_are_named():
    d = ModelConfig().to_dict()
    d["losses"]["rho"] = 0.0
    with pytest.raises(ValueError, match="losses.rho"):
        ModelConfig.from_dict(d)
    with pytest.raises(ValueError, match="bogus"):
        ModelConfig.from_dict({"bogus": 1})
    with pytest.raises(ValueError, match="nope"):
        ModelConfig.from_dict({"losses": {"nope": 1}})


def test_vit_patch_must_divide_image():
    with pytest.raises(ValueError, match="vit_patch"):
        ModelConfig(encoder="vit", vit_patch=7).validate()


@pytest.mark.parametrize("k,hidden", [(2, 128), (1, 96), (3, 200)])
def test_dense_equivalent_matches_active_params(k, hidden):
    cfg = ModelConfig(num_experts=4, top_k=k, expert_hidden=hidden)
    dense = dense_equivalent(cfg)
    assert dense.dense and dense.num_experts == 1 and dense.top_k == 1
    a, b = active_predictor_params(cfg), active_predictor_params(dense)
    assert abs(a - b) / a < 0.01
