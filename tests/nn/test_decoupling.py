"""cRT, τ-normalisation, LWS and NCM of the decoupling paper (lib/nn/decoupling.py)."""
import math

import pytest
import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_pre_hook

from lib.data.longtail import ClassBalancedSampler
from lib.models.resnet_cifar import ResNetCIFAR
from lib.nn.decoupling import (
    FrozenBackboneClassifier,
    LWSClassifier,
    NCMClassifier,
    TauNormClassifier,
    class_weight_norms,
    extract_features,
    select_tau,
    tau_normalize,
    train_classifier,
)


def linear(seed=0, d=8, c=5):
    torch.manual_seed(seed)
    layer = nn.Linear(d, c)
    with torch.no_grad():
        layer.weight.mul_(torch.arange(1, c + 1, dtype=torch.float32)[:, None])   # unequal row norms
    return layer


def test_tau_zero_is_the_original_and_tau_one_gives_unit_rows():
    w = linear().weight.detach()
    assert torch.equal(tau_normalize(w, 0), w)
    assert torch.allclose(class_weight_norms(tau_normalize(w, 1)), torch.ones(5))
    half = class_weight_norms(tau_normalize(w, 0.5))
    assert torch.allclose(half, class_weight_norms(w).sqrt(), rtol=1e-5)
    x = torch.randn(4, 8)
    assert torch.allclose(TauNormClassifier(w, 0)(x), x @ w.T)
    with pytest.raises(ValueError, match="tau must be a finite number >= 0, got -1"):
        tau_normalize(w, -1)


def test_select_tau_returns_the_best_of_the_sweep():
    layer = linear()
    x = torch.randn(200, 8)
    y = torch.randint(0, 5, (200,))
    tau, curve = select_tau(layer.weight.detach(), x, y)
    assert set(curve) == {round(0.1 * k, 1) for k in range(21)}
    assert curve[tau] == max(curve.values())


def test_lws_with_unit_scales_equals_the_original_classifier_and_trains_only_scales():
    layer = linear()
    lws = LWSClassifier(layer)
    x = torch.randn(6, 8)
    assert torch.allclose(lws(x), layer(x))
    assert [n for n, p in lws.named_parameters()] == ["scales"]
    lws(x).sum().backward()
    assert lws.scales.grad is not None and lws.weight.grad is None
    assert torch.allclose(lws.effective_weight(), layer.weight)


@pytest.mark.parametrize("distance", ["cosine", "euclidean", "dot"])
@pytest.mark.parametrize("center", [False, True])
def test_ncm_predicts_the_nearest_mean(distance, center):
    feats = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9], [-1.0, 0.05], [-0.9, -0.05]])
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    ncm = NCMClassifier(distance, center=center).fit(feats, labels)
    queries = torch.tensor([[2.0, 0.1], [0.05, 3.0], [-5.0, 0.0]])
    assert ncm(queries).argmax(1).tolist() == [0, 1, 2]
    assert ncm(feats).argmax(1).tolist() == labels.tolist()


def test_ncm_logits_by_hand_and_where_the_official_cosine_disagrees():
    """Class 0 has the unit features (1, 0), (0, 1): mean (0.5, 0.5), norm 0.707; class 1 has (2, 0), (3, 0),
    normalised (1, 0): mean (1, 0), norm 1. Query (4, 3), normalised z = (0.8, 0.6), D = 2:
    <z, mu_0> = 0.7, <z, mu_1> = 0.8; ||z - mu_0||^2 = 0.09 + 0.01, ||z - mu_1||^2 = 0.04 + 0.36."""
    feats = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 0.0], [3.0, 0.0]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 1, 1])
    query = torch.tensor([[4.0, 3.0]], dtype=torch.float64)
    expected = {"cosine": [0.7 / 0.5 ** 0.5, 0.8], "euclidean": [-0.10, -0.40], "dot": [0.35, 0.40]}
    for distance, logits in expected.items():
        ncm = NCMClassifier(distance, center=False).fit(feats, labels)
        assert torch.allclose(ncm.centroids, torch.tensor([[0.5, 0.5], [1.0, 0.0]], dtype=torch.float64))
        assert torch.allclose(ncm(query), torch.tensor([logits], dtype=torch.float64), atol=1e-12), distance
    # the unnormalised mean of the spread-out class 0 loses under the official <z, mu> / D, wins as a cosine
    assert [NCMClassifier(d, center=False).fit(feats, labels)(query).argmax().item() for d in expected] == [0, 0, 1]


def test_ncm_dot_is_the_official_centred_formula_and_the_default_is_unchanged():
    gen = torch.Generator().manual_seed(0)
    feats, labels = torch.randn(30, 5, generator=gen) + 2.0, torch.arange(3).repeat(10)
    queries = torch.randn(7, 5, generator=gen) + 2.0
    z = nn.functional.normalize(feats - feats.mean(0), dim=1)
    means = torch.stack([z[labels == c].mean(0) for c in range(3)])
    zq = nn.functional.normalize(queries - feats.mean(0), dim=1)
    assert torch.allclose(NCMClassifier("dot").fit(feats, labels)(queries), zq @ means.T / 5, atol=1e-6)
    default = NCMClassifier()
    assert (default.distance, default.center) == ("euclidean", True)
    assert torch.allclose(default.fit(feats, labels)(queries), -torch.cdist(zq, means).pow(2), atol=1e-5)


