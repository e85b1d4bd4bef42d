"""Import the paper authors' released checkpoints (AdaptiveAILab/brf-neurons) as :class:`RecurrentSNN` models.

A released file is a ``torch.save`` dict ``{epoch, model_state_dict, optimizer_state_dict, loss}``; its state dict
uses the keys of :class:`brf_plugins.network.RecurrentSNN` (``hidden.linear.weight`` of shape ``(h, m + h)``,
``hidden.omega``/``hidden.b_offset`` or ``hidden.tau_mem``/``hidden.tau_adp``, ``out.linear.weight``,
``out.tau_mem``), plus an all-ones ``hidden.linear.mask`` that is ignored.

BRF and vanilla RF checkpoints have identical keys, so the neuron kind comes from the ``neuron`` argument or, if
omitted, from the file name (``*_rf*`` -> RF, ``*_alif*`` -> ALIF, else BRF).

Example:
    >>> from brf_plugins.checkpoints import load_authors_checkpoint
    >>> net = load_authors_checkpoint("../shared/data/reference_checkpoints/ecg_brf.pt")   # doctest: +SKIP
    >>> net.hidden.neuron, net.hidden.input_size, net.hidden.hidden_size                  # doctest: +SKIP
    ('brf', 4, 36)
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, Optional, Tuple, Union

import torch

from ._checks import check_choice, check_dt
from .data._files import DataCorruptError, DataMissingError
from .network import IGNORED_KEYS, NEURONS, RecurrentSNN

__all__ = ["read_state_dict", "infer_neuron", "infer_task", "state_dict_shapes", "inspect_authors_checkpoint",
           "load_authors_checkpoint", "network_from_checkpoint"]



def read_state_dict(path: Union[str, Path]) -> Dict[str, torch.Tensor]:
    """The model state dict of a released checkpoint (or of a bare state dict file), without ignored keys."""
    path = Path(path)
    if not path.is_file():
        raise DataMissingError(f"checkpoint {path} not found. The authors' models are in the brf-neurons "
                               f"repository (experiments/*/models/), or in shared/data/reference_checkpoints.")
    try:
        blob = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as err:  # pickle, zip and weights-only errors all mean: not a checkpoint we can read
        raise DataCorruptError(f"{path} is not a readable torch checkpoint ({type(err).__name__}: {err}).") from err
    state = blob.get("model_state_dict", blob) if isinstance(blob, dict) else None
    if not isinstance(state, dict) or "hidden.linear.weight" not in state:
        raise DataCorruptError(f"{path} is not a brf-neurons model checkpoint (no 'hidden.linear.weight').")
    return {k: v for k, v in state.items() if k not in IGNORED_KEYS}


def infer_neuron(path: Union[str, Path], state: Dict[str, torch.Tensor]) -> str:
    if "hidden.tau_adp" in state:
        return "alif"
    stem = Path(path).stem.lower()
    return "rf" if re.search(r"(^|_)(v?rf)(_|$)", stem) else "brf"


def infer_task(path: Union[str, Path]) -> Optional[str]:
    """``smnist``/``psmnist``/``ecg``/``shd`` from a file name, if it says."""
    stem = Path(path).stem.lower()
    for task in ("psmnist", "smnist", "ecg", "shd"):
        if stem.startswith(task) or f"_{task}" in stem:
            return task
    return None


def state_dict_shapes(state: Dict[str, torch.Tensor]) -> Tuple[int, int, int]:
    """``(input_size, hidden_size, output_size)`` of a paper network's state dict."""
    hidden, total = state["hidden.linear.weight"].shape
    output = state["out.linear.weight"].shape[0]
    return total - hidden, hidden, output


