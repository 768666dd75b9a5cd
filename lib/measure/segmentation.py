"""Segmentation metrics: confusion matrix, per-class IoU, mIoU, pixel accuracy (void ignored), and an evaluator.

For a confusion matrix ``M`` (rows = true class, columns = predicted class, void pixels left out):

    IoU_c   = M_cc / (Σ_j M_cj + Σ_i M_ic − M_cc)       (intersection over union of class c)
    mIoU    = mean of IoU_c over the classes present in the ground truth or the prediction
    pixAcc  = Σ_c M_cc / Σ M                            (labelled pixels only)

A class that appears neither in the ground truth nor in the predictions has no IoU (NaN) and is left out
of the mean, the convention of the usual scene-parsing toolkits (PSPNet / SPNet ``intersectionAndUnion``
summed over the whole split). Metrics are accumulated over the whole test split, not averaged per image.

``segmentation_evaluator(classes, ...)`` returns an ``evaluator`` hook for ``lib.train.fit``: ``test_loss``
(cross-entropy over labelled pixels), ``test_miou`` and ``test_pixel_acc`` (%), ``test_iou_<class>`` (%) for
every class, when ``groups`` is given ``test_<group>_miou`` per group of classes, and the differences named
in ``gaps`` (``{"thin_gap": ("thin", "other")}`` gives ``test_thin_gap``). ``test_acc`` repeats the pixel
accuracy under the name the book's drift checks compare across chapters. Undefined values (a class absent
from both the split and the predictions) are returned as None, which JSON can store.
"""
from __future__ import annotations

import re

import torch
import torch.nn.functional as F

