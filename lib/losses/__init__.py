"""Training losses that need more than the logits, written as ``lib.train.fit`` criteria."""
from .isda import ClassCovariance, ISDALoss, isda_logits

__all__ = ["ClassCovariance", "ISDALoss", "isda_logits"]
