"""Continual learning: task sequences built from the mirror's datasets and the standard metrics."""
from .benchmarks import Task, permuted_tasks, split_tasks
from .metrics import average_accuracy, backward_transfer, forgetting

__all__ = ["Task", "permuted_tasks", "split_tasks", "average_accuracy", "backward_transfer", "forgetting"]
