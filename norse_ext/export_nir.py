r"""NIR export of Norse models that contain this package's modules: what NIR can express, and a clear error for
what it cannot. Never a ``None`` node.

Norse's ``norse.torch.to_nir(module, sample_data, model_name="norse", dt=0.001)`` maps each submodule it knows
(``Linear``, ``Conv2d``, ``LIFCell``, ``LIFBoxCell``, ``LIBoxCell``, ``IAFCell``) to a NIR node and writes
``None`` for anything else, silently: the graph then has holes that no NIR consumer can run. This module

* gives :func:`to_nir` (same signature as Norse's) which maps this package's modules, delegates the rest to
  Norse's exporter, and raises :class:`NIRExportError` instead of writing a ``None`` node, for any module;
* hooks the same mapping of *this package's* modules into Norse's own ``to_nir`` at import (it looks its mapping
  function up at call time), so ``norse.torch.to_nir`` raises for a BRF layer instead of writing ``None`` there
  too; what Norse does with other modules is left as it is.

What NIR (1.0) expresses and what it does not:

* :class:`norse_ext.LIReadoutCell` (the paper's readout :math:`o_t = \alpha o_{t-1} + (1-\alpha) I_t`,
  :math:`\alpha = e^{-1/|\tau|}`, :math:`\tau` in steps) is ``nir.LI(tau=|tau| * dt, r=1, v_leak=0)``: NIR's
  :math:`\tau\dot v = (v_{leak} - v) + R\,I`, whose exact solution over one step ``dt`` with the input held is
  this update. ``dt`` is the seconds per step of the export (Norse's default 0.001).
* the resonators (BRF, RF, BHRF cells and layers) have no NIR node: NIR's neurons are LIF, CubaLIF, LI, IF and
  integrators with real, first-order membranes; a resonator's membrane is complex (second order), and the BRF's
  divergence boundary, refractory threshold and smooth reset have no NIR counterpart. An approximation from NIR
  primitives would not compute what the trained network computes, so the export refuses.
* ALIF has no node either (NIR has no adaptive threshold), nor :class:`norse_ext.LIReadoutLinearCell` as one
  module (write it as ``torch.nn.Linear`` followed by ``LIReadoutCell``: ``Affine`` then ``LI``), nor the recurrent
  layers' built-in recurrence.

Example:
    >>> import torch, norse.torch as norse, norse_ext
    >>> model = norse.SequentialState(torch.nn.Linear(4, 3), norse_ext.LIReadoutCell(3))
    >>> graph = norse_ext.to_nir(model, torch.rand(1, 4))
    >>> sorted(type(n).__name__ for n in graph.nodes.values())
    ['Affine', 'Input', 'LI', 'Output']
    >>> norse_ext.to_nir(norse.SequentialState(torch.nn.Linear(4, 3), norse_ext.BRFCell(3)), torch.rand(1, 4))
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    norse_ext.export_nir.NIRExportError: BRFCell cannot be exported to NIR: NIR has no resonator node: ...
"""

from __future__ import annotations

import functools
import warnings
from typing import Optional

import torch

from . import module as modules

__all__ = ["NIRExportError", "to_nir", "nir_node"]


class NIRExportError(NotImplementedError):
    """A module NIR cannot express (the message says which and why); raised instead of writing a ``None`` node."""


_RESONATOR = ("NIR has no resonator node: its neurons (LIF, CubaLIF, LI, IF, integrators) have a real, first-order "
              "membrane, while a {title} neuron's membrane is {membrane}{extra}. An approximation from NIR primitives "
              "would not compute what this network computes, so nothing is written. Export the parts around it, or "
              "keep the model in PyTorch")
_WHY = {
    "brf": dict(title="BRF", membrane="complex (a damped oscillator, second order)",
                extra=", with a divergence boundary, a refractory threshold and a smooth reset NIR has no counterpart "
                      "for"),
    "rf": dict(title="RF", membrane="complex (a damped oscillator, second order)", extra=""),
    "bhrf": dict(title="BHRF", membrane="a harmonic oscillator (second order)",
                 extra=", with a refractory threshold NIR has no counterpart for"),
}


