"""CAM-loss: the maps against hand-computed ones, alpha = 0 is cross-entropy (one step and a whole fit), the loss
vanishes when the normalised maps agree, gradients (backbone only, finite differences), the distillation variant."""
import copy
import math

import pytest
import torch
import torch.nn.functional as F

from lib.losses import (CAAMCAMDistillLoss, CAMLoss, cam_distance, class_activation_map,
                        class_agnostic_activation_map, minmax_normalize)
from lib.models import ResNetCIFAR
from lib.train import TrainConfig, fit, seed_everything
from tests.train.tiny import tiny_data

# One image, two channels on a 2 x 2 map; the classifier's row of class 1 is (2, -1)
TOY = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]],
                     [[0.0, 0.0], [0.0, 3.0]]]])
TOY_W = torch.tensor([[0.5, 0.5], [2.0, -1.0]])


def test_caam_and_cam_equal_hand_computed_maps():
    assert torch.equal(class_agnostic_activation_map(TOY), torch.tensor([[[0.5, 0.0], [0.0, 1.5]]]))
    assert torch.equal(class_activation_map(TOY, TOY_W, torch.tensor([1])), torch.tensor([[[2.0, 0.0], [0.0, -3.0]]]))
    assert torch.equal(class_activation_map(TOY, TOY_W, torch.tensor([0])), class_agnostic_activation_map(TOY))


def test_normalisation_and_distance_equal_hand_computed_values():
    # N(CAAM) = ((0.5, 0), (0, 1.5)) / 1.5 and N(CAM) = (CAM + 3) / 5 = ((1, 0.6), (0.6, 0))
    torch.testing.assert_close(minmax_normalize(class_agnostic_activation_map(TOY)),
                               torch.tensor([[[1 / 3, 0.0], [0.0, 1.0]]]))
    cam = class_activation_map(TOY, TOY_W, torch.tensor([1]))
    torch.testing.assert_close(minmax_normalize(cam), torch.tensor([[[1.0, 0.6], [0.6, 0.0]]]))
    by_hand = (abs(1 / 3 - 1) + 0.6 + 0.6 + 1) / 4
    assert math.isclose(cam_distance(class_agnostic_activation_map(TOY), cam).item(), by_hand, rel_tol=1e-6)
    # a constant map normalises to zeros, not to 0/0
    assert torch.equal(minmax_normalize(torch.full((2, 3, 3), 7.0)), torch.zeros(2, 3, 3))


def test_normalisation_is_per_image_and_invariant_to_scale_and_shift():
    g = torch.Generator().manual_seed(0)
    maps = torch.randn(3, 4, 5, generator=g, dtype=torch.float64)
    out = minmax_normalize(maps)
    assert torch.allclose(out.flatten(1).min(1).values, torch.zeros(3, dtype=torch.float64))
    assert torch.allclose(out.flatten(1).max(1).values, torch.ones(3, dtype=torch.float64))
    assert torch.allclose(minmax_normalize(3.5 * maps - 2.0), out)
    assert torch.allclose(minmax_normalize(maps[1:2]), out[1:2])       # no statistic shared across the batch


def test_the_cam_of_resnet_is_the_logit_map():
    """Pooling and the linear layer commute: the CAM's spatial mean plus the bias is the logit of its class."""
    torch.manual_seed(0)
    net = ResNetCIFAR(8, num_classes=10).eval()
    x = torch.randn(4, 3, 32, 32)
    features = net.stages(net.stem(x))
    with torch.no_grad():
        logits = net(x)
        for k in range(10):
            cam = class_activation_map(features, net.classifier.weight, torch.full((4,), k))
            torch.testing.assert_close(cam.mean(dim=(1, 2)) + net.classifier.bias[k], logits[:, k])


def test_loss_is_zero_when_caam_equals_cam_after_normalisation():
    # equal classifier weights: M_y = (sum of the row) * CAAM, the same map once normalised
    features = torch.rand(3, 4, 5, 5, generator=torch.Generator().manual_seed(1))
    weight = torch.full((2, 4), 0.25)
    labels = torch.tensor([0, 1, 1])
    cam = class_activation_map(features, weight, labels)
    assert cam_distance(class_agnostic_activation_map(features), cam).item() == 0.0
    # and a positive multiple of the CAAM still gives 0 up to rounding, a negative one does not
    assert cam_distance(class_agnostic_activation_map(features), 3.0 * cam).item() < 1e-7
    assert cam_distance(class_agnostic_activation_map(features), -cam).item() > 0.1


