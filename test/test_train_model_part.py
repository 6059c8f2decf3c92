"""Training one part of a world model while the rest stays bit-identical (refine, goal)."""

import pytest
import torch

from testing.models import tiny_model
from training.model_part import check_unchanged, train_only, with_new_part


def test_new_part_carries_the_rest_and_the_contract_catches_a_moved_tensor():
    model = tiny_model()
    big = with_new_part(model, "predictor.", {"expert_hidden": 24}, seed=0, device=torch.device("cpu"))
    assert big.cfg.expert_hidden == 24
    sm, sb = model.state_dict(), big.state_dict()
    assert all(torch.equal(sm[k], sb[k]) for k in sm if not k.startswith("predictor."))
    frozen = train_only(big, "predictor.")
    assert all(p.requires_grad == n.startswith("predictor.") for n, p in big.named_parameters())
    with torch.no_grad():
        next(big.predictor.parameters()).add_(1.0)
    check_unchanged(big, frozen, "refine")  # the trained part may move
    with torch.no_grad():
        next(big.encoder.parameters()).add_(1.0)
    with pytest.raises(RuntimeError, match="refine changed frozen tensors"):
        check_unchanged(big, frozen, "refine")
    with pytest.raises(ValueError):
        with_new_part(model, "predictor.", {"top_k": 5}, seed=0, device=torch.device("cpu"))
