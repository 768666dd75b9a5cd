"""Reusable layers: the attention blocks compared in the book and a factory that builds them by name."""
from .attention import ATTENTION_LAYERS, attention_names, attention_params, check_attention_name, create_attention
from .cbam import CBAM, cbam_params
from .coord_attention import CoordAttention, coord_attention_params
from .squeeze_excite import SqueezeExcite, se_params
from .triplet_attention import TripletAttention, triplet_attention_params

__all__ = [
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