def inspect_authors_checkpoint(path: Union[str, Path], neuron: Optional[str] = None, *, dt: float = 0.01
                               ) -> Tuple[Dict[str, torch.Tensor], str, Tuple[int, int, int]]:
    """Read and check a released checkpoint: ``(state_dict, neuron, (input_size, hidden_size, output_size))``.

    ``neuron`` is checked against the file (ALIF keys or not), or inferred when omitted; resonator frequencies
    must stay below ``1/dt``. The framework adapters build their own networks from this.

    Raises:
        DataMissingError (a FileNotFoundError): no file at ``path``.
        DataCorruptError (a ValueError): not a readable checkpoint, not a brf-neurons model, or a model of
            another neuron kind than ``neuron``.
        ValueError: unknown ``neuron``, ``dt`` not > 0, or trained frequencies at or above ``1/dt``.
    """
    dt = check_dt(dt)
    state = read_state_dict(path)
    neuron = check_choice("neuron", neuron, NEURONS) if neuron is not None else infer_neuron(path, state)
    required = ["hidden.linear.weight", "out.linear.weight", "out.tau_mem"]
    required += ["hidden.tau_mem", "hidden.tau_adp"] if "hidden.tau_adp" in state else ["hidden.omega", "hidden.b_offset"]
    missing = [k for k in required if k not in state]
    if missing:
        raise DataCorruptError(f"{path} lacks {', '.join(missing)}: not a complete brf-neurons model.")
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor) or
           (torch.is_floating_point(v) and not bool(torch.isfinite(v).all()))]
    if bad:
        raise DataCorruptError(f"{path}: {', '.join(bad)} hold NaN/inf or are not tensors (a diverged run?).")
    if state["hidden.linear.weight"].dim() != 2 or state["out.linear.weight"].dim() != 2:
        raise DataCorruptError(f"{path}: the linear weights are not matrices.")
    if (neuron == "alif") != ("hidden.tau_adp" in state):
        raise DataCorruptError(f"{path} holds {'an ALIF' if 'hidden.tau_adp' in state else 'a resonator'} model, "
                               f"but neuron={neuron!r} was asked for.")
    if neuron != "alif":
        limit = 1.0 / dt
        largest = float(state["hidden.omega"].abs().max())
        if largest >= limit:
            raise ValueError(f"{path}: trained |omega| reaches {largest:g} >= 1/dt = {limit:g}; pass a smaller dt.")
    return state, neuron, state_dict_shapes(state)


def network_from_checkpoint(build, path: Union[str, Path], neuron: Optional[str] = None, *, dt: float = 0.01,
                            map_location: Union[str, torch.device] = "cpu", **kwargs):
    """``build(m, h, C, neuron, dt=dt, **kwargs)`` (a :class:`brf_plugins.network.PaperNetwork` class) holding
    the released checkpoint at ``path``, loaded strictly under the authors' keys; the core's and both adapters'
    loaders are this function."""
    state, neuron, (m, h, c) = inspect_authors_checkpoint(path, neuron, dt=dt)
    if neuron != "alif":  # placeholders, overwritten by the checkpoint
        kwargs.setdefault("omega_init", 1.0)
        kwargs.setdefault("b_offset_init", 1.0)
    model = build(m, h, c, neuron, dt=dt, **kwargs)
    model.load_authors_state_dict(state)
    return model.to(map_location)


def load_authors_checkpoint(path: Union[str, Path], neuron: Optional[str] = None, *, dt: float = 0.01,
                            map_location: Union[str, torch.device] = "cpu", **layer_kwargs) -> RecurrentSNN:
    """Build a :class:`RecurrentSNN` from a released checkpoint and load its weights (strictly).

    Args:
        path: the ``.pt`` file.
        neuron: ``"brf"``, ``"rf"``, ``"bhrf"`` or ``"alif"``; inferred from the keys and file name if omitted.
        dt: the resonators' step (0.01 in every released model).
        **layer_kwargs: extra :class:`RecurrentLayer` options (e.g. ablations, ``spike_fn``).
    """
    return network_from_checkpoint(RecurrentSNN, path, neuron, dt=dt, map_location=map_location, **layer_kwargs)
