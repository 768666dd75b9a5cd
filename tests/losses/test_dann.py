"""DANN: zero weight trains the classifier alone; the reversal reaches the features with -lambda; fit end to end."""
import pytest
import torch
import torch.nn.functional as F

from lib.losses import DANNLoss
from lib.models import ResNetCIFAR
from lib.nn import DANN, DomainDiscriminator, dann_coefficient, domain_loss
from lib.train import TrainConfig, fit
from tests.train.tiny import tiny_data


def _net(seed=0):
    torch.manual_seed(seed)
    return DANN(ResNetCIFAR(8, num_classes=4), DomainDiscriminator(64, hidden=32, dropout=0.0))


def test_model_without_target_is_the_backbone_and_with_target_returns_both_domains():
    net = _net().eval()
    x, t = torch.randn(3, 3, 32, 32), torch.randn(5, 3, 32, 32)
    torch.testing.assert_close(net(x), net.backbone(x))
    logits, ds, dt = net(x, target=t, coeff=0.3)
    assert logits.shape == (3, 4) and ds.shape == (3,) and dt.shape == (5,)


def test_zero_weight_is_source_cross_entropy_and_gives_the_discriminator_a_zero_gradient():
    net = _net().train()
    x, y, t = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3]), torch.randn(4, 3, 32, 32)
    loss, logits = DANNLoss(weight=0.0)(net, x, y, 0.5, unlabeled=t)
    torch.testing.assert_close(loss, F.cross_entropy(logits, y))
    loss.backward()
    # a zero gradient, not None: under DistributedDataParallel every parameter must take part in the backward
    assert all(p.grad is not None and not p.grad.any() for p in net.discriminator.parameters())


def test_domain_term_reaches_the_features_reversed_and_scaled_by_the_schedule():
    x, y, t = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3]), torch.randn(4, 3, 32, 32)
    grads = {}
    for name, weight in (("ce", 0.0), ("dann", 1.0)):
        net = _net().train()
        loss, _ = DANNLoss(weight=weight)(net, x, y, 0.2, unlabeled=t)
        loss.backward()
        grads[name] = net.backbone.stem[0].weight.grad.clone()
    # the domain part alone, without reversal: its gradient on the stem, times -lambda, is the difference
    net = _net().train()
    features = net.backbone.forward_features(torch.cat([x, t]))
    d = net.discriminator(features)
    domain_loss(d[:4], d[4:]).backward()
    torch.testing.assert_close(grads["dann"] - grads["ce"], -dann_coefficient(0.2) * net.backbone.stem[0].weight.grad,
                               rtol=1e-4, atol=1e-6)


def test_dann_trains_through_fit_with_the_unlabelled_stream():
    source, target = tiny_data(64), tiny_data(48, seed=3)
    source.images = F.interpolate(source.images.float(), size=32).to(torch.uint8)
    target.images = F.interpolate(target.images.float(), size=32).to(torch.uint8)
    criterion = DANNLoss()
    result = fit(_net(), source, source, TrainConfig(epochs=1, batch_size=16, lr=0.05), seed=0, criterion=criterion,
                 unlabeled=target, progress=False)
    assert torch.isfinite(torch.tensor(result["metrics"]["train_loss"])) and criterion.last_domain_loss is not None
    with pytest.raises(ValueError, match="needs target images"):
        criterion(_net(), source.images[:2].float(), source.labels[:2], 0.0)
