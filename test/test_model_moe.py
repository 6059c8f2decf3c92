"""MoE: top-k gating, batched experts == naive loop (forward and backward), Switch aux losses."""

import pytest
import torch
import torch.nn.functional as F

from moejepa_ros.model import ModelConfig, MoE, Predictor, routing_aux, top_k_gates


def make_moe(E=4, k=2, D=16, Ea=8, H=24, seed=0):
    torch.manual_seed(seed)
    moe = MoE(D, Ea, H, E, k)
    with torch.no_grad():
        moe.router.weight.normal_(std=1.0)  # decisive routing so experts really differ
    return moe


def test_top_k_picks_largest_logits_and_gates_sum_to_one():
    torch.manual_seed(1)
    logits = torch.randn(50, 6)
    for k in (1, 2, 3, 6):
        idx, g = top_k_gates(logits, k)
        ref = logits.argsort(-1, descending=True)[:, :k]
        assert torch.equal(idx.sort(-1).values, ref.sort(-1).values)
        torch.testing.assert_close(g.sum(-1), torch.ones(50))
        torch.testing.assert_close(g, F.softmax(logits.gather(1, idx), -1))
        assert (g[:, :-1] >= g[:, 1:]).all()  # ordered like the logits


def _inputs(T, D, Ea, concentrated, seed=2):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(1 if concentrated else T, D, generator=g).expand(T, D).clone()
    e = torch.randn(T, Ea, generator=g) * (0.05 if concentrated else 1.0)
    return z, e


@pytest.mark.parametrize("impl", ["grouped", "masked", "auto"])
@pytest.mark.parametrize("concentrated", [False, True])
@pytest.mark.parametrize("T", [1, 7, 300])
def test_batched_experts_match_loop_forward_and_backward(impl, concentrated, T):
    moe = make_moe()
    z, e = _inputs(T, 16, 8, concentrated)
    outs, grads = [], []
    for mode in ("loop", impl):
        z_ = z.clone().requires_grad_(True)
        e_ = e.clone().requires_grad_(True)
        moe.zero_grad()
        y, aux = moe(z_, e_, impl=mode)
        (y * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()
        outs.append(y.detach())
        grads.append([z_.grad, e_.grad] + [p.grad.clone() for p in moe.parameters()])
    torch.testing.assert_close(outs[1], outs[0], rtol=1e-5, atol=1e-5)
    for a, b in zip(grads[1], grads[0]):  # float32 sums over T tokens in another order
        assert a is not None and b is not None
        torch.testing.assert_close(a, b, rtol=1e-4, atol=(1e-5 + 1e-6 * T) * (1.0 + b.abs().max().item()))


@pytest.mark.parametrize("impl", ["grouped", "masked", "loop"])
def test_shared_z_cache_matches_full_computation(impl):
    moe = make_moe()
    z, e = _inputs(64, 16, 8, concentrated=True)
    y_full, _ = moe(z, e, impl=impl)
    y_fast, _ = moe(z[:1].expand(64, -1), e, zcache=moe.z_part(z[:1]), impl=impl)
    torch.testing.assert_close(y_fast, y_full, rtol=1e-5, atol=1e-5)


def test_load_balancing_loss_is_minimal_at_uniform_load():
    E, T = 4, 400
    uniform = torch.zeros(T, E)
    idx_u = torch.arange(T).remainder(E).view(T, 1)
    assert routing_aux(uniform, idx_u, E)["balance"].item() == pytest.approx(1.0)
    torch.manual_seed(3)
    for _ in range(20):  # top-1 routing by the argmax: any skew costs more than uniform
        logits = torch.randn(T, E) * 3 + torch.randn(E) * 2
        idx = logits.argmax(-1, keepdim=True)
        assert routing_aux(logits, idx, E)["balance"].item() >= 1.0 - 1e-5
    skew = torch.tensor([[5.0, 0, 0, 0]]).expand(T, E)
    aux = routing_aux(skew, torch.zeros(T, 1, dtype=torch.long), E)
    assert aux["balance"].item() > 3.0
    torch.testing.assert_close(aux["load"], torch.tensor([1.0, 0, 0, 0]))
    assert aux["entropy"].item() < routing_aux(uniform, idx_u, E)["entropy"].item()
    torch.testing.assert_close(routing_aux(uniform, idx_u, E)["load"], torch.full((E,), 0.25))


def test_balance_gradient_pushes_towards_uniform():
    E, T = 4, 256
    torch.manual_seed(4)
    logits = (torch.randn(T, E) + torch.tensor([2.0, 0, 0, 0])).requires_grad_(True)
    idx = logits.topk(1, -1).indices
    routing_aux(logits, idx, E)["balance"].backward()
    assert logits.grad[:, 0].mean() > 0  # descending lowers the overloaded expert's logit


def test_router_runs_in_float32_and_noise_only_in_training():
    moe = make_moe()
    moe.router_noise = 5.0
    z, e = _inputs(100, 16, 8, False)
    moe.eval()
    a = moe.route(z, e)[1]
    assert torch.equal(a, moe.route(z, e)[1])
    assert moe.route(z.double(), e.double())[0].dtype == torch.float32
    moe.train()
    assert not torch.equal(moe.route(z, e)[1], a)


def test_one_expert_moe_equals_plain_dense_mlp():
    cfg = ModelConfig(
        latent_dim=16,
        action_embed_dim=8,
        expert_hidden=24,
        action_dim=3,
        num_experts=1,
        top_k=1,
        latent_norm="layernorm",
    )
    dense_cfg = ModelConfig(
        latent_dim=16, action_embed_dim=8, expert_hidden=24, action_dim=3, dense=True, latent_norm="layernorm"
    )
    torch.manual_seed(5)
    p1 = Predictor(cfg)
    p2 = Predictor(dense_cfg)
    p2.load_state_dict(p1.state_dict())
    z, a = torch.randn(10, 16), torch.randn(10, 3)
    e = F.silu(a @ p1.action_embed.weight.t() + p1.action_embed.bias)
    m = p1.moe
    ref = F.layer_norm(
        z + F.silu(torch.cat([z, e], -1) @ m.w1[0] + m.b1[0]) @ m.w2[0] + m.b2[0], (16,), p1.norm.weight, p1.norm.bias
    )
    for impl in ("masked", "grouped", "loop"):
        p1.moe.impl = impl
        torch.testing.assert_close(p1(z, a), ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(p2(z, a), ref, rtol=1e-5, atol=1e-5)
