"""Small backbones written in plain torch: CIFAR-sized classifiers and a small segmentation network."""
from .mobilenetv2 import CIFAR_SETTING, IMAGENET_SETTING, InvertedResidual, MobileNetV2, make_divisible
from .resnet_cifar import BasicBlock, ResNetCIFAR
from .mobilenext import MobileNeXt
from .segmentation import SegmentationNet
from .conv4 import Conv4

__all__ = ["Conv4", "CIFAR_SETTING", "IMAGENET_SETTING", "InvertedResidual", "MobileNetV2", "make_divisible", "BasicBlock",
           "ResNetCIFAR", "MobileNeXt", "SegmentationNet"]