def _reason(module: torch.nn.Module) -> Optional[str]:
    """Why ``module`` (one of this package's) has no NIR node; ``None`` if it has one or is not ours."""
    kind = getattr(getattr(module, "_kind", None), "name", None)
    if isinstance(module, modules.LIReadoutLinearCell):
        return ("NIR has no node for a weighted leaky-integrator readout in one module; write it as torch.nn.Linear "
                "followed by norse_ext.LIReadoutCell (exported as Affine then LI)")
    if kind in _WHY:
        return _RESONATOR.format(**_WHY[kind])
    if kind == "alif":
        return ("NIR has no adaptive-threshold neuron (its LIF and CubaLIF have a fixed threshold), so the ALIF "
                "neuron's adaptation cannot be written")
    return None


def nir_node(module: torch.nn.Module, dt: float = 0.001):
    """The NIR node of one of this package's modules; :class:`NIRExportError` where NIR cannot express it;
    ``None`` for modules that are not this package's (Norse's exporter maps those)."""
    import nir

    if isinstance(module, modules.LIReadoutCell):
        if module.has_uninitialized_params():
            raise NIRExportError("LIReadoutCell has not been called yet (its size is inferred on the first call); "
                                 "run one forward pass before exporting.")
        tau = module.tau_mem.detach().abs().cpu()
        return nir.LI(tau=(tau * dt).numpy(), r=torch.ones_like(tau).numpy(), v_leak=torch.zeros_like(tau).numpy())
    reason = _reason(module)
    if reason is not None:
        raise NIRExportError(f"{type(module).__name__} cannot be exported to NIR: {reason}.")
    return None


def _is_ours(module) -> bool:
    return type(module).__module__ == modules.__name__


def _norse_mapping(norse_map, module: torch.nn.Module, dt: float = 0.001):
    """Norse's mapping with this package's modules added (installed into ``norse.torch.utils.export_nir``)."""
    if _is_ours(module):
        return nir_node(module, dt)
    return norse_map(module, dt=dt)


def _strict_mapping(norse_map, module: torch.nn.Module, dt: float = 0.001):
    node = _norse_mapping(norse_map, module, dt)
    if node is None:
        raise NIRExportError(
            f"{type(module).__name__} cannot be exported to NIR: neither norse_ext nor Norse's exporter has a node "
            f"for it (Norse's knows Linear, Conv2d, LIFCell, LIFBoxCell, LIBoxCell, IAFCell), and a None node would "
            f"leave a hole in the graph that Norse's own to_nir writes silently. Use modules NIR can express, or "
            f"apply it outside the exported model.")
    return node


def _original_norse_map():
    from norse.torch.utils import export_nir as norse_export
    current = norse_export._extract_norse_module
    return getattr(current, "_norse_original", current)


def to_nir(module: torch.nn.Module, sample_data: torch.Tensor, model_name: str = "norse", dt: float = 0.001):
    """``norse.torch.to_nir`` that knows this package's modules and never writes a ``None`` node.

    Parameters:
        module: the model (e.g. a ``norse.torch.SequentialState``). sample_data: one input, as for Norse's.
        model_name: name of the graph. dt: seconds per step, for the time constants (Norse's default 0.001).

    Returns:
        the ``nir.NIRGraph``; every node is a real NIR node.

    Raises:
        NIRExportError: a module NIR cannot express (a resonator, ALIF, ...), with why.
    """
    import nirtorch

    mapping = functools.partial(_strict_mapping, _original_norse_map(), dt=dt)
    with warnings.catch_warnings():   # Norse's exporter uses nirtorch's older graph extraction, as we do
        warnings.filterwarnings("ignore", message="nirtorch.extract_nir_graph", category=DeprecationWarning)
        graph = nirtorch.extract_nir_graph(module, mapping, sample_data, model_name=model_name)
    empty = [name for name, node in graph.nodes.items() if node is None]
    if empty:   # the mapping raises first; this guards the invariant against exporter changes
        raise NIRExportError(f"the exported graph has empty nodes {empty}; nothing is returned.")
    return graph


def install_into_norse() -> bool:
    """Make Norse's own ``to_nir`` map this package's modules (an error for those NIR cannot express, instead of a
    ``None`` node). Idempotent; ``False`` when Norse's exporter (``nir``, ``nirtorch``) is not installed."""
    try:
        from norse.torch.utils import export_nir as norse_export
    except ImportError:
        return False
    current = norse_export._extract_norse_module
    if getattr(current, "_norse_original", None) is not None:
        return True
    patched = functools.partial(_norse_mapping, current)
    patched._norse_original = current
    norse_export._extract_norse_module = patched
    return True
