"""Attention layers by name (``"none"``, ``"se"``, ``"cbam"``, ``"ca"``, ``"triplet"``): a config string picks the arm.

Every layer takes ``channels`` as its first positional argument and its options as keywords, maps
``(N, C, H, W)`` to ``(N, C, H, W)``, and has a closed-form parameter count (``attention_params``).
``"none"`` is ``torch.nn.Identity``, which accepts and ignores the same arguments.

* ``"se"``: Squeeze-and-Excitation, Hu et al., arXiv:1709.01507 (``squeeze_excite.py``);
* ``"cbam"``: CBAM, Woo et al., arXiv:1807.06521 (``cbam.py``);
* ``"ca"``: coordinate attention, Hou et al., arXiv:2103.02907 (``coord_attention.py``);
* ``"triplet"``: triplet attention, Misra et al., arXiv:2010.03045 (``triplet_attention.py``).
"""
from __future__ import annotations

from torch import nn

from .cbam import CBAM, cbam_params
from .coord_attention import CoordAttention, coord_attention_params
from .squeeze_excite import SqueezeExcite, se_params
from .triplet_attention import TripletAttention, triplet_attention_params

ATTENTION_LAYERS: dict[str, type[nn.Module]] = {
    "none": nn.Identity,
    "se": SqueezeExcite,
    "cbam": CBAM,
    "ca": CoordAttention,
    "triplet": TripletAttention,
}

_PARAM_COUNTS = {
    "none": lambda channels, **kwargs: 0,
    "se": se_params,
    "cbam": cbam_params,
    "ca": coord_attention_params,
    "triplet": triplet_attention_params,
}


def attention_names() -> list[str]:
    """The accepted names, sorted."""
    return sorted(ATTENTION_LAYERS)


def check_attention_name(name: str) -> None:
    """Raise ``ValueError`` naming ``name`` and the accepted names unless ``name`` is one of them."""
    if name not in ATTENTION_LAYERS:
        raise ValueError(f"unknown attention {name!r}; expected one of {attention_names()}")


def create_attention(name: str, channels: int, **kwargs) -> nn.Module:
    """A fresh attention layer of kind ``name`` on ``channels`` channels; ``kwargs`` go to its constructor."""
    check_attention_name(name)
    if name == "none":
        return nn.Identity()
    return ATTENTION_LAYERS[name](channels, **kwargs)


def attention_params(name: str, channels: int, **kwargs) -> int:
    """Closed-form parameter count of ``create_attention(name, channels, **kwargs)``."""
    check_attention_name(name)
    return _PARAM_COUNTS[name](channels, **kwargs)