IGNORE_INDEX = 255


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int,
                     ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """``(K, K)`` int64 counts, rows = true class, columns = predicted class; pixels labelled ``ignore_index``
    (or any label outside ``[0, K)``) are left out."""
    if pred.shape != target.shape:
        raise ValueError(f"pred and target shapes differ: {tuple(pred.shape)} vs {tuple(target.shape)}")
    keep = (target != ignore_index) & (target >= 0) & (target < num_classes)
    t, p = target[keep].long(), pred[keep].long().clamp(0, num_classes - 1)
    return torch.bincount(t * num_classes + p, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def iou_per_class(confusion: torch.Tensor) -> torch.Tensor:
    """IoU of each class (float64, 0..1); NaN for a class absent from both ground truth and prediction."""
    m = confusion.double()
    tp = m.diag()
    union = m.sum(0) + m.sum(1) - tp
    return torch.where(union > 0, tp / union.clamp_min(1), torch.full_like(tp, float("nan")))


def mean_iou(confusion: torch.Tensor) -> float:
    """Mean of the defined per-class IoUs (0..1)."""
    iou = iou_per_class(confusion)
    defined = iou[~iou.isnan()]
    return float(defined.mean()) if len(defined) else float("nan")


def pixel_accuracy(confusion: torch.Tensor) -> float:
    """Fraction of labelled pixels predicted right (0..1)."""
    total = confusion.sum()
    return float(confusion.diag().sum().double() / total) if total > 0 else float("nan")


def metric_name(class_name: str) -> str:
    """``"SignSymbol"`` -> ``"signsymbol"``: a class name as a metric-key fragment."""
    return re.sub(r"[^0-9a-z]+", "_", class_name.lower()).strip("_")


def summarize(confusion: torch.Tensor, classes: list[str], groups: dict[str, list[str]] | None = None,
              gaps: dict[str, tuple[str, str]] | None = None, prefix: str = "test_") -> dict:
    """Percentages: ``<prefix>miou``, ``<prefix>pixel_acc``, ``<prefix>iou_<class>``, group mIoUs and gaps."""
    if confusion.shape != (len(classes), len(classes)):
        raise ValueError(f"confusion matrix {tuple(confusion.shape)} does not match {len(classes)} classes")
    iou = iou_per_class(confusion)
    out = {f"{prefix}miou": 100.0 * mean_iou(confusion), f"{prefix}pixel_acc": 100.0 * pixel_accuracy(confusion)}
    for name, value in zip(classes, iou.tolist()):
        out[f"{prefix}iou_{metric_name(name)}"] = 100.0 * value
    index = {name: i for i, name in enumerate(classes)}
    for group, members in (groups or {}).items():
        unknown = [m for m in members if m not in index]
        if unknown:
            raise ValueError(f"group {group!r}: unknown classes {unknown}; accepted: {', '.join(classes)}")
        values = iou[[index[m] for m in members]]
        values = values[~values.isnan()]
        out[f"{prefix}{group}_miou"] = 100.0 * float(values.mean()) if len(values) else float("nan")
    for gap, (a, b) in (gaps or {}).items():
        out[f"{prefix}{gap}"] = out[f"{prefix}{a}_miou"] - out[f"{prefix}{b}_miou"]
    return out


@torch.no_grad()
def segment(model, images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, device, batch_size: int = 64):
    """Yield ``(start, logits)`` per batch of uint8 ``images`` (normalized with ``mean``/``std``)."""
    for start in range(0, len(images), batch_size):
        x = images[start:start + batch_size].to(device, torch.float32).div_(255.0)
        x = x.sub_(mean.to(device)[None, :, None, None]).div_(std.to(device)[None, :, None, None])
        yield start, model(x)


def segmentation_evaluator(classes: list[str], *, groups: dict[str, list[str]] | None = None,
                           gaps: dict[str, tuple[str, str]] | None = None, batch_size: int = 64,
                           ignore_index: int = IGNORE_INDEX):
    """An ``evaluator(model, test, mean, std, accelerator, config)`` hook for ``lib.train.fit``.

    Runs the bare model in eval mode over ``test.images`` / ``test.labels`` (masks ``(N, H, W)``), or over a
    streamed set's batches (``lib.data.streaming.open_ade20k``, decoded by DataLoader workers), sums one confusion
    matrix over the split (and over processes), and returns ``summarize(...)`` plus ``test_loss``.
    """
    num_classes = len(classes)

    @torch.no_grad()
    def evaluator(model, test, mean, std, accelerator, config) -> dict:
        net = accelerator.unwrap_model(model) if accelerator is not None else model
        net.eval()
        device = accelerator.device if accelerator is not None else torch.device("cpu")
        rank = accelerator.process_index if accelerator is not None else 0
        world = accelerator.num_processes if accelerator is not None else 1
        confusion = torch.zeros(num_classes, num_classes, dtype=torch.int64, device=device)
        loss = torch.zeros(2, dtype=torch.float64, device=device)
        for logits, target in _predictions(net, test, mean, std, device, batch_size, rank, world):
            loss[0] += F.cross_entropy(logits.float(), target, ignore_index=ignore_index, reduction="sum").double()
            loss[1] += (target != ignore_index).sum()
            confusion += confusion_matrix(logits.argmax(1), target, num_classes, ignore_index)
        if accelerator is not None:
            confusion = accelerator.reduce(confusion, reduction="sum")
            loss = accelerator.reduce(loss, reduction="sum")
        # a class absent from both the split and the predictions has no IoU: None, since JSON has no NaN
        metrics = {k: (None if v != v else v) for k, v in summarize(confusion.cpu(), classes, groups, gaps).items()}
        return {"test_loss": float(loss[0] / loss[1].clamp_min(1)), **metrics, "test_acc": metrics["test_pixel_acc"]}

    return evaluator


def _predictions(net, test, mean, std, device, batch_size: int, rank: int, world: int):
    """``(logits, target)`` per batch of this process's share of ``test``: every ``world``-th frame of an in-memory
    set, or consecutive batches of a streamed one (as ``lib.train.evaluate`` shares them)."""
    from ..data.streaming import StreamingImages, evaluation_batches, make_loader

    if isinstance(test, StreamingImages):
        loader = make_loader(test, evaluation_batches(len(test), batch_size, rank, world),
                             pin_memory=device.type == "cuda")
        for images, target in loader:
            _, logits = next(segment(net, images, mean, std, device, len(images)))
            yield logits, target.to(device)
        return
    share = torch.arange(rank, len(test), world)
    images, labels = test.images[share], test.labels[share]
    for start, logits in segment(net, images, mean, std, device, batch_size):
        yield logits, labels[start:start + len(logits)].to(device)


def segmentation_criterion(ignore_index: int = IGNORE_INDEX):
    """A ``criterion(model, x, labels, progress) -> (loss, logits)`` hook: pixel cross-entropy, void ignored."""

    def criterion(model, x, labels, progress):
        logits = model(x)
        return F.cross_entropy(logits, labels, ignore_index=ignore_index), logits

    return criterion


__all__ = ["IGNORE_INDEX", "confusion_matrix", "iou_per_class", "mean_iou", "pixel_accuracy", "metric_name",
           "summarize", "segment", "segmentation_evaluator", "segmentation_criterion"]
