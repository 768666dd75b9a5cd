"""The one training loop of the book: ``fit`` / ``evaluate`` through Hugging Face Accelerate.

Every chapter trains through ``fit`` so that seeding, thread count, data order, checkpoints, resume and
timings mean the same thing everywhere:

* ``seed_everything(seed, threads)`` seeds Python, NumPy and torch (via ``accelerate.utils.set_seed``)
  and sets the intra-op thread count explicitly (bits differ between thread counts on a CPU);
* the data order and the augmentation draws of epoch ``e`` come from a generator seeded with
  ``(seed, e)`` alone, so arms trained with the same seed see the same images in the same order
  (paired comparisons) and a resumed run sees what an uninterrupted one would have;
* the model, optimizer, schedule, history and RNG state are checkpointed atomically after every epoch;
  calling ``fit`` again with the same ``run_dir`` resumes after the last finished epoch;
* a non-finite loss stops the run with ``NonFiniteLossError`` naming the run, epoch and step; a finite
  divergence (a step's training loss above ``divergence_factor`` × the run's first-step loss, 100 by default)
  stops it with ``DivergenceError``; both are FloatingPointErrors, which ``Chapter.run`` records as failed runs;
* one process at a time trains a ``run_dir`` (a file lock; a second process waits, then resumes the finished
  run); an unreadable checkpoint raises ``CheckpointError`` naming the file and what to do;
* the progress bar appears only on the main process of an interactive terminal, never in a notebook.

Four hooks let a chapter change one part of the recipe and keep everything else (all optional):

* ``criterion(model, x, labels, progress) -> (loss, logits)`` — a loss that needs more than the logits
  (features, running statistics, a schedule over ``progress`` in [0, 1)); an ``nn.Module`` criterion is
  moved to the device and its ``state_dict`` (buffers; it has no trained parameters) is checkpointed with
  the model;
* ``sampler(generator, epoch) -> indices`` with ``len(sampler)`` indices per epoch — re-balanced sampling
  (``lib.data.longtail``); it must draw from ``generator`` so that arms stay paired and resume stays exact;
* ``augment(images, labels, generator) -> (images, labels)`` on uint8 batches — joint image/mask transforms
  for dense prediction (``lib.data.segmentation``);
* ``evaluator(model, test, mean, std, accelerator, config) -> {"test_...": value}`` — other test metrics
  (mIoU, per-class IoU, ...).

One optional stream feeds methods that also learn from unlabelled images (domain adaptation, semi-supervised
learning): ``fit(..., unlabeled=data)`` draws, at every step, a batch of ``config.batch_size`` images of
``data`` and passes it to the criterion as ``criterion(model, x, labels, progress, unlabeled=x_u)``. Its order
and augmentation come from a generator of their own, seeded by ``(seed, epoch)`` (``lib.data.streams``), so
the labelled stream is exactly what it is without ``unlabeled`` and arms stay paired; each epoch walks through
a fresh permutation of ``data``, then another, as often as the epoch needs (so a batch that straddles two
permutations of a small set can hold an image twice). The images go through the same ``augment`` hook, with
labels ``-1`` (an image-only augmentation ignores them; a joint image/mask one cannot be used on this stream),
and are normalised with the *training* set's channel statistics; their labels are never read. The checkpoint
records which unlabelled set a run trained with, and a resume with another one is refused.

With several processes (``accelerate launch``) each global batch is split across processes, the
gradients are averaged by DDP, and the metrics are summed across processes.

Paper recipes (``TrainConfig``): SGD or TensorFlow-style RMSProp (``optimizer``), a cosine, step (``multistep``) or
exponential schedule after the linear warm-up (``schedule``), label smoothing, an exponential moving average of the
weights evaluated instead of the weights (``ema_decay``), bf16 or fp16 autocast (fp16 with a gradient scaler),
``channels_last``, and gradient accumulation (``accumulate`` micro-batches per optimizer step). Every default is the
loop as it was before these options, bit for bit.

Paper-scale data: a ``lib.data.streaming.StreamingImages`` training or test set is read through a
``torch.utils.data.DataLoader`` (decoding workers, pinned memory on CUDA) whose batches are the in-memory path's
order, ``epoch_generator(seed, epoch)``, with the transform's draws seeded per position in the epoch; the dataset's
own transform replaces ``augment``. ``fit(..., checkpoint_every=k)`` also checkpoints every ``k`` steps inside an
epoch, and a run resumed from such a checkpoint continues at the next step with the batches, augmentation draws and
running totals the uninterrupted run would have had.
"""
from __future__ import annotations

import contextlib
import math
import os
import pickle
import zipfile
import pathlib
import sys
import time
import warnings
from dataclasses import MISSING, asdict, dataclass, fields

# tqdm.auto, imported by the Hugging Face stack, warns in kernels without ipywidgets; the book never shows
# notebook progress bars, so the warning is noise in committed outputs.
warnings.filterwarnings("ignore", message="IProgress not found")

import torch
import torch.nn.functional as F  # noqa: E402
from accelerate import Accelerator
from accelerate.utils import set_seed
from filelock import FileLock, Timeout

