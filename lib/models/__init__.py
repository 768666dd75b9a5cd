"""Small backbones sized for 32×32 inputs, written in plain torch."""
from .mobilenetv2 import CIFAR_SETTING, IMAGENET_SETTING, InvertedResidual, MobileNetV2, make_divisible
from .resnet_cifar import BasicBlock, ResNetCIFAR

__all__ = ["CIFAR_SETTING", "IMAGENET_SETTING", "InvertedResidual", "MobileNetV2", "make_divisible", "BasicBlock",
           "ResNetCIFAR"]
