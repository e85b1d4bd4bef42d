"""``snntorch.utils.reset`` and snnTorch's other helpers for the neurons of :mod:`snntorch_ext`.

snnTorch finds neurons by ``isinstance`` against its own classes, so importing :mod:`snntorch_ext` installs
(:func:`install_hooks`, idempotent; :func:`uninstall_hooks` restores snnTorch's originals): ``utils.reset(net)``
also clears every :mod:`snntorch_ext` neuron inside ``net``; ``utils._final_layer_check`` (what
:mod:`snntorch.backprop` asks) counts ``(spk, mem)`` for a last layer with ``init_hidden=True, output=True`` and
raises a ``TypeError`` saying what to change otherwise; each snnTorch class's ``detach_hidden`` (truncated BPTT)
detaches our neurons' whole state too; ``export_to_nir`` maps ``LI`` to ``nir.LI`` and raises
:class:`NIRExportError` for the others. A ``reset`` bound before the import (``from snntorch.utils import reset``)
is not reached: :func:`reset` here works regardless.

Example:
    >>> import torch, torch.nn as nn, snntorch as snn
    >>> from snntorch import utils
    >>> from snntorch_ext import BRF
    >>> net = nn.Sequential(nn.Linear(2, 4), BRF(4, init_hidden=True), nn.Linear(4, 2), snn.Leaky(0.9, init_hidden=True))
    >>> _ = net(torch.ones(1, 2))
    >>> utils.reset(net)
    >>> net[1].u.numel()      # cleared: the next step starts from zeros
    0
"""

from __future__ import annotations

import functools

import snntorch as _snn
import snntorch.utils as _snn_utils
from torch import nn

from brf_plugins import functional as F
from brf_plugins.nir import NIRExportError, li_node, refusal

from ._base import StatefulNeuron

__all__ = ["reset", "reset_brf_neurons", "install_reset_hook", "uninstall_reset_hook", "install_hooks",
           "uninstall_hooks", "detach_brf_neurons", "nir_node", "NIRExportError"]

_MARK = "_snntorch_ext_wrapper"


def reset_brf_neurons(net: nn.Module) -> None:
    """Clear (and so detach) the state of every :mod:`snntorch_ext` neuron in ``net``, recursively."""
    for module in net.modules():
        if isinstance(module, StatefulNeuron):
            module.reset_mem()


def _original_reset():
    current = _snn_utils.reset
    return getattr(current, "__wrapped__", current) if getattr(current, _MARK, False) else current


def reset(net: nn.Module) -> None:
    """snnTorch's ``utils.reset(net)`` plus the :mod:`snntorch_ext` neurons anywhere inside ``net``."""
    _original_reset()(net)
    reset_brf_neurons(net)
    _mark_hidden(net)


def install_reset_hook() -> None:
    """Make ``snntorch.utils.reset`` also clear :mod:`snntorch_ext` neurons (done on import; idempotent)."""
    current = _snn_utils.reset
    if getattr(current, _MARK, False):
        return

    @functools.wraps(current)
    def wrapped_reset(net):
        current(net)
        reset_brf_neurons(net)
        _mark_hidden(net)

    wrapped_reset.__doc__ = (current.__doc__ or "") + (
        "\n\n    Wrapped by snntorch_ext: also clears snntorch_ext neurons (BRF, RF, BHRF, ALIF, LI, ...) anywhere "
        "in ``net``.")
    setattr(wrapped_reset, _MARK, True)
    _snn_utils.reset = wrapped_reset


def uninstall_reset_hook() -> None:
    """Restore snnTorch's original ``snntorch.utils.reset``."""
    _snn_utils.reset = _original_reset()


# -- snntorch.backprop -------------------------------------------------------------------------------------------

_HIDDEN_FLAGS = ("is_lapicque", "is_leaky", "is_linearleaky", "is_synaptic", "is_alpha", "is_rleaky", "is_rsynaptic",
                 "is_sconv2dlstm", "is_slstm")
"""The flags ``utils.reset`` sets and ``backprop.TBPTT`` reads to pick the class whose ``detach_hidden`` it calls."""

_SNN_CLASSES = ("Lapicque", "Leaky", "LinearLeaky", "Synaptic", "Alpha", "RLeaky", "RSynaptic", "SConv2dLSTM",
                "SLSTM")


def detach_brf_neurons() -> None:
    """Detach the whole stored state of every :mod:`snntorch_ext` neuron (snnTorch's ``detach_hidden`` is global
    over ``SpikingNeuron.instances`` too)."""
    StatefulNeuron.detach_hidden()


def _has_brf_neurons(net) -> bool:
    return isinstance(net, nn.Module) and any(isinstance(m, StatefulNeuron) for m in net.modules())