def test_alpha_zero_is_cross_entropy_exactly():
    torch.manual_seed(0)
    net = ResNetCIFAR(8, num_classes=4)
    x, y = torch.randn(6, 3, 32, 32), torch.tensor([0, 1, 2, 3, 0, 1])
    loss, logits = CAMLoss(0.0)(net, x, y, 0.3)
    assert torch.equal(loss, F.cross_entropy(logits, y))
    teacher = ResNetCIFAR(14, num_classes=4)
    loss, logits = CAAMCAMDistillLoss(teacher, 0.0)(net, x, y, 0.3)
    assert torch.equal(loss, F.cross_entropy(logits, y))


def test_a_fit_with_alpha_zero_is_the_cross_entropy_fit_bit_for_bit():
    data, test = tiny_data(64), tiny_data(32, seed=1)
    config = TrainConfig(epochs=2, batch_size=16, lr=0.1, warmup_epochs=0, eval_every=2)
    results = []
    for criterion in (None, CAMLoss(0.0)):
        seed_everything(0, 1)
        model = ResNetCIFAR(8, num_classes=4)
        results.append((fit(model, data, test, config, seed=0, progress=False, criterion=criterion), model))
    (plain, a), (zero, b) = results
    assert [h["train_loss"] for h in plain["history"]] == [h["train_loss"] for h in zero["history"]]
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


def test_positive_alpha_adds_the_weighted_distance_and_changes_training():
    torch.manual_seed(0)
    net = ResNetCIFAR(8, num_classes=4)
    x, y = torch.randn(8, 3, 32, 32), torch.arange(8) % 4
    t = CAMLoss(1.0).terms(net, x, y)
    loss, logits = CAMLoss(2.5)(net, x, y, 0.0)
    assert t["cam"] > 0
    torch.testing.assert_close(loss, t["ce"] + 2.5 * t["cam"])
    torch.testing.assert_close(logits, net(x))                       # the hook leaves the forward pass unchanged
    features = net.stages(net.stem(x))
    by_parts = cam_distance(class_agnostic_activation_map(features),
                            class_activation_map(features, net.classifier.weight, y))
    torch.testing.assert_close(t["cam"], by_parts)


def test_the_cam_term_trains_the_backbone_and_not_the_classifier():
    torch.manual_seed(0)
    net = ResNetCIFAR(8, num_classes=4)
    x, y = torch.randn(8, 3, 32, 32), torch.arange(8) % 4
    CAMLoss(1.0).terms(net, x, y)["cam"].backward()
    assert net.classifier.weight.grad is None and net.classifier.bias.grad is None
    assert net.stem[0].weight.grad.abs().sum() > 0 and net.stages[-1].conv2.weight.grad.abs().sum() > 0
    net.zero_grad(set_to_none=True)
    loss, _ = CAMLoss(1.0)(net, x, y, 0.0)
    loss.backward()                                                   # the classifier learns from the CE part
    assert net.classifier.weight.grad.abs().sum() > 0


