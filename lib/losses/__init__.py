"""Training losses that need more than the logits, written as ``lib.train.fit`` criteria."""
from .dann import DANNLoss
from .isda import ClassCovariance, ISDALoss, isda_logits

__all__ = ["DANNLoss", "ClassCovariance", "ISDALoss", "isda_logits"]
