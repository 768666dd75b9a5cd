"""CAM-loss: the class-agnostic activation map of the last feature map pulled towards the ground-truth class's CAM.

Paper: C. Wang, J. Xiao, Y. Han, Q. Yang, S. Song, G. Huang, "CAM-loss: Towards Learning Spatially Discriminative
Feature Representations", ICCV 2021, arXiv:2109.01359. No official code was found.

For an image whose last feature map ``F ∈ R^{C×H×W}`` is globally average-pooled into a linear classifier with
weights ``W ∈ R^{K×C}`` and bias ``b``:

* the class activation map of class ``k`` (CAM; Zhou et al., "Learning Deep Features for Discriminative
  Localization", CVPR 2016, arXiv:1512.04150) is ``M_k = Σ_c W[k, c] · F_c`` (``H × W``); its spatial mean plus
  ``b_k`` is the logit of class ``k``, since pooling and the linear layer commute;
* the class-agnostic activation map (CAAM) is ``A = (1/C) Σ_c F_c``, the channel mean: every channel counts the same,
  whichever class it serves;
* both are min-max normalised per image, ``N(M) = (M − min M) / (max M − min M)`` over the ``H·W`` positions, and

      L_CAM = mean over images and positions of |N(A) − N(M_y)|,        L = CE(z, y) + α · L_CAM

  with ``y`` the ground-truth label. Pulling the CAAM towards the CAM of the true class drives the backbone to
  express the target class's features where that class is and to suppress the others' and the background's.
* CAAM-CAM matching distillation (the paper's distillation variant): the student's CAAM is pulled towards the
  ground-truth CAM of a frozen, trained teacher, ``L = CE(z_s, y) + α · mean |N(A_s) − N(M^t_y)|``.

What was read, and what this module decides. Only the paper's abstract could be read from a citable source; its
method section (equations and their numbers, the normalisation, the distance, the weight α for CIFAR, the
distillation loss's other terms) could not, and there is no official code to compare with. The definition above is
the book's reading of the abstract (the CAAM is supervised by the CAM; CAMs and CAAMs are compared after
normalisation) and is close to the one public implementation found (github.com/sihyeong671/PyTorch_CAM-loss, an
unofficial MNIST re-implementation: channel sum, min-max normalisation, L1 distance, classifier weights detached;
its min-max runs along one spatial axis of the map, here over the whole map). Each choice is stated here so that it
can be checked against the paper:

* the CAAM is the channel *mean*; the channel sum gives the same normalised map (min-max is invariant to a positive
  scale), so the choice does not change the loss;
* the CAM has no bias and no ReLU: a constant shift disappears in the normalisation, and a ReLU would change the map;
* min-max normalisation per image over the positions, with the range clamped below by ``eps = 1e-8``, so a constant
  map (e.g. a dead feature map at initialisation) normalises to zeros instead of 0/0;
* the L1 distance, averaged over images and positions;
* the classifier weights enter the CAM detached: the CAM-loss trains the backbone, the classifier learns from the
  cross-entropy alone. With the weights attached, the loss could also be lowered by pulling the classifier's row of
  the true class towards equal weights, where ``M_y`` is a multiple of ``A`` and the distance vanishes whatever the
  features: the classifier would be regularised instead of the features. The feature map is not detached in either
  map, so the backbone receives the gradient through both.
* the loss is computed in fp32 (under bf16 autocast the feature map is cast, as the cross-entropy is).
* distillation: the teacher's and the student's last feature maps must have the same ``H × W`` (the book's CIFAR
  ResNets all end at 8 × 8); a mismatch is an error rather than a silent resize.

``α = 0`` is cross-entropy exactly (the feature map is then not even captured).

Criteria for ``lib.train.fit``: ``CAMLoss(alpha)`` and ``CAAMCAMDistillLoss(teacher, alpha)`` (the teacher is frozen,
kept in eval mode and called under ``no_grad``). The last feature map is captured with a forward hook on the
submodule named ``feature_layer`` (default ``"stages"``: ``lib.models.ResNetCIFAR``'s last stage, before pooling)
and the classifier is the ``nn.Linear`` named ``classifier``, so the model is called once, through its DDP wrapper
when there is one. Shapes: features ``(N, C, H, W)``, maps ``(N, H, W)``, labels ``(N,)``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .kd import FrozenTeacherCriterion

EPS = 1e-8


def class_activation_map(features: torch.Tensor, weight: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """``(N, H, W)`` CAM of ``classes[n]`` for each image: ``Σ_c weight[classes[n], c] · features[n, c]``.

    ``features``: ``(N, C, H, W)``; ``weight``: the classifier's ``(K, C)`` weights; ``classes``: ``(N,)`` indices.
    """
    if features.ndim != 4:
        raise ValueError(f"features must have shape (N, C, H, W), got {tuple(features.shape)}")
    if weight.ndim != 2 or weight.shape[1] != features.shape[1]:
        raise ValueError(f"weight must have shape (K, {features.shape[1]}) for features with {features.shape[1]} "
                         f"channels, got {tuple(weight.shape)}")
    if classes.shape != (features.shape[0],):
        raise ValueError(f"classes must have shape ({features.shape[0]},), got {tuple(classes.shape)}")
    if len(classes) and (classes.min() < 0 or classes.max() >= weight.shape[0]):
        raise ValueError(f"classes must lie in [0, {weight.shape[0]}), got range "
                         f"[{classes.min().item()}, {classes.max().item()}]")
    return torch.einsum("nc,nchw->nhw", weight[classes], features)


def class_agnostic_activation_map(features: torch.Tensor) -> torch.Tensor:
    """``(N, H, W)`` CAAM: the channel mean of ``(N, C, H, W)`` features."""
    if features.ndim != 4:
        raise ValueError(f"features must have shape (N, C, H, W), got {tuple(features.shape)}")
    return features.mean(dim=1)


def minmax_normalize(maps: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """Each ``(H, W)`` map of ``(N, H, W)`` rescaled to ``[0, 1]`` by its own min and max (a constant map → 0)."""
    if maps.ndim != 3:
        raise ValueError(f"maps must have shape (N, H, W), got {tuple(maps.shape)}")
    flat = maps.flatten(1)
    low = flat.min(dim=1, keepdim=True).values
    span = (flat.max(dim=1, keepdim=True).values - low).clamp_min(eps)
    return ((flat - low) / span).view_as(maps)


def cam_distance(caam: torch.Tensor, cam: torch.Tensor) -> torch.Tensor:
    """``mean |N(caam) − N(cam)|`` over images and positions, in fp32 (the CAM-loss term before its weight α)."""
    if caam.shape != cam.shape:
        raise ValueError(f"the CAAM {tuple(caam.shape)} and the CAM {tuple(cam.shape)} must have the same shape "
                         "(N, H, W)")
    return (minmax_normalize(caam.float()) - minmax_normalize(cam.float())).abs().mean()


def _check_alpha(alpha) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not math.isfinite(alpha) or alpha < 0:
        raise ValueError(f"alpha must be a finite number >= 0 (0 gives cross-entropy), got {alpha!r}")
    return float(alpha)


def _parts(model: nn.Module, feature_layer: str, who: str) -> tuple[nn.Module, nn.Linear]:
    net = getattr(model, "module", model)          # a DDP wrapper's module holds the layers
    layer = getattr(net, feature_layer, None)
    if not isinstance(layer, nn.Module):
        children = ", ".join(name for name, _ in net.named_children()) or "none"
        raise TypeError(f"{who} needs the submodule {feature_layer!r} whose output is the last feature map; "
                        f"{type(net).__name__} has no such submodule (its children: {children})")
    classifier = getattr(net, "classifier", None)
    if not isinstance(classifier, nn.Linear):
        raise TypeError(f"{who} needs a model whose last layer is an nn.Linear named 'classifier'; "
                        f"{type(net).__name__}.classifier is {type(classifier).__name__}")
    return layer, classifier


def _forward_with_features(model: nn.Module, x: torch.Tensor, layer: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """``model(x)`` and the output of ``layer`` during that call (one forward pass)."""
    captured = {}
    handle = layer.register_forward_hook(lambda module, inputs, output: captured.update(features=output))
    try:
        logits = model(x)
    finally:
        handle.remove()
    features = captured.get("features")
    if not isinstance(features, torch.Tensor) or features.ndim != 4:
        raise RuntimeError(f"the feature layer returned {type(features).__name__}"
                           f"{'' if features is None else ' of shape ' + str(tuple(getattr(features, 'shape', ())))}"
                           "; CAM-loss needs its (N, C, H, W) feature map")
    return logits, features


def _weighted(criterion, model: nn.Module, x: torch.Tensor, labels: torch.Tensor, term: str):
    """``fit``'s ``(loss, logits)``: cross-entropy + ``criterion.alpha`` · ``criterion.terms(...)[term]``; at
    ``alpha = 0`` cross-entropy alone, without capturing the feature map."""
    if criterion.alpha == 0:
        logits = model(x)
        return F.cross_entropy(logits, labels), logits
    t = criterion.terms(model, x, labels)
    return t["ce"] + criterion.alpha * t[term], t["logits"]


class CAMLoss(nn.Module):
    """``fit`` criterion: cross-entropy + ``alpha`` · CAM-loss (module docstring); ``alpha = 0`` is cross-entropy.

    ``alpha``: the weight of the CAM-loss term (>= 0); ``feature_layer``: the name of the submodule whose output is
    the last feature map (default ``"stages"``, ``ResNetCIFAR``'s).
    """

    def __init__(self, alpha: float, *, feature_layer: str = "stages"):
        super().__init__()
        self.alpha, self.feature_layer = _check_alpha(alpha), feature_layer

    def terms(self, model: nn.Module, x: torch.Tensor, labels: torch.Tensor) -> dict:
        """``{"ce", "cam", "logits"}``: the two loss terms before weighting, and the logits (one forward pass)."""
        layer, classifier = _parts(model, self.feature_layer, "CAMLoss")
        logits, features = _forward_with_features(model, x, layer)
        with torch.autocast(x.device.type, enabled=False):
            features = features.float()
            cam = class_activation_map(features, classifier.weight.detach().float(), labels)
            distance = cam_distance(class_agnostic_activation_map(features), cam)
        return {"ce": F.cross_entropy(logits, labels), "cam": distance, "logits": logits}

    def forward(self, model: nn.Module, x: torch.Tensor, labels: torch.Tensor, progress: float):
        return _weighted(self, model, x, labels, "cam")


class CAAMCAMDistillLoss(FrozenTeacherCriterion):
    """``fit`` criterion: the student's cross-entropy + ``alpha`` · the distance between the student's CAAM and the
    ground-truth CAM of a frozen ``teacher`` (CAAM-CAM matching distillation; module docstring).

    The teacher is kept in eval mode and called under ``no_grad``; it is a submodule (``fit`` moves it to the
    device) but not checkpointed with the run (``state_dict`` is empty): the chapter rebuilds it from its own run.
    ``feature_layer`` names the last-feature-map submodule of both networks.
    """

    def __init__(self, teacher: nn.Module, alpha: float, *, feature_layer: str = "stages"):
        alpha = _check_alpha(alpha)
        _parts(teacher, feature_layer, "CAAMCAMDistillLoss's teacher")
        super().__init__(teacher)
        self.alpha, self.feature_layer = alpha, feature_layer

    def terms(self, model: nn.Module, x: torch.Tensor, labels: torch.Tensor) -> dict:
        """``{"ce", "distill", "logits"}``: the student's two loss terms before weighting, and its logits."""
        t_layer, t_classifier = _parts(self.teacher, self.feature_layer, "CAAMCAMDistillLoss's teacher")
        s_layer, _ = _parts(model, self.feature_layer, "CAAMCAMDistillLoss")
        with torch.no_grad():
            _, t_features = _forward_with_features(self.teacher, x, t_layer)
        logits, s_features = _forward_with_features(model, x, s_layer)
        if t_features.shape[2:] != s_features.shape[2:]:
            raise ValueError(f"the teacher's last feature map is {tuple(t_features.shape[2:])} and the student's "
                             f"{tuple(s_features.shape[2:])}: CAAM-CAM distillation compares maps of the same H x W")
        with torch.autocast(x.device.type, enabled=False):
            cam = class_activation_map(t_features.float(), t_classifier.weight.float(), labels)
            distance = cam_distance(class_agnostic_activation_map(s_features.float()), cam)
        return {"ce": F.cross_entropy(logits, labels), "distill": distance, "logits": logits}

    def forward(self, model: nn.Module, x: torch.Tensor, labels: torch.Tensor, progress: float):
        return _weighted(self, model, x, labels, "distill")
