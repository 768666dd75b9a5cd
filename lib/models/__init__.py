"""Model definitions used by the chapters."""
from .mobilenetv2 import CIFAR_SETTING, InvertedResidual, MobileNetV2, make_divisible

__all__ = ["CIFAR_SETTING", "InvertedResidual", "MobileNetV2", "make_divisible"]
