"""Task sequences for continual learning, built deterministically from one labelled image dataset.

* ``split_tasks(train, test, classes_per_task=2)`` — Split-MNIST / Split-CIFAR-10 (Zenke, Poole, Ganguli,
  ICML 2017): classes ``0,1`` form task 0, ``2,3`` task 1, and so on, in label order (``order`` changes it).
  A task keeps the dataset's labels, so the same sequence serves the *class-incremental* setting (one head
  over all classes seen so far) and the *task-incremental* one (``Task.classes`` names the head's classes);
  ``Task.local_labels`` maps them to ``0 … k − 1`` for a multi-head network.
* ``permuted_tasks(train, test, tasks, seed)`` — Permuted-MNIST (Goodfellow et al., 2013; Kirkpatrick et al.,
  PNAS 2017): task ``t`` applies one fixed random permutation of the pixel positions to every image (train and
  test alike); task 0 is the identity when ``identity_first`` (the usual convention), and the permutation of
  task ``t`` depends only on ``(seed, t)``.

A task is a pair of ``ImageData`` (train, test) plus its classes; nothing is copied beyond what a subset or a
permutation needs.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..data import ImageData
from ..data.streams import stream_generator


@dataclass
class Task:
    index: int
    train: ImageData
    test: ImageData
    classes: list[int]

    def local_labels(self, labels: torch.Tensor) -> torch.Tensor:
        """Dataset labels of this task → ``0 … len(classes) − 1`` (task-incremental heads)."""
        labels = torch.as_tensor(labels).long()
        inside = torch.isin(labels, torch.tensor(self.classes))
        if not inside.all():
            bad = sorted(set(labels[~inside].tolist()))[:10]
            raise ValueError(f"labels {bad} are outside task {self.index}'s classes {self.classes}")
        lookup = torch.zeros(int(max(self.classes)) + 1, dtype=torch.long)
        lookup[torch.tensor(self.classes)] = torch.arange(len(self.classes))
        return lookup[labels]


def split_tasks(train: ImageData, test: ImageData, classes_per_task: int = 2, order=None) -> list[Task]:
    """Consecutive groups of ``classes_per_task`` classes (in ``order``, default label order) as tasks."""
    num_classes = train.num_classes
    order = list(range(num_classes)) if order is None else [int(c) for c in order]
    if sorted(order) != list(range(num_classes)):
        raise ValueError(f"order must be a permutation of 0..{num_classes - 1}, got {order}")
    if not isinstance(classes_per_task, int) or classes_per_task < 1 or num_classes % classes_per_task:
        raise ValueError(f"classes_per_task must divide the {num_classes} classes, got {classes_per_task!r}")
    tasks = []
    for t in range(num_classes // classes_per_task):
        classes = order[t * classes_per_task:(t + 1) * classes_per_task]
        pick = lambda data: data.subset(torch.nonzero(torch.isin(data.labels, torch.tensor(classes))).flatten())
        tasks.append(Task(t, pick(train), pick(test), classes))
    return tasks


def pixel_permutation(pixels: int, seed: int, task: int) -> torch.Tensor:
    """The permutation of task ``task``: a function of ``(seed, task)`` only (its own random stream)."""
    return torch.randperm(pixels, generator=stream_generator("permuted-task", seed, task))


def _permute(data: ImageData, perm: torch.Tensor, task: int) -> ImageData:
    n, c, h, w = data.images.shape
    images = data.images.reshape(n, c, h * w)[:, :, perm].reshape(n, c, h, w)
    return ImageData(images, data.labels, data.classes, data.name, data.split,
                     {**data.source, "permuted_task": task})


def permuted_tasks(train: ImageData, test: ImageData, tasks: int, seed: int = 0, *,
                   identity_first: bool = True) -> list[Task]:
    """``tasks`` tasks, each the whole dataset under one fixed pixel permutation (shared by train and test)."""
    if not isinstance(tasks, int) or tasks < 1:
        raise ValueError(f"tasks must be a positive integer, got {tasks!r}")
    pixels = train.images.shape[2] * train.images.shape[3]
    if test.images.shape[2:] != train.images.shape[2:]:
        raise ValueError(f"train and test images differ in size: {tuple(train.images.shape[2:])} vs "
                         f"{tuple(test.images.shape[2:])}")
    out = []
    for t in range(tasks):
        perm = torch.arange(pixels) if (t == 0 and identity_first) else pixel_permutation(pixels, seed, t)
        out.append(Task(t, _permute(train, perm, t), _permute(test, perm, t), list(range(train.num_classes))))
    return out