from ..data import ImageData, crop_flip, normalize
from ..data.streaming import StreamingImages, epoch_batches, evaluation_batches, make_loader
from ..data.streams import stream_generator


@dataclass
class TrainConfig:
    """Recipe of one training run (by default SGD with momentum, cosine schedule with optional linear warm-up).

    The learning rate is ``lr × factor``. ``schedule_unit`` (``SCHEDULE_UNITS``) says how often the factor
    changes. With ``"step"`` (the default) it changes after every optimizer step: ``K`` steps per epoch,
    ``T = epochs × K`` steps, ``W = warmup_epochs × K``; step ``s`` (0-based) trains at ``(s + 1) / W`` for
    ``s < W``, then at ``(1 + cos(π (s − W) / (T − W))) / 2``. With ``"epoch"`` it is the same formula with
    one unit per epoch, held for all of the epoch's steps: epoch ``e`` of ``E`` (0-based) trains at
    ``(e + 1) / W`` for ``e < W`` (``W = warmup_epochs``), then at ``(1 + cos(π (e − W) / (E − W))) / 2``.
    Without warm-up that is ``lr (1 + cos(π e / E)) / 2``, ``e = 0 … E − 1``: PyTorch's
    ``CosineAnnealingLR(T_max=epochs, eta_min=0)`` stepped after each epoch. That is the schedule of the
    official cRT / LWS configs of Kang et al. (facebookresearch/classifier-balancing,
    ``config/*/cls_crt.yaml``: ``coslr: true``, ``endlr: 0.0``; ``run_networks.py`` ``init_optimizers``).
    The official loop calls ``scheduler.step()`` before each epoch's batches instead (``run_networks.py``
    ``train()``), the PyTorch < 1.1 convention, which gives the same rates; on PyTorch ≥ 1.1 that order skips
    the first value, so the official code run there trains epoch ``e`` at ``lr (1 + cos(π (e + 1) / E)) / 2``
    and its last epoch at 0. ``history[e]["lr"]`` is the rate after the epoch's last step (under ``"epoch"``,
    the next epoch's rate).

    After the warm-up, ``schedule`` (``SCHEDULES``) chooses the factor: ``"cosine"`` (above); ``"multistep"``, the
    step decay ``lr_gamma ** (number of lr_milestones <= t)``; ``"exponential"``, TensorFlow's staircase
    ``exponential_decay``, ``lr_gamma ** floor(t / lr_decay_epochs)`` (MobileNetV2: 0.98 per epoch). ``t`` is the
    position in epochs counted from the start of training (warm-up included, as milestones are usually quoted):
    ``s / K`` for step ``s`` under ``schedule_unit="step"``, the epoch index under ``"epoch"``.

    ``optimizer`` (``OPTIMIZERS``): ``"sgd"`` (``momentum``, ``nesterov``, ``weight_decay`` added to the gradient)
    or ``"rmsprop_tf"``, RMSProp as TensorFlow computes it (timm's ``RMSpropTF``): the mean square ``ms`` starts at
    1 and decays with ``rmsprop_decay``, ``eps`` is added inside the square root, and the learning rate is applied
    inside the momentum buffer: ``ms ← ρ ms + (1 − ρ) g²``, ``m ← μ m + lr g / sqrt(ms + eps)``, ``w ← w − m``, with
    ``g`` the gradient plus ``weight_decay · w`` (TensorFlow's L2 regulariser). The MobileNetV2 paper (Sec. 6.1)
    gives decay and momentum 0.9 and weight decay 4e-5 but no epsilon; ``eps = 1.0`` is the default of TF-slim's
    ``train_image_classifier.py`` (``opt_epsilon``), the script of the TensorFlow MobileNet releases. ``"adam"`` is
    ``torch.optim.Adam`` with its own defaults (β = (0.9, 0.999), ε = 1e-8; ``momentum``, ``rmsprop_decay`` and
    ``eps`` unused) and ``weight_decay`` added to the gradient (L2, not AdamW's decoupled decay).

    ``ema_decay`` > 0 keeps an exponential moving average of the weights and buffers (``torch.optim.swa_utils.
    AveragedModel``: the average starts at the weights after the first step, then ``a ← d a + (1 − d) w`` after
    every step) and evaluates it instead of the trained weights. ``accumulate`` splits every batch into that many
    micro-batches, each backpropagated with weight ``len(micro-batch) / len(batch)`` before one optimizer step: the
    step of the whole batch with less memory (equal up to rounding, except for layers such as BatchNorm whose
    statistics are per micro-batch). ``precision="fp16"`` autocasts to float16 and scales the loss
    (``torch.amp.GradScaler``); it is meant for CUDA.
    """

    epochs: int
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    warmup_epochs: int = 0
    label_smoothing: float = 0.0
    augment: bool = True          # random crop (zero padding) + horizontal flip
    padding: int = 4
    eval_batch_size: int = 1000
    eval_every: int = 1           # evaluate on the test split every k epochs (and always after the last)
    channels_last: bool = False
    precision: str = "fp32"       # fp32 | bf16: autocast of the training forward pass (see PRECISIONS)
    schedule_unit: str = "step"   # step | epoch: the warm-up + cosine factor changes after every step or every epoch
    divergence_factor: float = 100.0  # stop when a step's loss exceeds this × the first step's loss (0: never)
    optimizer: str = "sgd"        # sgd | rmsprop_tf | adam (see OPTIMIZERS)
    rmsprop_decay: float = 0.9    # rmsprop_tf: decay of the mean square (TensorFlow's `decay`)
    eps: float = 1.0              # rmsprop_tf: added inside the square root (TF-slim's default)
    schedule: str = "cosine"      # cosine | multistep | exponential, after the warm-up (see SCHEDULES)
    lr_milestones: tuple = ()     # multistep: epochs at which the rate is multiplied by lr_gamma
    lr_gamma: float = 0.1         # multistep / exponential: the decay factor
    lr_decay_epochs: float = 1.0  # exponential: epochs per factor of lr_gamma (staircase)
    ema_decay: float = 0.0        # > 0: evaluate an exponential moving average of the weights with this decay
    accumulate: int = 1           # micro-batches per optimizer step (gradient accumulation)

    def __post_init__(self):
        for name in ("epochs", "batch_size", "eval_batch_size", "eval_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"TrainConfig.{name} must be a positive integer, got {value!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"TrainConfig.precision {self.precision!r} is not supported; accepted: {', '.join(PRECISIONS)}")
        if self.schedule_unit not in SCHEDULE_UNITS:
            raise ValueError(f"TrainConfig.schedule_unit {self.schedule_unit!r} is not supported; "
                             f"accepted: {', '.join(SCHEDULE_UNITS)}")
        if self.lr <= 0 or self.weight_decay < 0 or not 0 <= self.label_smoothing < 1 or self.divergence_factor < 0:
            raise ValueError(f"invalid optimisation settings: lr={self.lr}, weight_decay={self.weight_decay}, "
                             f"label_smoothing={self.label_smoothing}, divergence_factor={self.divergence_factor}")
        for name, value, accepted in (("optimizer", self.optimizer, OPTIMIZERS), ("schedule", self.schedule, SCHEDULES)):
            if value not in accepted:
                raise ValueError(f"TrainConfig.{name} {value!r} is not supported; accepted: {', '.join(accepted)}")
        if self.optimizer != "sgd" and self.nesterov:
            raise ValueError(f"TrainConfig.nesterov applies to SGD only; set nesterov=False with "
                             f"optimizer={self.optimizer!r}")
        if not 0 <= self.rmsprop_decay < 1 or self.eps <= 0:
            raise ValueError(f"TrainConfig.rmsprop_decay must be in [0, 1) and eps > 0, got {self.rmsprop_decay} "
                             f"and {self.eps}")
        self.lr_milestones = tuple(self.lr_milestones)
        if any(not isinstance(m, (int, float)) or m <= 0 for m in self.lr_milestones) or \
                list(self.lr_milestones) != sorted(self.lr_milestones):
            raise ValueError(f"TrainConfig.lr_milestones must be increasing positive epochs, got {self.lr_milestones}")
        if self.schedule == "multistep" and not self.lr_milestones:
            raise ValueError("TrainConfig.schedule 'multistep' needs lr_milestones (epochs)")
        if not 0 < self.lr_gamma <= 1 or self.lr_decay_epochs <= 0:
            raise ValueError(f"TrainConfig.lr_gamma must be in (0, 1] and lr_decay_epochs > 0, got {self.lr_gamma} "
                             f"and {self.lr_decay_epochs}")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"TrainConfig.ema_decay must be in [0, 1) (0: no average), got {self.ema_decay}")
        if isinstance(self.accumulate, bool) or not isinstance(self.accumulate, int) or self.accumulate < 1:
            raise ValueError(f"TrainConfig.accumulate must be a positive integer, got {self.accumulate!r}")


