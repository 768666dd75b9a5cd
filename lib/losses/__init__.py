"""Training losses that need more than the logits, written as ``lib.train.fit`` criteria."""
from .bias_loss import BiasLoss, bias_loss, bias_weights, feature_diversity, normalised_diversity, split_accuracy
from .cam_loss import (CAAMCAMDistillLoss, CAMLoss, cam_distance, class_activation_map,
                       class_agnostic_activation_map, minmax_normalize)
from .dann import DANNLoss
from .focal import FocalLoss, focal_loss
from .isda import ClassCovariance, ISDALoss, isda_logits
from .kd import KDCriterion, TfKDRegCriterion, kd_loss, tfkd_reg_loss, virtual_teacher
from .label_smoothing import LabelSmoothingCE, OnlineLabelSmoothing, smoothed_targets, soft_cross_entropy
from .representational_alignment import layer_mapping, linear_cka

__all__ = ["BiasLoss", "bias_loss", "bias_weights", "feature_diversity", "normalised_diversity", "split_accuracy",
           "CAAMCAMDistillLoss", "CAMLoss", "cam_distance", "class_activation_map", "class_agnostic_activation_map",
           "minmax_normalize", "DANNLoss", "FocalLoss", "focal_loss", "ClassCovariance", "ISDALoss", "isda_logits",
           "KDCriterion", "TfKDRegCriterion", "kd_loss", "tfkd_reg_loss", "virtual_teacher", "LabelSmoothingCE",
           "OnlineLabelSmoothing", "smoothed_targets", "soft_cross_entropy", "layer_mapping", "linear_cka"]
