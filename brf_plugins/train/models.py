"""Build a task's network in one of the three frameworks, with the contract of CONTRIBUTING.md.

Every model takes time-first input ``(T, B, m)`` and returns :class:`brf_plugins.network.SNNOutput`
(``readout (T, B, C)``, ``spike_count``, ...), so the trainer and :func:`brf_plugins.metrics.evaluate` treat
them alike.

* ``"core"`` (alias ``"torch"``): the core :meth:`brf_plugins.network.RecurrentSNN.from_task`.
* ``"snntorch"``: ``snntorch_ext.build_paper_network(task, neuron=..., **kw)``; a forward pre-hook calls
  ``snntorch.utils.reset`` so snnTorch-registered neurons start every batch from a zero state.
* ``"norse"``: ``norse_ext.build_paper_network(task, neuron=..., **kw)`` (a ``SequentialState`` with an LI
  readout, built by the adapter).

Neurons: ``"brf"``, ``"rf"``, ``"bhrf"``, ``"alif"``, and ``"lif"``: the LIF baseline is the framework's own
recurrent LIF network of the same size (snnTorch ``RLeaky``, Norse ``LIFRecurrentCell``:
:mod:`brf_plugins.train.baselines`); in the core, which has no LIF neuron of its own, it is the core ALIF neuron
with adaptation switched off (``alif_beta=0``: :math:`u'_t = \\alpha u_{t-1} + (1-\\alpha) I_t`,
:math:`z_t = H(u'_t - 0.01)`, soft reset).

Example:
    >>> from brf_plugins.train.models import build_model
    >>> from brf_plugins.train.tasks import resolve_task
    >>> net = build_model("core", resolve_task("ecg"), "brf")
    >>> sum(p.numel() for p in net.parameters())
    1734
"""

from __future__ import annotations

import importlib
from typing import Dict, Optional

import torch
from torch import nn

from .._checks import check_choice
from ..network import RecurrentSNN
from ..tasks import TaskConfig
from .baselines import lif_baseline

__all__ = ["FRAMEWORKS", "MODEL_NEURONS", "ABLATION_KWARGS", "AdapterMissingError", "adapter_available",
           "adapter_module", "canonical_framework", "default_framework", "build_model", "count_parameters",
           "resonator_parameters"]

FRAMEWORKS = ("core", "snntorch", "norse")
FRAMEWORK_ALIASES = {"torch": "core"}
MODEL_NEURONS = ("brf", "rf", "bhrf", "alif", "lif")
ABLATION_KWARGS = ("divergence_boundary", "refractory", "smooth_reset", "rf_reset", "bhrf_variant")
"""Layer options passed through to every framework's layers (the core :class:`RecurrentLayer` names)."""

_ADAPTER_MODULES = {"snntorch": "snntorch_ext", "norse": "norse_ext"}


class AdapterMissingError(ImportError):
    """The framework adapter (``snntorch_ext`` / ``norse_ext``) or its ``build_paper_network`` is not available."""


def adapter_module(framework: str):
    """The adapter package of ``framework`` (``snntorch_ext`` / ``norse_ext``), or :class:`AdapterMissingError`
    with the install hint."""
    module_name = _ADAPTER_MODULES[framework]
    try:
        return importlib.import_module(module_name)
    except ImportError as err:
        raise AdapterMissingError(
            f"framework={framework!r} needs the {module_name} package and {framework} itself ({err}). Install "
            f"brf-plugins with its {framework} extra (pip install 'brf-plugins[{framework}]'), or use "
            f"framework='core'.") from err


def _adapter_builder(framework: str):
    module = adapter_module(framework)
    builder = getattr(module, "build_paper_network", None)
    if builder is None:
        raise AdapterMissingError(f"{module.__name__} has no build_paper_network(); this brf-plugins build does "
                                  f"not support framework={framework!r} yet. Use framework='core'.")
    return builder


def canonical_framework(framework: str) -> str:
    """``"core"``, ``"snntorch"`` or ``"norse"`` (``"torch"`` is accepted for ``"core"``)."""
    framework = FRAMEWORK_ALIASES.get(framework, framework)
    return check_choice("framework", framework, FRAMEWORKS)


def adapter_available(framework: str) -> bool:
    """Whether ``build_model(framework, ...)`` can build models (the core always can)."""
    if canonical_framework(framework) == "core":
        return True
    try:
        _adapter_builder(framework)
    except AdapterMissingError:
        return False
    return True


def default_framework() -> str:
    """``"snntorch"`` when its adapter is installed, else ``"core"``."""
    return "snntorch" if adapter_available("snntorch") else "core"


def _snntorch_reset_hook(module: nn.Module, args) -> None:
    import snntorch.utils
    snntorch.utils.reset(module)


def build_model(framework: str, task_cfg: TaskConfig, neuron: str = "brf", *,
                generator: Optional[torch.Generator] = None, **kw) -> nn.Module:
    """The paper's network for ``task_cfg`` in ``framework``; ``kw`` goes to the layer (ablations, inits...).

    Args:
        framework: ``"core"``, ``"snntorch"`` or ``"norse"``.
        task_cfg: a :class:`brf_plugins.tasks.TaskConfig` (sizes, inits).
        neuron: ``"brf"``, ``"rf"``, ``"bhrf"``, ``"alif"`` or ``"lif"``.
        generator: random generator for the initialisation (default: the global RNG); the same generator gives
            the same initial network in every framework.
        **kw: e.g. ``divergence_boundary=False``, ``rf_reset="soft"``, ``omega_init=(5, 10)``.
    """
    framework = canonical_framework(framework)
    check_choice("neuron", neuron, MODEL_NEURONS)
    if not isinstance(task_cfg, TaskConfig):
        raise TypeError(f"`task_cfg` must be a TaskConfig (see brf_plugins.train.tasks.resolve_task), got "
                        f"{type(task_cfg).__name__}.")
    if neuron == "lif" and framework != "core":
        if kw:
            raise ValueError(f"neuron='lif' in framework={framework!r} is {framework}'s own LIF network with its "
                             f"defaults; it takes no model options (got {', '.join(sorted(kw))}).")
        return lif_baseline(framework, task_cfg.input_size, task_cfg.hidden_size, task_cfg.output_size,
                            generator=generator)
    if neuron == "lif":
        kw.pop("tau_adp_init", None)
        model = RecurrentSNN.from_task(task_cfg, neuron="alif", generator=generator, alif_beta=0.0, **kw)
        model.hidden.tau_adp.requires_grad_(False)  # unused without adaptation; keeps the BRF's size
        return model
    if framework == "core":
        return RecurrentSNN.from_task(task_cfg, neuron=neuron, generator=generator, **kw)
    builder = _adapter_builder(framework)
    # The adapter translates the package's option names into its framework's (snnTorch: reset_mechanism, ...).
    model = builder(task_cfg, neuron=neuron, generator=generator, **adapter_module(framework).core_options(kw))
    if framework == "snntorch":
        model.register_forward_pre_hook(_snntorch_reset_hook)
    return model


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters (the paper's counts: 1,734 for ECG, 68,874 for S-MNIST, 108,820 for SHD)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def resonator_parameters(model: nn.Module) -> Dict[str, torch.Tensor]:
    """The first ``omega`` and ``b_offset`` tensors (parameters or buffers) of a model's resonator layer,
    detached, as stored (signed); empty for ALIF/LIF models."""
    found = {}
    for name, tensor in list(model.named_parameters()) + list(model.named_buffers()):
        leaf = name.rsplit(".", 1)[-1]
        if leaf in ("omega", "b_offset") and leaf not in found:
            found[leaf] = tensor.detach()
    return found