# bf16: torch.autocast on the training forward pass and loss (CPU: AVX-512 bf16 kernels; CUDA: the usual AMP without
# a loss scaler, which bf16's fp32 exponent range makes unnecessary). Autocast keeps the loss (and the reductions
# it lists) in fp32; the weights, optimizer state and evaluation stay fp32. fp16: the same autocast to float16, with
# a gradient scaler (fp16's exponent range underflows small gradients); for CUDA (it runs on a CPU, slowly).
PRECISIONS = ("fp32", "bf16", "fp16")

# The optimizers a recipe can name (TrainConfig explains both) and the schedules after the warm-up.
OPTIMIZERS = ("sgd", "rmsprop_tf", "adam")
SCHEDULES = ("cosine", "multistep", "exponential")

# How often the warm-up + cosine factor of the learning rate changes: after every optimizer step, or once per epoch
# (constant within an epoch; the official schedule of the decoupling paper's second stage). TrainConfig explains both.
SCHEDULE_UNITS = ("step", "epoch")


def training_autocast(precision: str, device: torch.device):
    """The autocast context of one training step (a no-op for fp32)."""
    return torch.autocast(device.type, dtype=torch.float16 if precision == "fp16" else torch.bfloat16,
                          enabled=precision != "fp32")


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite."""


class DivergenceError(FloatingPointError):
    """The training loss stayed finite but grew beyond ``divergence_factor`` × its initial value."""


class CheckpointError(RuntimeError):
    """A checkpoint file exists but cannot be read (corrupt, truncated) or belongs to another run."""


def check_loss(loss: float, initial: float | None, factor: float, where: str, at: str) -> None:
    """The book's stopping rules for one training step (book/method.md, Reliability): a non-finite loss
    raises NonFiniteLossError, a loss above ``factor`` × the run's first-step loss ``initial`` raises
    DivergenceError; ``where`` names the run and seed, ``at`` the epoch and step."""
    if not math.isfinite(loss):
        raise NonFiniteLossError(f"{where}: loss is {loss} at {at}; the run is stopped")
    if factor and initial is not None and initial > 0 and loss > factor * initial:
        raise DivergenceError(f"{where}: loss {loss:.4g} at {at} exceeds {factor:g} x the first step's loss "
                              f"{initial:.4g} (divergence rule, book/method.md); the run is stopped")


def load_checkpoint(path: pathlib.Path) -> dict:
    """Read a checkpoint written by ``fit``; CheckpointError names the file and the remedy if it is unreadable."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError, zipfile.BadZipFile) as error:
        raise CheckpointError(f"checkpoint {path} cannot be read ({type(error).__name__}: {str(error)[:200]}); it is "
                              f"corrupt or truncated (a full disk or a copy that did not finish). Delete it "
                              f"(rm '{path}') to train this run again from epoch 0, or restore it from a backup."
                              ) from error
    if not isinstance(state, dict) or "epoch" not in state or "model" not in state:
        raise CheckpointError(f"checkpoint {path} is not a checkpoint of lib.train.fit; delete it (rm '{path}') "
                              f"or choose another run_dir")
    return state