def test_distance_gradient_matches_finite_differences():
    g = torch.Generator().manual_seed(3)
    features = torch.rand(2, 3, 4, 4, generator=g, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(5, 3, generator=g, dtype=torch.float64)
    labels = torch.tensor([4, 1])

    def loss(f):
        return cam_distance(class_agnostic_activation_map(f).double(), class_activation_map(f, weight, labels)).double()

    # cam_distance works in fp32; finite differences need float64, so check the same formula in float64
    def loss64(f):
        a, m = class_agnostic_activation_map(f), class_activation_map(f, weight, labels)
        return (minmax_normalize(a) - minmax_normalize(m)).abs().mean()

    assert torch.autograd.gradcheck(loss64, (features,), eps=1e-6, atol=1e-6)
    torch.testing.assert_close(loss(features), loss64(features), rtol=1e-6, atol=1e-7)


def test_terms_are_fp32_under_bf16_autocast():
    torch.manual_seed(0)
    net = ResNetCIFAR(8, num_classes=4)
    x, y = torch.randn(8, 3, 32, 32), torch.arange(8) % 4
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, logits = CAMLoss(1.0)(net, x, y, 0.0)
    assert logits.dtype == torch.bfloat16 and loss.dtype == torch.float32


def test_distillation_from_an_identical_teacher_equals_the_cam_loss_value():
    """With the teacher a copy of the student (both in eval mode, so their feature maps agree), the teacher's CAM is
    the student's: the distillation term equals the CAM-loss term, but sends no gradient through the CAM."""
    torch.manual_seed(0)
    student = ResNetCIFAR(8, num_classes=4).eval()
    teacher = copy.deepcopy(student)
    x, y = torch.randn(8, 3, 32, 32), torch.arange(8) % 4
    distill = CAAMCAMDistillLoss(teacher, 1.0)
    torch.testing.assert_close(distill.terms(student, x, y)["distill"], CAMLoss(1.0).terms(student, x, y)["cam"])
    distill.terms(student, x, y)["distill"].backward()
    assert all(p.grad is None for p in teacher.parameters())
    assert student.classifier.weight.grad is None and student.stem[0].weight.grad.abs().sum() > 0


def test_distillation_uses_the_teachers_cam_and_keeps_the_teacher_frozen():
    torch.manual_seed(0)
    student, teacher = ResNetCIFAR(8, num_classes=4), ResNetCIFAR(14, num_classes=4)
    criterion = CAAMCAMDistillLoss(teacher, 0.5).train()
    x, y = torch.randn(8, 3, 32, 32), torch.arange(8) % 4
    before = copy.deepcopy(teacher.state_dict())
    loss, logits = criterion(student, x, y, 0.0)
    with torch.no_grad():
        t_features = teacher.stages(teacher.stem(x))
    s_features = student.stages(student.stem(x))
    expected = F.cross_entropy(logits, y) + 0.5 * cam_distance(
        class_agnostic_activation_map(s_features), class_activation_map(t_features, teacher.classifier.weight, y))
    torch.testing.assert_close(loss, expected)
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())   # BN statistics unchanged
    assert criterion.state_dict() == {}


class HalfResolution(torch.nn.Module):
    """A student that sees the image at half resolution: its last feature map is 4 x 4 where a teacher's is 8 x 8."""

    def __init__(self, net):
        super().__init__()
        self.net = net
        self.stages, self.classifier = net.stages, net.classifier

    def forward(self, x):
        return self.net(F.avg_pool2d(x, 2))


def test_distillation_refuses_maps_of_different_sizes():
    student, teacher = HalfResolution(ResNetCIFAR(8, num_classes=4)), ResNetCIFAR(8, num_classes=4)
    with pytest.raises(ValueError, match=r"the teacher's last feature map is \(8, 8\) and the student's \(4, 4\)"):
        CAAMCAMDistillLoss(teacher, 1.0).terms(student, torch.randn(2, 3, 32, 32), torch.tensor([0, 1]))


@pytest.mark.parametrize("alpha", [-0.1, float("nan"), float("inf"), "1", True])
def test_bad_alpha_is_refused_with_the_value(alpha):
    with pytest.raises(ValueError, match=r"alpha must be a finite number >= 0 \(0 gives cross-entropy\), got"):
        CAMLoss(alpha)
    with pytest.raises(ValueError, match="alpha must be a finite number >= 0"):
        CAAMCAMDistillLoss(ResNetCIFAR(8, num_classes=2), alpha)


def test_a_model_without_the_named_layers_is_refused():
    net = ResNetCIFAR(8, num_classes=4)
    x, y = torch.randn(2, 3, 32, 32), torch.tensor([0, 1])
    with pytest.raises(TypeError, match=r"needs the submodule 'blocks'.*its children: stem, stages, classifier"):
        CAMLoss(1.0, feature_layer="blocks")(net, x, y, 0.0)
    plain = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                torch.nn.Linear(4, 2))
    with pytest.raises(TypeError, match="needs the submodule 'stages'"):
        CAAMCAMDistillLoss(plain, 1.0)


def test_bad_map_inputs_are_refused_with_their_shapes():
    with pytest.raises(ValueError, match=r"weight must have shape \(K, 2\) for features with 2 channels, got \(2, 3\)"):
        class_activation_map(TOY, torch.zeros(2, 3), torch.tensor([0]))
    with pytest.raises(ValueError, match=r"classes must lie in \[0, 2\), got range \[2, 2\]"):
        class_activation_map(TOY, TOY_W, torch.tensor([2]))
    with pytest.raises(ValueError, match=r"features must have shape \(N, C, H, W\), got \(2, 2, 2\)"):
        class_agnostic_activation_map(TOY[0])
    with pytest.raises(ValueError, match=r"must have the same shape"):
        cam_distance(torch.zeros(1, 2, 2), torch.zeros(1, 3, 3))