def _mark_hidden(net) -> None:
    """After ``utils.reset(net)``: if ``net`` holds our neurons and no snnTorch class was found, mark ``is_leaky``
    so that ``backprop.TBPTT`` calls ``snn.Leaky.detach_hidden()`` (wrapped: it detaches ours too). The flags are
    read only by ``backprop`` and re-cleared by the next ``utils.reset``."""
    if _has_brf_neurons(net) and not any(getattr(_snn_utils, f, False) for f in _HIDDEN_FLAGS):
        _snn_utils.is_leaky = True


def _final_layer_check(original):
    @functools.wraps(original)
    def final_layer_check(net):
        modules = list(net._modules.values())
        last = modules[-1] if modules else None
        if isinstance(last, StatefulNeuron):
            name = type(last).__name__
            if "mem" in last.state_names and not last.mem_style:   # LI: a readout returns the membrane only
                raise TypeError(f"snntorch.backprop needs a last layer that returns (spk, mem); {name} is a "
                                f"readout returning the membrane alone. End the network with a spiking layer "
                                f"(e.g. snntorch_ext.BRF(..., init_hidden=True, output=True)).")
            if not (last.init_hidden and last.output):
                raise TypeError(f"snntorch.backprop needs the last layer to return (spk, mem): build the last "
                                f"{name} with init_hidden=True and output=True.")
            return 2
        return original(net)

    setattr(final_layer_check, _MARK, True)
    return final_layer_check


def _wrap_detach(cls):
    original = cls.__dict__.get("detach_hidden")
    if original is None or getattr(original.__func__, _MARK, False):
        return

    def detach_hidden(klass):
        original.__func__(klass)
        detach_brf_neurons()

    detach_hidden.__doc__ = (original.__func__.__doc__ or "") + "\n\nWrapped by snntorch_ext: also detaches the " \
        "whole state of the snntorch_ext neurons."
    setattr(detach_hidden, _MARK, True)
    detach_hidden.__wrapped__ = original
    setattr(cls, "detach_hidden", classmethod(detach_hidden))


def _unwrap_detach(cls):
    current = cls.__dict__.get("detach_hidden")
    if current is not None and getattr(current.__func__, _MARK, False):
        setattr(cls, "detach_hidden", current.__func__.__wrapped__)


# -- NIR -------------------------------------------------------------------------------------------------------------

NIR_DT = 1e-4
"""The step snnTorch's own NIR export assumes for its discrete-time neurons (``export_nir.py``)."""


def nir_node(module: StatefulNeuron):
    """The NIR node of a :mod:`snntorch_ext` module, or :class:`NIRExportError` saying why there is none: ``LI``
    (``a = exp(-1/tau)``) is ``nir.LI`` stepped with snnTorch's export step ``dt = 1e-4`` (``tau_n = dt/(1-a)``,
    :func:`brf_plugins.nir.li_node`); NIR 1.0 has no node for the others (:func:`brf_plugins.nir.refusal`)."""
    from .neurons import LI
    if isinstance(module, LI):
        alpha = F.li_alpha(module.tau_mem.detach()).cpu().double().numpy()
        return li_node(NIR_DT / (1.0 - alpha))
    raise NIRExportError(f"{type(module).__name__} cannot be exported to NIR: "
                         f"{refusal(module.neuron_config().kind)}.")


def _extract_module(original):
    @functools.wraps(original)
    def extract(module):
        if isinstance(module, StatefulNeuron):
            return nir_node(module)
        return original(module)

    setattr(extract, _MARK, True)
    return extract


def _export_nir_module():
    try:
        import snntorch.export_nir as export_nir
    except ImportError:   # nir / nirtorch not installed: nothing to hook
        return None
    return export_nir


def install_hooks() -> None:
    """Install every hook of this module (done on import; idempotent)."""
    install_reset_hook()
    if not getattr(_snn_utils._final_layer_check, _MARK, False):
        _snn_utils._final_layer_check = _final_layer_check(_snn_utils._final_layer_check)
    for name in _SNN_CLASSES:
        if hasattr(_snn, name):
            _wrap_detach(getattr(_snn, name))
    export_nir = _export_nir_module()
    if export_nir is not None and not getattr(export_nir._extract_snntorch_module, _MARK, False):
        export_nir._extract_snntorch_module = _extract_module(export_nir._extract_snntorch_module)


def uninstall_hooks() -> None:
    """Restore snnTorch's originals."""
    uninstall_reset_hook()
    if getattr(_snn_utils._final_layer_check, _MARK, False):
        _snn_utils._final_layer_check = _snn_utils._final_layer_check.__wrapped__
    for name in _SNN_CLASSES:
        if hasattr(_snn, name):
            _unwrap_detach(getattr(_snn, name))
    export_nir = _export_nir_module()
    if export_nir is not None and getattr(export_nir._extract_snntorch_module, _MARK, False):
        export_nir._extract_snntorch_module = export_nir._extract_snntorch_module.__wrapped__