def default_threads() -> int:
    """Intra-op threads per process: ``$REPRO_THREADS`` if set (parallel seed workers set it), else the
    CPUs this process may use, shared among the local processes of a launch."""
    if os.environ.get("REPRO_THREADS"):
        return int(os.environ["REPRO_THREADS"])
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    return max(1, cpus // local)


def seed_everything(seed: int, threads: int | None = None) -> int:
    """Seed every RNG and fix the thread count; returns the thread count used."""
    threads = threads or default_threads()
    torch.set_num_threads(threads)
    set_seed(seed)
    return threads


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The generator for data order and augmentation of one epoch: a function of (seed, epoch) only."""
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


def _schedule(config: TrainConfig, steps_per_epoch: int):
    """The factor of ``config.lr`` at optimizer step ``step`` (0-based), for ``LambdaLR`` (TrainConfig docstring)."""
    steps_per_unit = steps_per_epoch if config.schedule_unit == "epoch" else 1
    units_per_epoch = steps_per_epoch // steps_per_unit
    total = config.epochs * units_per_epoch
    warmup = config.warmup_epochs * units_per_epoch

    def factor(step: int) -> float:
        unit = step // steps_per_unit
        if unit < warmup:
            return (unit + 1) / warmup
        if config.schedule == "cosine":
            progress = (unit - warmup) / max(1, total - warmup)
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        epochs = unit / units_per_epoch   # position in epochs from the start of training
        if config.schedule == "multistep":
            return config.lr_gamma ** sum(epochs >= m for m in config.lr_milestones)
        return config.lr_gamma ** math.floor(epochs / config.lr_decay_epochs)

    return factor


def make_optimizer(config: TrainConfig, parameters) -> torch.optim.Optimizer:
    """The optimizer ``config.optimizer`` names, over ``parameters`` (TrainConfig explains both)."""
    if config.optimizer == "rmsprop_tf":
        from timm.optim import RMSpropTF

        return RMSpropTF(parameters, lr=config.lr, alpha=config.rmsprop_decay, eps=config.eps,
                         momentum=config.momentum, weight_decay=config.weight_decay, lr_in_momentum=True)
    if config.optimizer == "adam":
        return torch.optim.Adam(parameters, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(parameters, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov,
                           weight_decay=config.weight_decay)


def _same_config(saved: dict, config: TrainConfig) -> bool:
    """Whether a checkpoint's config is ``config``; a field added to TrainConfig after the checkpoint was written
    counts as its default, which is what that run trained with."""
    defaults = {f.name: f.default for f in fields(TrainConfig) if f.default is not MISSING}
    return {**defaults, **saved} == asdict(config)


def _cross_entropy(label_smoothing: float):
    def criterion(model, x, labels, progress):
        logits = model(x)
        return F.cross_entropy(logits, labels, label_smoothing=label_smoothing), logits

    return criterion


def _crop_flip(config: TrainConfig):
    def augment(images, labels, generator):
        return crop_flip(images, generator, padding=config.padding), labels

    return augment


def _classification_evaluator(model, test, mean, std, accelerator, config, workers=None) -> dict:
    result = evaluate(model, test, mean, std, batch_size=config.eval_batch_size, accelerator=accelerator,
                      channels_last=config.channels_last, workers=workers)
    return {"test_loss": result["loss"], "test_acc": result["acc"]}


def _atomic_save(obj, path: pathlib.Path) -> None:
    from ..repro.store import torch_save_atomic   # the package's one atomic writer (unique temp name)

    torch_save_atomic(obj, path)


class _RunLock:
    """An exclusive lock on ``run_dir`` while a process trains it; a second process waits for the first."""

    def __init__(self, run_dir: pathlib.Path | None, label: str):
        self.lock = None
        if run_dir is not None:
            run_dir.mkdir(parents=True, exist_ok=True)
            self.lock = FileLock(str(run_dir / ".train.lock"))
        self.label, self.run_dir = label, run_dir

    def __enter__(self):
        if self.lock is not None:
            try:
                self.lock.acquire(timeout=0)
            except Timeout:
                print(f"{self.label or 'run'}: another process is training {self.run_dir}; waiting for it",
                      file=sys.stderr, flush=True)
                self.lock.acquire()
            from ..repro.store import remove_stale_temporaries

            remove_stale_temporaries(self.run_dir / "checkpoint.pt")   # left by a process killed while saving
        return self

    def __exit__(self, *exc):
        if self.lock is not None:
            self.lock.release()


def evaluation_stream(data, batch_size: int, accelerator: Accelerator, workers: int | None = None):
    """``(images uint8, labels)`` of this process's share of ``data`` on the device: consecutive batches of
    ``batch_size``, process ``rank`` taking every ``world``-th (decoded by DataLoader workers for a streamed set)."""
    device, rank, world = accelerator.device, accelerator.process_index, accelerator.num_processes
    if isinstance(data, StreamingImages):
        loader = make_loader(data, evaluation_batches(len(data), batch_size, rank, world), workers=workers,
                             pin_memory=device.type == "cuda")
        for images, labels in loader:
            yield images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        return
    for start in range(rank * batch_size, len(data), world * batch_size):
        yield (data.images[start:start + batch_size].to(device, non_blocking=True),
               data.labels[start:start + batch_size].to(device, non_blocking=True))


@torch.no_grad()
def evaluate(model, data: ImageData, mean: torch.Tensor, std: torch.Tensor, *, batch_size: int = 1000,
             accelerator: Accelerator | None = None, channels_last: bool = False, workers: int | None = None) -> dict:
    """Mean cross-entropy and top-1 accuracy (%) of ``model`` on ``data`` (in memory or streamed; summed over
    processes)."""
    accelerator = accelerator or Accelerator(cpu=not torch.cuda.is_available())
    # the bare module, not its DDP wrapper: processes hold different numbers of test batches, and a DDP
    # forward would wait for a buffer broadcast from processes that have none left
    model = accelerator.unwrap_model(model)
    was_training = model.training
    model.eval()
    totals = torch.zeros(3, dtype=torch.float64, device=accelerator.device)  # loss sum, correct, count
    for images, labels in evaluation_stream(data, batch_size, accelerator, workers):
        x = normalize(images, mean, std)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        logits = model(x)
        totals[0] += F.cross_entropy(logits.float(), labels, reduction="sum").double()
        totals[1] += (logits.argmax(1) == labels).sum()
        totals[2] += len(labels)
    totals = accelerator.reduce(totals, reduction="sum")
    model.train(was_training)
    return {"loss": (totals[0] / totals[2]).item(), "acc": (100.0 * totals[1] / totals[2]).item()}


def fit(model: torch.nn.Module, train: ImageData, test: ImageData, config: TrainConfig, *, seed: int,
        run_dir: str | os.PathLike | None = None, label: str = "", progress: str | bool = "auto",
        accelerator: Accelerator | None = None, criterion=None, sampler=None, augment=None, evaluator=None,
        unlabeled: ImageData | None = None, checkpoint_every: int | None = None, workers: int | None = None) -> dict:
    """Train ``model`` on ``train``, evaluate on ``test``; checkpoint to ``run_dir`` and resume from it.

    ``train`` and ``test`` need ``.images`` (uint8 ``N, C, H, W``), ``.labels`` (class ids ``N`` or masks
    ``N, H, W``), ``len()`` and ``.channel_stats()``, or are ``StreamingImages`` (decoded by ``workers`` DataLoader
    processes, ``lib.data.streaming.default_workers()`` when None). ``criterion``, ``sampler``, ``augment`` and
    ``evaluator`` replace cross-entropy, the shuffled epoch, crop + flip and the top-1 evaluation; ``unlabeled``
    adds a stream of unlabelled batches for the criterion (module docstring). ``checkpoint_every=k`` also writes
    the checkpoint after every ``k``-th step of an epoch, from which a resumed run continues mid-epoch.

    Returns ``{"metrics": {...}, "history": [per-epoch dicts], "wall_time_s", "train_images_per_s",
    "resumed_from_epoch"}``. ``metrics`` holds the last evaluation's ``test_*`` values (by default
    ``test_acc`` (%), ``test_loss``), ``train_loss`` and ``train_acc`` (%, on augmented batches; labels
    outside ``[0, classes)``, such as a void label, are not counted).
    """
    accelerator = accelerator or Accelerator(cpu=not torch.cuda.is_available())
    run_dir = pathlib.Path(run_dir) if run_dir is not None else None
    with _RunLock(run_dir if accelerator.is_main_process else None, label):
        return _fit(model, train, test, config, seed=seed, run_dir=run_dir, label=label, progress=progress,
                    accelerator=accelerator, criterion=criterion, sampler=sampler, augment=augment,
                    evaluator=evaluator, unlabeled=unlabeled, checkpoint_every=checkpoint_every, workers=workers)


def _unlabeled_key(unlabeled: ImageData | None) -> str | None:
    """What identifies the unlabelled set in a checkpoint: its size, name, split and the sha256 of its images."""
    if unlabeled is None:
        return None
    import hashlib
    import json
    digest = hashlib.sha256(unlabeled.images.contiguous().numpy().tobytes()).hexdigest()
    return json.dumps({"rows": len(unlabeled), "name": unlabeled.name, "split": unlabeled.split,
                       "images_sha256": digest}, sort_keys=True)


def unlabeled_order(count: int, seed: int, epoch: int, needed: int) -> tuple[torch.Tensor, torch.Generator]:
    """Indices of the unlabelled images for one epoch (fresh permutations, concatenated until ``needed``) and the
    generator that then draws their augmentation: both functions of ``(seed, epoch)`` only."""
    generator = stream_generator("unlabeled", seed, epoch)
    rounds = -(-needed // count)
    order = torch.cat([torch.randperm(count, generator=generator) for _ in range(rounds)])[:needed]
    return order, generator


def _memory_batches(train, order, augment, generator, config: TrainConfig, steps: int, start_step: int, rank: int,
                    local: int, device):
    """This process's part of every batch of an in-memory epoch from ``start_step`` on (augmented on the whole batch,
    so that the draws do not depend on the number of processes)."""
    for step in range(start_step, steps):
        idx = order[step * config.batch_size:(step + 1) * config.batch_size]
        images, labels = train.images[idx], train.labels[idx]
        if augment is not None:
            images, labels = augment(images, labels, generator)
        yield (images[rank * local:(rank + 1) * local].to(device, non_blocking=True),
               labels[rank * local:(rank + 1) * local].to(device, non_blocking=True))


def _stream_batches(train: StreamingImages, order, seed: int, epoch: int, config: TrainConfig, steps: int,
                    start_step: int, rank: int, world: int, device, workers):
    """The same batches as ``_memory_batches`` (rows ``order``), decoded and transformed by DataLoader workers."""
    batches = epoch_batches(order, config.batch_size, seed, epoch, steps=steps, start_step=start_step, rank=rank,
                            world=world)
    for images, labels in make_loader(train, batches, workers=workers, pin_memory=device.type == "cuda"):
        yield images.to(device, non_blocking=True), labels.to(device, non_blocking=True)


def _check_streaming(train, config: TrainConfig, augment, unlabeled) -> bool:
    streaming = isinstance(train, StreamingImages)
    if streaming and (augment is not None or config.augment):
        raise ValueError("a streamed training set brings its own transform (train.transform, e.g. lib.data.streaming."
                         "train_transform()); set TrainConfig(augment=False) and pass no augment hook")
    if streaming and unlabeled is not None:
        raise ValueError("fit(unlabeled=...) reads an in-memory set; it cannot be combined with a streamed training set")
    return streaming


def _fit(model, train, test, config: TrainConfig, *, seed, run_dir, label, progress, accelerator, criterion,
         sampler, augment, evaluator, unlabeled=None, checkpoint_every=None, workers=None) -> dict:
    start_wall = time.perf_counter()
    device, rank, world = accelerator.device, accelerator.process_index, accelerator.num_processes
    if config.batch_size % world:
        raise ValueError(f"batch_size {config.batch_size} must be divisible by the number of processes {world}")
    if config.batch_size // world < config.accumulate:
        raise ValueError(f"accumulate={config.accumulate} micro-batches do not fit in a per-process batch of "
                         f"{config.batch_size // world}")
    if checkpoint_every is not None and (isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, int)
                                         or checkpoint_every < 1):
        raise ValueError(f"checkpoint_every must be a positive number of steps or None, got {checkpoint_every!r}")
    streaming = _check_streaming(train, config, augment, unlabeled)
    per_epoch = len(sampler) if sampler is not None else len(train)
    steps_per_epoch = per_epoch // config.batch_size
    if steps_per_epoch < 1:
        raise ValueError(f"{per_epoch} training examples per epoch are fewer than one batch of {config.batch_size}")
    if unlabeled is not None and criterion is None:
        raise ValueError("fit(unlabeled=...) needs a criterion that uses the unlabelled batches; "
                         "cross-entropy alone would ignore them")
    if unlabeled is not None and (len(unlabeled) < 1 or unlabeled.images.shape[1:] != train.images.shape[1:]):
        raise ValueError(f"unlabeled images must be non-empty and shaped like the training images "
                         f"{tuple(train.images.shape[1:])}, got {len(unlabeled)} of {tuple(unlabeled.images.shape[1:])}")
    if criterion is None:
        criterion = _cross_entropy(config.label_smoothing)
    if augment is None and config.augment:
        augment = _crop_flip(config)
    if evaluator is None:
        evaluator = _classification_evaluator if workers is None else \
            (lambda *args: _classification_evaluator(*args, workers=workers))
    stateful = isinstance(criterion, torch.nn.Module)
    mean, std = train.channel_stats()

    model = model.to(device)
    if stateful:
        criterion.to(device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(config, model.parameters())
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(config, steps_per_epoch))
    scaler = torch.amp.GradScaler(device.type) if config.precision == "fp16" else None
    ema = None
    if config.ema_decay:
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(config.ema_decay), use_buffers=True)

    history: list[dict] = []
    first_epoch, start_step, partial = 0, 0, None
    checkpoint = pathlib.Path(run_dir) / "checkpoint.pt" if run_dir is not None else None
    unlabeled_key = _unlabeled_key(unlabeled) if checkpoint is not None else None   # hashed once per run
    initial_loss, segments = None, []
    if checkpoint is not None and checkpoint.is_file():
        state = load_checkpoint(checkpoint)
        if not _same_config(state["config"], config) or state["seed"] != seed:
            raise ValueError(f"checkpoint {checkpoint} was written by another configuration or seed; "
                             f"delete it or choose another run_dir")
        if state.get("unlabeled") != unlabeled_key:
            raise ValueError(f"checkpoint {checkpoint} was written with another unlabelled set (or none); "
                             f"delete it or choose another run_dir")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        if state.get("cuda_rng") is not None and device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"], device)
        if stateful:
            criterion.load_state_dict(state["criterion"])
        if scaler is not None:
            scaler.load_state_dict(state["scaler"])
        if ema is not None:
            ema.load_state_dict(state["ema"])
        history, first_epoch = state["history"], state["epoch"] + 1
        initial_loss, segments = state.get("initial_loss"), state.get("segments", [])
        partial = state.get("partial")
        if partial is not None:   # written inside epoch `first_epoch`, after `step` steps
            start_step = partial["step"]
    threads = torch.get_num_threads()
    if first_epoch < config.epochs:   # one segment per uninterrupted stretch of epochs: its thread count and the
        from ..repro.store import git_state   # checkout that trained it (a resumed run may span two commits)

        checkout = git_state(["lib"])
        segments = [*segments, {"first_epoch": first_epoch, "threads": threads, "commit": checkout["commit"],
                                "lib_modified": checkout["dirty"], **({"first_step": start_step} if start_step else {})}]

    model, optimizer = accelerator.prepare(model, optimizer)
    show = accelerator.is_main_process and (progress is True or (progress == "auto" and sys.stderr.isatty()))
    bar = None
    if show:
        from tqdm.auto import tqdm
        bar = tqdm(total=config.epochs * steps_per_epoch, initial=first_epoch * steps_per_epoch + start_step,
                   desc=label or "fit", leave=False, file=sys.stderr)

    def state_dict(epoch: int, **more) -> dict:
        return {"model": accelerator.unwrap_model(model).state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
                "epoch": epoch, "history": history, "config": asdict(config), "seed": seed,
                "criterion": criterion.state_dict() if stateful else None,
                "scaler": scaler.state_dict() if scaler is not None else None,
                "ema": ema.state_dict() if ema is not None else None,
                "initial_loss": initial_loss, "segments": segments, "unlabeled": unlabeled_key, **more}

    local = config.batch_size // world
    train_time = sum(h["epoch_time_s"] for h in history)
    for epoch in range(first_epoch, config.epochs):
        model.train()
        tick = time.perf_counter()
        generator = epoch_generator(seed, epoch)
        order = sampler(generator, epoch) if sampler is not None else torch.randperm(len(train), generator=generator)
        if unlabeled is not None:
            u_order, u_generator = unlabeled_order(len(unlabeled), seed, epoch, steps_per_epoch * config.batch_size)
        totals = torch.zeros(4, dtype=torch.float64, device=device)  # loss sum, examples, correct, labels
        first_step, elapsed = 0, 0.0
        if partial is not None:   # resume inside this epoch: the draws, totals and time of its first steps
            generator.set_state(partial["generator"])
            if unlabeled is not None:
                u_generator.set_state(partial["u_generator"])
            if rank == 0:
                totals += partial["totals"].to(device)
            first_step, elapsed, partial = partial["step"], partial["elapsed_s"], None
        if streaming:
            batches = _stream_batches(train, order, seed, epoch, config, steps_per_epoch, first_step, rank, world,
                                      device, workers)
        else:
            batches = _memory_batches(train, order, augment, generator, config, steps_per_epoch, first_step, rank,
                                      local, device)
        for step, (images, labels) in enumerate(batches, start=first_step):
            x = normalize(images, mean, std)
            if config.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            extra = {}
            if unlabeled is not None:
                u_images = unlabeled.images[u_order[step * config.batch_size:(step + 1) * config.batch_size]]
                if augment is not None:
                    u_images, _ = augment(u_images, torch.full((len(u_images),), -1, dtype=torch.long), u_generator)
                u_x = normalize(u_images[rank * local:(rank + 1) * local].to(device, non_blocking=True), mean, std)
                extra["unlabeled"] = u_x.contiguous(memory_format=torch.channels_last) if config.channels_last else u_x
            progress_now = (epoch * steps_per_epoch + step) / (config.epochs * steps_per_epoch)
            where = (f"{label or 'run'} (seed {seed})", f"epoch {epoch}, step {step}")
            if config.accumulate == 1:
                with training_autocast(config.precision, device):
                    loss, logits = criterion(model, x, labels, progress_now, **extra)
                loss = loss.float()
                value = loss.item()
                if initial_loss is None:
                    initial_loss = value
                check_loss(value, initial_loss, config.divergence_factor, *where)
                optimizer.zero_grad(set_to_none=True)
                accelerator.backward(loss if scaler is None else scaler.scale(loss))
            else:
                optimizer.zero_grad(set_to_none=True)
                loss, logits = _accumulate(model, criterion, x, labels, extra, progress_now, config, accelerator,
                                           scaler, device)
                if initial_loss is None:
                    initial_loss = loss.item()
                check_loss(loss.item(), initial_loss, config.divergence_factor, *where)
            if scaler is None:
                optimizer.step()
            else:
                scaler.step(optimizer)
                scaler.update()
            scheduler.step()
            if ema is not None:
                ema.update_parameters(accelerator.unwrap_model(model))
            with torch.no_grad():
                totals[0] += loss.detach().double() * len(labels)
                totals[1] += len(labels)
                counted = (labels >= 0) & (labels < logits.shape[1])
                totals[2] += ((logits.argmax(1) == labels) & counted).sum()
                totals[3] += counted.sum()
            if bar is not None:
                bar.update(1)
            if checkpoint is not None and checkpoint_every and (step + 1) % checkpoint_every == 0 \
                    and step + 1 < steps_per_epoch:
                summed = accelerator.reduce(totals.clone(), reduction="sum")   # every process's share, once
                if accelerator.is_main_process:
                    _atomic_save(state_dict(epoch - 1, partial={
                        "step": step + 1, "generator": generator.get_state(), "totals": summed.cpu(),
                        "u_generator": u_generator.get_state() if unlabeled is not None else None,
                        "elapsed_s": elapsed + time.perf_counter() - tick}), checkpoint)
                accelerator.wait_for_everyone()
        totals = accelerator.reduce(totals, reduction="sum")
        epoch_time = elapsed + time.perf_counter() - tick
        train_time += epoch_time
        record = {"epoch": epoch + 1, "train_loss": (totals[0] / totals[1]).item(),
                  "train_acc": (100.0 * totals[2] / totals[3].clamp(min=1)).item(), "lr": scheduler.get_last_lr()[0],
                  "epoch_time_s": epoch_time, "images_per_s": steps_per_epoch * config.batch_size / epoch_time,
                  "threads": threads}
        if (epoch + 1) % config.eval_every == 0 or epoch + 1 == config.epochs:
            result = evaluator(ema.module if ema is not None else model, test, mean, std, accelerator, config)
            bad = sorted(k for k in result if not k.startswith("test_"))
            if bad:
                raise ValueError(f"evaluator metrics must be named test_*, got {bad}")
            record.update(result)
            model.train()
        history.append(record)
        if checkpoint is not None and accelerator.is_main_process:
            checkpoint.parent.mkdir(parents=True, exist_ok=True)
            _atomic_save(state_dict(epoch), checkpoint)
        accelerator.wait_for_everyone()
    if bar is not None:
        bar.close()

    last = history[-1]
    return {
        "metrics": {**{k: v for k, v in last.items() if k.startswith("test_")},
                    "train_loss": last["train_loss"], "train_acc": last["train_acc"]},
        "history": history,
        "wall_time_s": time.perf_counter() - start_wall,
        "train_time_s": train_time,
        "train_images_per_s": len(history) * steps_per_epoch * config.batch_size / max(train_time, 1e-9),
        "resumed_from_epoch": first_epoch,
        "segments": segments,   # [{first_epoch, threads}]: a resumed run says which epochs ran on how many threads
    }


def _accumulate(model, criterion, x, labels, extra, progress, config: TrainConfig, accelerator, scaler, device):
    """Backpropagate ``config.accumulate`` micro-batches of one batch, each weighted by its share of the batch (the
    gradients of the whole batch's mean loss); return that loss and the logits. DDP synchronises on the last one."""
    parts = config.accumulate
    pieces = zip(x.tensor_split(parts), labels.tensor_split(parts),
                 *[[(k, v) for v in value.tensor_split(parts)] for k, value in extra.items()])
    total, outputs = torch.zeros((), dtype=torch.float32, device=device), []
    for i, (xi, yi, *more) in enumerate(pieces):
        sync = contextlib.nullcontext() if i == parts - 1 else accelerator.no_sync(model)
        with sync:
            with training_autocast(config.precision, device):
                loss, logits = criterion(model, xi, yi, progress, **dict(more))
            weighted = loss.float() * (len(yi) / len(labels))
            accelerator.backward(weighted if scaler is None else scaler.scale(weighted))
        total += weighted.detach()
        outputs.append(logits.detach())
    return total, torch.cat(outputs)


__all__ = ["TrainConfig", "PRECISIONS", "SCHEDULE_UNITS", "OPTIMIZERS", "SCHEDULES", "training_autocast",
           "NonFiniteLossError", "DivergenceError", "CheckpointError", "check_loss", "load_checkpoint", "default_threads",
           "seed_everything", "epoch_generator", "make_optimizer", "evaluate", "evaluation_stream", "fit"]
