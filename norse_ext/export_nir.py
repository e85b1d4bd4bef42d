r"""NIR export of Norse models holding this package's modules; never a ``None`` node.

Norse's ``norse.torch.to_nir`` writes ``None`` for every module it does not know. :func:`to_nir` (its signature)
maps this package's modules, delegates the rest to Norse's exporter and raises :class:`NIRExportError` instead of
writing ``None``; :func:`install_into_norse` (run on import) makes Norse's own ``to_nir`` map (or refuse) this
package's modules too. :class:`norse_ext.LIReadoutCell` becomes ``nir.LI(tau=|tau| * dt)``; the resonators, ALIF,
:class:`norse_ext.LIReadoutLinearCell` (write ``Linear`` + ``LIReadoutCell``) and the recurrent layers have no NIR
node (:mod:`brf_plugins.nir` says why).

Example:
    >>> import torch, norse.torch as norse, norse_ext
    >>> model = norse.SequentialState(torch.nn.Linear(4, 3), norse_ext.LIReadoutCell(3))
    >>> graph = norse_ext.to_nir(model, torch.rand(1, 4))
    >>> sorted(type(n).__name__ for n in graph.nodes.values())
    ['Affine', 'Input', 'LI', 'Output']
    >>> norse_ext.to_nir(norse.SequentialState(torch.nn.Linear(4, 3), norse_ext.BRFCell(3)), torch.rand(1, 4))
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    brf_plugins.nir.NIRExportError: BRFCell cannot be exported to NIR: NIR has no resonator node ...
"""

from __future__ import annotations

import functools
import warnings
from typing import Optional

import torch

from brf_plugins.nir import NIRExportError, li_node, refusal

from . import module as modules

__all__ = ["NIRExportError", "to_nir", "nir_node"]


def nir_node(module: torch.nn.Module, dt: float = 0.001):
    """The NIR node of one of this package's modules (:class:`NIRExportError` where NIR cannot express it, ``None``
    for other modules): the readout is ``nir.LI(tau=|tau| * dt)``, the exact solution of NIR's LI over a step
    ``dt`` with the input held; the neurons are refused with :func:`brf_plugins.nir.refusal`."""
    if isinstance(module, modules.LIReadoutCell):
        if module.has_uninitialized_params():
            raise NIRExportError("LIReadoutCell has not been called yet (its size is inferred on the first call); "
                                 "run one forward pass before exporting.")
        return li_node((module.tau_mem.detach().abs().cpu() * dt).numpy())
    if isinstance(module, modules.LIReadoutLinearCell):
        reason = ("NIR has no node for a weighted leaky-integrator readout in one module; write it as "
                  "torch.nn.Linear followed by norse_ext.LIReadoutCell (exported as Affine then LI)")
    elif getattr(module, "_kind", None) is not None:
        reason = refusal(module._kind.name)
    else:
        return None
    raise NIRExportError(f"{type(module).__name__} cannot be exported to NIR: {reason}.")


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
