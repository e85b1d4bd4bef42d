"""Training the paper's benchmarks (and a built-in synthetic task) in the core, snnTorch and Norse.

* :func:`train` / :class:`TrainConfig` / :class:`TrainResult`: the recipe of spec section 4 (:mod:`.trainer`).
* :func:`build_model`: a task's network in ``"core"``, ``"snntorch"`` or ``"norse"`` (:mod:`.models`).
* :func:`resolve_task`, :func:`task_datasets`, :data:`SYNTHETIC`: tasks and their data (:mod:`.tasks`).
* Errors: :class:`DivergenceError` (:class:`NonFiniteLossError`), :class:`RecipeChangedError`,
  :class:`CheckpointCorruptError`, :class:`RunExistsError`, :class:`RunFolderInUseError`.
* :func:`compare`: train several neurons on one task and tabulate them (what ``brf-train`` prints).
* Command lines: ``brf-train`` (``python -m brf_plugins.train``) and ``brf-eval`` (:mod:`.cli`).
"""

from .models import FRAMEWORKS, MODEL_NEURONS, AdapterMissingError, adapter_available, build_model, count_parameters
from .tasks import SYNTHETIC, TASK_NAMES, resolve_task, task_datasets
from .trainer import (CSV_COLUMNS, DivergenceError, NonFiniteLossError, RecipeChangedError, TrainConfig,
                      TrainResult, convergence_epochs, parameter_stats, recipe, train)
from .state import CheckpointCorruptError, RunExistsError, RunFolderInUseError
from .cli import compare, evaluate_checkpoint, format_table

__all__ = ["FRAMEWORKS", "MODEL_NEURONS", "AdapterMissingError", "adapter_available", "build_model",
           "count_parameters", "SYNTHETIC", "TASK_NAMES", "resolve_task", "task_datasets", "CSV_COLUMNS",
           "DivergenceError", "NonFiniteLossError", "RecipeChangedError", "CheckpointCorruptError",
           "RunExistsError", "RunFolderInUseError", "TrainConfig", "TrainResult", "convergence_epochs", "parameter_stats", "recipe",
           "train", "compare", "evaluate_checkpoint", "format_table"]
