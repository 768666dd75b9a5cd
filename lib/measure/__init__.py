"""Cost of a model: parameters, FLOPs (``torch.utils.flop_counter``) and CPU latency (median of repeats).

FLOPs follow ``FlopCounterMode``'s convention: one multiply-add = 2 FLOPs, counted for convolutions,
matrix products and attention; element-wise ops (BN, activations, pooling, the attention gates' products)
are not counted. Papers usually report multiply-adds (MAdds): MAdds ≈ FLOPs / 2.
"""
from __future__ import annotations

import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode


def count_params(model: torch.nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


@torch.no_grad()
def count_flops(model: torch.nn.Module, input_shape: tuple[int, ...]) -> int:
    """Forward FLOPs for one input of ``input_shape`` (e.g. ``(1, 3, 32, 32)``), model in eval mode."""
    was_training = model.training
    model.eval()
    x = torch.zeros(input_shape, device=next(model.parameters()).device)
    with FlopCounterMode(display=False) as counter:
        model(x)
    model.train(was_training)
    return int(counter.get_total_flops())


@torch.no_grad()
def latency_ms(model: torch.nn.Module, input_shape: tuple[int, ...], *, repeats: int = 30, warmup: int = 5,
               threads: int | None = None) -> float:
    """Median wall time (ms) of one forward pass on the CPU, eval mode, ``threads`` intra-op threads."""
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    was_training = model.training
    model.eval()
    x = torch.randn(input_shape)
    try:
        for _ in range(warmup):
            model(x)
        times = []
        for _ in range(repeats):
            tick = time.perf_counter()
            model(x)
            times.append((time.perf_counter() - tick) * 1e3)
    finally:
        torch.set_num_threads(previous)
        model.train(was_training)
    return statistics.median(times)


def model_costs(model: torch.nn.Module, input_shape: tuple[int, ...], *, latency: bool = True,
                threads: int | None = 1) -> dict:
    """``{"params", "flops", "latency_ms"}`` of ``model`` for a batch-1 input of ``input_shape``."""
    costs = {"params": count_params(model), "flops": count_flops(model, input_shape)}
    if latency:
        costs["latency_ms"] = latency_ms(model, input_shape, threads=threads)
    return costs


__all__ = ["count_params", "count_flops", "latency_ms", "model_costs"]
