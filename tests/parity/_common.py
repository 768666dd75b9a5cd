"""Weight transfer through an explicit name map and a paired forward / backward pass (see ``__init__.py``)."""
from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

TOLERANCE = {torch.float64: 1e-10, torch.float32: 1e-5}
DTYPES = (torch.float64, torch.float32)
MODES = ("train", "eval")


def flip_in_channels(weight: torch.Tensor) -> torch.Tensor:
    """Reverse the input-channel axis of a convolution weight (``[max; mean]`` <-> ``[mean; max]``)."""
    return weight.flip(1)


def calibrate(net: nn.Module, shape: tuple[int, ...], seed: int = 5) -> nn.Module:
    """Random BatchNorm affine parameters and running statistics of the network's own activations (the
    cumulative mean over three random batches of ``shape``), so that eval mode is not saturated (with the
    initial statistics, ReLU6 clips nearly everything and the input gradient is ~1e-10)."""
    gen = torch.Generator().manual_seed(seed)
    norms = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    momenta = [m.momentum for m in norms]
    with torch.no_grad():
        for m in norms:
            m.weight.copy_(0.5 + torch.rand(m.weight.shape, generator=gen))
            m.bias.copy_(0.4 * torch.rand(m.bias.shape, generator=gen) - 0.2)
            m.reset_running_stats()
            m.momentum = None
        net.train()
        for _ in range(3):
            net(torch.randn(shape, generator=gen))
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    return net


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@dataclass
class Pair:
    """One of our modules, its counterpart and how our state-dict keys become theirs.

    ``name_map`` maps every key of ``ours.state_dict()`` to a key of ``theirs.state_dict()``; ``transforms``
    (our key -> a linear map applied to the tensor, its own inverse) covers weights stored in another layout.
    """
    ours: nn.Module
    theirs: nn.Module
    name_map: dict[str, str]
    transforms: dict[str, Callable[[torch.Tensor], torch.Tensor]] = field(default_factory=dict)

    def transfer(self) -> "Pair":
        """Copy our weights and buffers into theirs (``load_state_dict(strict=True)``); returns self."""
        state = self.ours.state_dict()
        assert set(self.name_map) == set(state), sorted(set(self.name_map) ^ set(state))
        assert len(set(self.name_map.values())) == len(self.name_map), "the name map is not one-to-one"
        mapped = {self.name_map[k]: self.transforms.get(k, _same)(v) for k, v in state.items()}
        self.theirs.load_state_dict(mapped, strict=True)
        return self


def _same(t: torch.Tensor) -> torch.Tensor:
    return t


def _max_abs(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return (a.double() - b.double()).abs().max().item()


def compare(pair: Pair, x: torch.Tensor, *, dtype: torch.dtype, mode: str, seed: int = 0) -> dict[str, float]:
    """Max absolute differences between ours and theirs after ``pair.transfer()``, on copies cast to ``dtype``.

    Keys: ``out`` (outputs), ``grad`` (gradient with respect to the input of ``<y, g>`` for a fixed random
    ``g``; a plain sum would give zero gradients through BatchNorm in training mode), ``param_grad`` (the
    parameter gradients through the name map, each relative to ``max(1, max |their gradient|)``: they are sums
    over the batch and the positions), ``buffers`` (BatchNorm running statistics after the forward,
    0 when there are none), ``scale`` (max |output| of theirs, so that a difference can be read relative to it).
    """
    ours = copy.deepcopy(pair.ours).to(dtype).train(mode == "train")
    theirs = copy.deepcopy(pair.theirs).to(dtype).train(mode == "train")
    xa = x.detach().to(dtype).requires_grad_(True)
    xb = x.detach().to(dtype).requires_grad_(True)
    ya, yb = ours(xa), theirs(xb)
    g = torch.randn(ya.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).to(dtype)
    (ya * g).sum().backward()
    (yb * g).sum().backward()
    diffs = {"out": _max_abs(ya.detach(), yb.detach()), "grad": _max_abs(xa.grad, xb.grad),
             "scale": yb.detach().abs().max().item()}
    theirs_params = dict(theirs.named_parameters())
    param = [0.0]
    for name, p in ours.named_parameters():
        if p.grad is not None:
            q = theirs_params[pair.name_map[name]]
            scale = max(1.0, q.grad.abs().max().item())
            param.append(_max_abs(pair.transforms.get(name, _same)(p.grad), q.grad) / scale)
    diffs["param_grad"] = max(param)
    theirs_state = theirs.state_dict()
    buffers = [0.0]
    for name, buf in ours.state_dict().items():
        if "running_" in name or "num_batches_tracked" in name:
            buffers.append(_max_abs(buf, theirs_state[pair.name_map[name]]))
    diffs["buffers"] = max(buffers)
    return diffs


def assert_match(diffs: dict[str, float], dtype: torch.dtype) -> None:
    """Outputs, input gradients and running statistics within ``TOLERANCE``; the parameter gradients (sums over
    the batch and the positions, relative) within it in float64 and within 1e-4 in float32."""
    tol = TOLERANCE[dtype]
    limits = {k: tol for k in diffs if k != "scale"}
    if dtype == torch.float32:
        limits["param_grad"] = 1e-4
    bad = {k: diffs[k] for k, limit in limits.items() if not diffs[k] <= limit}
    assert not bad, f"{dtype}: {bad} exceed their limits {limits} (all: {diffs})"
    assert diffs["scale"] > 1e-3, f"outputs too small to compare: {diffs}"
