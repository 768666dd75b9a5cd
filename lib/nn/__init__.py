"""Reusable layers, one file per mechanism: attention blocks and their factory, mobile blocks, context modules for
dense prediction, graph layers, classifier re-balancing, domain adaptation."""
from .attention import ATTENTION_LAYERS, attention_names, attention_params, check_attention_name, create_attention
from .cbam import CBAM, cbam_params
from .coord_attention import CoordAttention, coord_attention_params
from .squeeze_excite import SqueezeExcite, se_params
from .triplet_attention import TripletAttention, triplet_attention_params
from .inverted_residual import ClassicResidual, InvertedResidual
from .sandglass import SandglassBlock
from .strip_pooling import MixedPoolingModule, StripPoolingModule
from .pyramid_pooling import PyramidPooling
from .gcn import GCN
from .dagnn import DAGNN
from .decoupling import FrozenBackboneClassifier, LWSClassifier, NCMClassifier, TauNormClassifier
from .ibn import IBN, IBN_TYPES
from .domain_adaptation import (DANN, BlackBoxPredictor, DomainDiscriminator, GradientReversal, dann_coefficient, domain_loss,
                                grad_reverse)

__all__ = [
    "ClassicResidual", "InvertedResidual", "SandglassBlock", "MixedPoolingModule", "StripPoolingModule",
    "PyramidPooling", "GCN", "DAGNN", "FrozenBackboneClassifier", "LWSClassifier", "NCMClassifier",
    "TauNormClassifier", "IBN", "IBN_TYPES", "DANN", "BlackBoxPredictor", "DomainDiscriminator", "GradientReversal", "dann_coefficient",
    "domain_loss", "grad_reverse",
    "ATTENTION_LAYERS",
    "CBAM",
    "CoordAttention",
    "SqueezeExcite",
    "TripletAttention",
    "attention_names",
    "attention_params",
    "cbam_params",
    "check_attention_name",
    "coord_attention_params",
    "create_attention",
    "se_params",
    "triplet_attention_params",
]
