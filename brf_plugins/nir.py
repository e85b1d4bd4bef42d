r"""What NIR (1.0) can express of this package's neurons, for both adapters' exporters.

The readout (:func:`brf_plugins.functional.li_step`, :math:`o_t = \alpha o_{t-1} + (1-\alpha) I_t`) is NIR's
leaky integrator ``nir.LI`` (:func:`li_node`; each framework's exporter picks the time constant for its step
convention). The resonators and ALIF have no NIR node: :func:`refusal` says why, and the exporters raise
:class:`NIRExportError` with it instead of writing a ``None`` node.

Example:
    >>> from brf_plugins.nir import refusal
    >>> refusal("alif").startswith("NIR has no adaptive-threshold node")
    True
"""

from __future__ import annotations

import numpy as np

__all__ = ["NIRExportError", "refusal", "li_node"]


class NIRExportError(NotImplementedError):
    """A module NIR cannot express (the message says which and why); raised instead of writing a ``None`` node."""


_MEMBRANE = {"brf": "complex (a damped oscillator, second order)", "rf": "complex (a damped oscillator, second order)",
             "bhrf": "a harmonic oscillator (second order)"}
_EXTRA = {"brf": ", with a divergence boundary, a refractory threshold and a smooth reset NIR has no counterpart for",
          "bhrf": ", with a refractory threshold NIR has no counterpart for"}


def refusal(kind: str) -> str:
    """Why a neuron of ``kind`` (``"brf"``, ``"rf"``, ``"bhrf"``, ``"alif"``) has no NIR node."""
    if kind == "alif":
        return ("NIR has no adaptive-threshold node (NIR 1.0 has no neuron with an adaptive threshold: its LIF and "
                "CubaLIF have a fixed one), so the ALIF neuron's adaptation a and threshold theta_0 + beta*a cannot "
                "be written")
    return (f"NIR has no resonator node (NIR 1.0 has no neuron with a second-order membrane: its LIF, CubaLIF, LI, "
            f"IF and integrators have a real, first-order one), while a {kind.upper()} neuron's membrane is "
            f"{_MEMBRANE[kind]}{_EXTRA.get(kind, '')}. An approximation from NIR primitives would not compute what "
            f"the trained network computes, so nothing is written. Export the parts around it (Linear, Conv, LI), or "
            f"keep the model in PyTorch")


def li_node(tau):
    """``nir.LI`` with time constants ``tau`` (seconds, an array), ``r = 1`` and ``v_leak = 0``."""
    import nir

    tau = np.asarray(tau)
    return nir.LI(tau=tau, r=np.ones_like(tau), v_leak=np.zeros_like(tau))
