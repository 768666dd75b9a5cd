"""Named random streams: a generator per (purpose, seed, index), independent of every other stream."""
from __future__ import annotations

import hashlib

import torch


def stream_generator(purpose: str, seed: int, index: int) -> torch.Generator:
    """A generator for draw ``index`` of ``purpose`` under ``seed``: sha256-derived, so streams of different
    purposes (episodes, task permutations, ...) never coincide and ``(seed, index)`` pairs never collide."""
    digest = hashlib.sha256(f"{purpose}:{seed}:{index}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & 0x7FFF_FFFF_FFFF_FFFF)