def test_ncm_errors():
    with pytest.raises(ValueError, match="unknown NCM distance 'l1'; accepted: cosine, euclidean, dot"):
        NCMClassifier("l1")
    with pytest.raises(RuntimeError, match="must be called before"):
        NCMClassifier()(torch.randn(2, 3))
    with pytest.raises(ValueError, match=r"none for classes \[2\]"):
        NCMClassifier().fit(torch.randn(4, 3), torch.tensor([0, 1, 0, 1]), num_classes=3)


def test_crt_gradients_do_not_reach_the_frozen_backbone():
    torch.manual_seed(0)
    backbone = ResNetCIFAR(depth=8, num_classes=3)
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    model = FrozenBackboneClassifier(backbone, nn.Linear(backbone.feature_dim, 3))
    model.train()
    assert not backbone.training and model.head.training
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9, weight_decay=5e-4)
    for _ in range(2):
        loss = nn.functional.cross_entropy(model(torch.randn(8, 3, 32, 32)), torch.randint(0, 3, (8,)))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert all(p.grad is None for p in backbone.parameters())
    assert model.head.weight.grad is not None
    after = backbone.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)   # weights and BN running statistics


def _running_stats(module):
    return {k: v.clone() for k, v in module.state_dict().items() if "running" in k or "num_batches" in k}


def test_backbone_mode_eval_keeps_running_statistics_and_train_updates_them_like_the_official_code():
    x = torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    outputs = {}
    for mode in ("eval", "train"):
        torch.manual_seed(0)
        backbone = ResNetCIFAR(depth=8, num_classes=3)
        before = _running_stats(backbone)
        model = FrozenBackboneClassifier(backbone, nn.Linear(backbone.feature_dim, 3), backbone_mode=mode).train()
        assert backbone.training == (mode == "train") and model.head.training
        outputs[mode] = model(x)
        nn.functional.cross_entropy(outputs[mode], torch.arange(8) % 3).backward()
        assert all(p.grad is None for p in backbone.parameters()) and model.head.weight.grad is not None
        after = _running_stats(backbone)
        changed = [k for k in before if not torch.equal(before[k], after[k])]
        if mode == "eval":
            assert changed == []
        else:   # batch statistics in the forward pass, running statistics updated (official run_networks.py)
            assert changed and all(k in changed for k in before if k.endswith("running_mean"))
        model.eval()
        assert not backbone.training
    assert not torch.allclose(outputs["eval"], outputs["train"])   # batch vs running statistics


def test_backbone_mode_is_validated():
    backbone = ResNetCIFAR(depth=8, num_classes=3)
    with pytest.raises(ValueError, match=r"backbone_mode 'frozen'; accepted: eval, train"):
        FrozenBackboneClassifier(backbone, nn.Linear(backbone.feature_dim, 3), backbone_mode="frozen")


def _classifier_rates(schedule_unit, epochs=4):
    """Learning rate of every step of train_classifier: 30 balanced draws per epoch, batch 10 (3 steps)."""
    labels = torch.arange(3).repeat_interleave(10)
    feats = torch.randn(30, 4, generator=torch.Generator().manual_seed(0))
    rates = []
    handle = register_optimizer_step_pre_hook(lambda opt, args, kwargs: rates.append(opt.param_groups[0]["lr"]))
    try:
        torch.manual_seed(3)
        train_classifier(nn.Linear(4, 3), feats, labels, ClassBalancedSampler(labels, num_samples=30), epochs=epochs,
                         batch_size=10, lr=0.2, seed=7, schedule_unit=schedule_unit)
    finally:
        handle.remove()
    return rates


def test_train_classifier_epoch_schedule_is_the_official_per_epoch_cosine():
    rates = _classifier_rates("epoch")
    expected = [0.2, 0.17071067811865476, 0.1, 0.029289321881345254]   # 0.2 (1 + cos(pi e / 4)) / 2 by hand
    assert rates == pytest.approx([r for r in expected for _ in range(3)], rel=1e-12)
    steps = [0.2 * 0.5 * (1 + math.cos(math.pi * s / 12)) for s in range(12)]   # default: per step
    assert _classifier_rates("step") == pytest.approx(steps, rel=1e-12)
    with pytest.raises(ValueError, match=r"schedule_unit 'batch'; accepted: step, epoch"):
        _classifier_rates("batch")


def test_train_classifier_learns_separable_features_with_balanced_sampling():
    torch.manual_seed(0)
    labels = torch.cat([torch.zeros(200), torch.ones(20), torch.full((5,), 2)]).long()
    centers = torch.tensor([[3.0, 0.0], [0.0, 3.0], [-3.0, -3.0]])
    feats = centers[labels] + 0.3 * torch.randn(len(labels), 2)
    head = nn.Linear(2, 3)
    losses = train_classifier(head, feats, labels, ClassBalancedSampler(labels, num_samples=300), epochs=5,
                              batch_size=50, lr=0.2, seed=1)
    assert losses[-1] < losses[0]
    assert (head(centers).argmax(1) == torch.arange(3)).all()


def test_train_classifier_is_deterministic():
    labels = torch.arange(3).repeat_interleave(10)
    feats = torch.randn(30, 4, generator=torch.Generator().manual_seed(0))
    heads = []
    for _ in range(2):
        torch.manual_seed(3)
        head = nn.Linear(4, 3)
        train_classifier(head, feats, labels, ClassBalancedSampler(labels), epochs=2, batch_size=10, seed=7)
        heads.append(head.weight.detach())
    assert torch.equal(*heads)


def test_extract_features_shape_and_mode():
    backbone = ResNetCIFAR(depth=8, num_classes=4).train()
    out = extract_features(backbone, torch.randn(5, 3, 32, 32), batch_size=2)
    assert out.shape == (5, backbone.feature_dim) and backbone.training
