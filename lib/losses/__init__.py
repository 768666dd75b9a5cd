"""Training losses that need more than the logits, written as ``lib.train.fit`` criteria."""
from .cam_loss import (CAAMCAMDistillLoss, CAMLoss, cam_distance, class_activation_map,
                       class_agnostic_activation_map, minmax_normalize)
from .dann import DANNLoss
from .isda import ClassCovariance, ISDALoss, isda_logits
from .kd import KDCriterion, TfKDRegCriterion, kd_loss, tfkd_reg_loss, virtual_teacher
from .label_smoothing import LabelSmoothingCE, OnlineLabelSmoothing, smoothed_targets, soft_cross_entropy
from .representational_alignment import layer_mapping, linear_cka

__all__ = ["CAAMCAMDistillLoss", "CAMLoss", "cam_distance", "class_activation_map", "class_agnostic_activation_map",
           "minmax_normalize", "DANNLoss", "ClassCovariance", "ISDALoss", "isda_logits", "KDCriterion",
           "TfKDRegCriterion", "kd_loss", "tfkd_reg_loss", "virtual_teacher", "LabelSmoothingCE",
           "OnlineLabelSmoothing", "smoothed_targets", "soft_cross_entropy", "layer_mapping", "linear_cka"]
