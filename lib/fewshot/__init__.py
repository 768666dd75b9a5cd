"""Few-shot learning: seeded N-way K-shot episodes and prototypical networks."""
from .episodes import Episode, EpisodeSampler
from .protonet import ProtoNet, protonet_logits, prototypes

__all__ = ["Episode", "EpisodeSampler", "ProtoNet", "protonet_logits", "prototypes"]
