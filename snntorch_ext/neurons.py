r"""Feed-forward BRF, RF, BHRF, ALIF and LI neurons as native snnTorch neurons: each update is the core step of
its kind (:func:`brf_plugins.functional.brf_step`, ``rf_step``, ``bhrf_step``, ``alif_step``, ``li_step``) through
:func:`brf_plugins.neurons.neuron_step`; the state protocol is :mod:`snntorch_ext._base`'s.

The resonators multiply their input by ``input_gain``, by default :func:`brf_plugins.init.default_input_gain`
:math:`= 1/\delta`, so a network with ``snn.Leaky`` swapped for ``BRF`` trains at snnTorch's learning rates;
``input_gain=1.0`` is the spec verbatim (the paper network and checkpoints use it).

Example:
    >>> import torch
    >>> from snntorch_ext import BRF
    >>> brf = BRF(3, omega=(5.0, 10.0), b_offset=(0.0, 1.0))
    >>> u, v, q = brf.init_brf()
    >>> for step in range(20):
    ...     spk, u, v, q = brf(torch.full((2, 3), 0.5), u, v, q)
    >>> spk.shape, bool(q.gt(0).any())
    (torch.Size([2, 3]), True)
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import torch

from brf_plugins import functional as F
from brf_plugins._checks import check_bool, check_dt, check_finite_float, check_unit_interval
from brf_plugins.functional import ALIFState
from brf_plugins.neurons import KINDS, BHRFFeedForwardState, BRFFeedForwardState, NeuronConfig, RFFeedForwardState
from brf_plugins.init import Init, check_brf_damping, default_input_gain, parameter_values

from ._base import StatefulNeuron, check_size, reject_unsupported

__all__ = ["BRF", "RF", "BHRF", "ALIF", "LI", "RF_RESET_MECHANISMS", "LIState"]


class LIState(NamedTuple):
    """State of :class:`LI`: the membrane ``mem``."""

    mem: torch.Tensor

RF_RESET_MECHANISMS = {"none": "none", "subtract": "soft", "zero": "hard"}
"""snnTorch's ``reset_mechanism`` names for RF and the spec's reset they select (paper A.1)."""

_RESONATOR_RESET_HELP = ("{name}'s reset is built in: the refractory variable q raises the threshold and the "
                         "damping after every spike and decays by gamma (the smooth reset, spec 1.1). Use RF for "
                         "'subtract' or 'zero' resets.")

_RESONATOR_ARGS = """
        num_neurons: number of neurons (the input's last dimension); omit it to infer it from the first input.
        omega, b_offset: initial frequencies (rad/s, ``|omega| < 1/dt``) and damping offsets ``b'``: a number, a
            ``(low, high)`` uniform range or a ``(num_neurons,)`` tensor; defaults
            :data:`brf_plugins.neurons.KINDS`'s, as Norse's (BRF: the drop-in :data:`DROPIN_OMEGA`,
            :data:`DROPIN_B_OFFSET`; RF ``(5, 10)``, ``(0, 1)``; BHRF ``(10, 50)``, ``(1, 6)``).
        dt: integration step :math:`\\delta` (0.01). threshold: :math:`\\vartheta` (1.0), number or tensor.
        input_gain: factor on the input current; default ``1/dt`` (module docstring), ``1.0`` the spec verbatim.
        spike_grad, surrogate_disable, init_hidden, output, learn_threshold, graded_spikes_factor,
            learn_graded_spikes_factor: snnTorch's (default surrogate :func:`snntorch_ext.surrogate.double_gaussian`).
        per_channel: dimension 1 indexes the neurons (``(B, C, ...)`` feature maps), parameters per channel.
        learn_omega, learn_b_offset: train them (default True). generator: for the random initialisation."""


DROPIN_OMEGA = (KINDS["brf"].default_init["omega"].low, KINDS["brf"].default_init["omega"].high)
DROPIN_B_OFFSET = (KINDS["brf"].default_init["b_offset"].low, KINDS["brf"].default_init["b_offset"].high)
"""The drop-in defaults of :class:`BRF` / ``RBRF`` (omega and b' uniform ranges), measured by
``benchmarks/dropin_defaults.py`` on snnTorch's tutorials 5 and 6 and a recurrent regression at each tutorial's
learning rate (``benchmarks/results/dropin_defaults.md``); the paper's networks pass the paper's values."""


class _MembraneAlias:
    """``.mem``: snnTorch's name of the membrane that is thresholded (``u``), readable and settable."""

    @property
    def mem(self) -> torch.Tensor:
        return self.u

    @mem.setter
    def mem(self, value: torch.Tensor) -> None:
        self.u = value


class _Resonator(_MembraneAlias, StatefulNeuron):
    """Shared constructor of RF, BRF and BHRF: per-neuron omega and b', dt, input gain."""

    default_reset = "none"

    def __init__(self, num_neurons: Optional[int] = None, omega: Init = KINDS["rf"].default_init["omega"],
                 b_offset: Init = KINDS["rf"].default_init["b_offset"], *,
                 dt: float = F.DEFAULT_DT, threshold=F.DEFAULT_THETA, input_gain: Optional[float] = None,
                 spike_grad=None, surrogate_disable: bool = False, init_hidden: bool = False, output: bool = False,
                 reset_mechanism: Optional[str] = None, learn_omega: bool = True, learn_b_offset: bool = True,
                 learn_threshold: bool = False, graded_spikes_factor=1.0, learn_graded_spikes_factor: bool = False,
                 per_channel: bool = False, generator: Optional[torch.Generator] = None, **unsupported):
        reject_unsupported(type(self), unsupported)
        num_neurons = check_size(type(self), num_neurons, omega, b_offset, threshold)
        dt = check_dt(dt)
        super().__init__(num_neurons, threshold=threshold, spike_grad=spike_grad,
                         surrogate_disable=surrogate_disable, init_hidden=init_hidden, output=output,
                         reset_mechanism=self.default_reset if reset_mechanism is None else reset_mechanism,
                         learn_threshold=learn_threshold, graded_spikes_factor=graded_spikes_factor,
                         learn_graded_spikes_factor=learn_graded_spikes_factor,
                         input_gain=default_input_gain(dt) if input_gain is None else input_gain,
                         per_channel=per_channel)
        self.dt = dt
        for name, init, learn in (("omega", omega, learn_omega), ("b_offset", b_offset, learn_b_offset)):
            if self.num_neurons is None:   # check the spec now; the draws happen on the first input
                parameter_values(name, 1, init.flatten()[:1] if isinstance(init, torch.Tensor) else init, dt=dt)
            self._register(name, init, learn, generator=generator, dt=dt)

    def neuron_parameters(self) -> tuple:
        return self.omega, self.b_offset

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, dt={self.dt:g}"


class _Refractory(_Resonator):
    """The resonators with the refractory variable ``q`` (BRF, BHRF): state ``(u, v, q)``, its decay ``gamma``,
    no reset but the built-in one."""

    state_names = ("u", "v", "q")
    mem_style = ("u",)
    reset_choices = ("none",)

    def __init__(self, num_neurons: Optional[int] = None, omega: Init = KINDS["bhrf"].default_init["omega"],
                 b_offset: Init = KINDS["bhrf"].default_init["b_offset"], *,
                 gamma: float = F.DEFAULT_GAMMA, **kwargs):
        super().__init__(num_neurons, omega, b_offset, **kwargs)
        self.gamma = check_unit_interval("gamma", gamma)  # q grows without bound at gamma >= 1


class BRF(_Refractory):
    __doc__ = r"""Balanced resonate-and-fire neuron (spec 1.1) as an snnTorch neuron:
    :func:`brf_plugins.functional.brf_step` on :math:`I_t = g\,x_t`, :math:`z_t = H(u_t - \vartheta - q_{t-1})`,
    :math:`q_t = \gamma q_{t-1} + z_t`.

    The refractory ``q`` is the reset (``reset_mechanism='none'`` only). State ``(u, v, q)``: ``spk, u, v, q =
    brf(cur, u, v, q)``, packed :class:`~brf_plugins.neurons.BRFFeedForwardState`, or ``spk, mem = brf(cur, mem)``
    (:mod:`snntorch_ext._base`).

    Args:""" + _RESONATOR_ARGS + r"""
        gamma: decay of ``q`` (0.9). divergence_boundary, refractory, smooth_reset: ablations (all True).

    Example:
        >>> import torch, torch.nn as nn
        >>> from snntorch import utils
        >>> from snntorch_ext import BRF
        >>> net = nn.Sequential(nn.Linear(4, 16), BRF(16, init_hidden=True), nn.Linear(16, 2),
        ...                     BRF(2, init_hidden=True, output=True))
        >>> utils.reset(net)      # clears the BRF states too
        >>> for step in range(10):
        ...     spk, mem = net(torch.rand(8, 4))     # snnTorch's output=True convention
        >>> spk.shape, net[3].mem is mem, net[3].q.shape
        (torch.Size([8, 2]), True, torch.Size([8, 2]))
    """

    State = BRFFeedForwardState
    reset_help = _RESONATOR_RESET_HELP.format(name="BRF")

    def __init__(self, num_neurons: Optional[int] = None, omega: Init = DROPIN_OMEGA, b_offset: Init = DROPIN_B_OFFSET, *,
                 divergence_boundary: bool = True, refractory: bool = True, smooth_reset: bool = True, **kwargs):
        super().__init__(num_neurons, omega, b_offset, **kwargs)
        if not self.is_lazy:
            check_brf_damping(self.omega, self.b_offset, self.dt)
        self.ablation = dict(divergence_boundary=check_bool("divergence_boundary", divergence_boundary),
                             refractory=check_bool("refractory", refractory),
                             smooth_reset=check_bool("smooth_reset", smooth_reset))

    def _after_materialize(self) -> None:
        super()._after_materialize()
        check_brf_damping(self.omega, self.b_offset, self.dt)

    def neuron_config(self) -> NeuronConfig:
        return NeuronConfig("brf", dt=self.dt, theta=self._theta(), gamma=self.gamma, spike_fn=self._spike_fn(),
                            input_gain=self.input_gain, **self.ablation)

    def init_brf(self):
        """Clear the state and return it as ``(u, v, q)`` (empty tensors, meaning zeros), snnTorch-style."""
        return self.reset_mem()

    def extra_repr(self) -> str:
        extra = super().extra_repr()
        if not all(self.ablation.values()):
            extra += ", " + ", ".join(f"{k}={v}" for k, v in self.ablation.items())
        return extra


class RF(_Resonator):
    __doc__ = r"""Izhikevich resonate-and-fire neuron (spec 1.2) as an snnTorch neuron:
    :func:`brf_plugins.functional.rf_step`, :math:`U_t = U_{t-1} + \delta((-|b'| + i\omega) U_{t-1} + I_t)`,
    :math:`z_t = H(u_t - \vartheta)`.

    ``reset_mechanism``: ``'none'`` (default), ``'subtract'`` (soft) or ``'zero'`` (hard), settable later.
    State ``(u, v)``.

    Args:""" + _RESONATOR_ARGS + r"""

    Example:
        >>> import torch
        >>> from snntorch_ext import RF
        >>> spk, u, v = RF(3, reset_mechanism="zero")(torch.ones(2, 3))
        >>> spk.shape, v.shape
        (torch.Size([2, 3]), torch.Size([2, 3]))
    """

    state_names = ("u", "v")
    mem_style = ("u",)
    State = RFFeedForwardState
    reset_choices = tuple(RF_RESET_MECHANISMS)

    def neuron_config(self) -> NeuronConfig:
        return NeuronConfig("rf", dt=self.dt, theta=self._theta(), spike_fn=self._spike_fn(),
                            input_gain=self.input_gain, reset=RF_RESET_MECHANISMS[self.reset_mechanism])

    def init_rf(self):
        """Clear the state and return it as ``(u, v)`` (empty tensors, meaning zeros)."""
        return self.reset_mem()

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, reset_mechanism={self.reset_mechanism!r}"


class BHRF(_Refractory):
    __doc__ = r"""Balanced harmonic resonate-and-fire neuron (spec 1.4) as an snnTorch neuron:
    :func:`brf_plugins.functional.bhrf_step`, :math:`u_t = u_{t-1} + \delta I_t - 2\delta b_t u_{t-1} -
    \delta\omega^2 v_t`, :math:`z_t = H(u_t - \vartheta - q_{t-1})`.

    ``variant``: ``"code"`` (default), ``"paper"`` or ``"explicit"`` (see the core). State ``(u, v, q)``, ``u`` the
    velocity (it spikes); the reset is ``q`` (``reset_mechanism='none'``).

    Args:""" + _RESONATOR_ARGS + r"""
        gamma: decay of ``q`` (0.9).

    Example:
        >>> import torch
        >>> from snntorch_ext import BHRF
        >>> spk, u, v, q = BHRF(3, variant="paper")(torch.ones(2, 3))
        >>> spk.shape
        torch.Size([2, 3])
    """

    State = BHRFFeedForwardState
    reset_help = _RESONATOR_RESET_HELP.format(name="BHRF")

    def __init__(self, num_neurons: Optional[int] = None, omega: Init = KINDS["bhrf"].default_init["omega"],
                 b_offset: Init = KINDS["bhrf"].default_init["b_offset"], *,
                 variant: str = "code", **kwargs):
        super().__init__(num_neurons, omega, b_offset, **kwargs)
        if variant not in F.BHRF_VARIANTS:
            raise ValueError(f"`variant` must be one of {', '.join(repr(c) for c in F.BHRF_VARIANTS)}; "
                             f"got {variant!r}.")
        self.variant = variant

    def neuron_config(self) -> NeuronConfig:
        return NeuronConfig("bhrf", dt=self.dt, theta=self._theta(), gamma=self.gamma, spike_fn=self._spike_fn(),
                            input_gain=self.input_gain, variant=self.variant)

    def init_bhrf(self):
        """Clear the state and return it as ``(u, v, q)`` (empty tensors, meaning zeros)."""
        return self.reset_mem()

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, variant={self.variant!r}"


class ALIF(_MembraneAlias, StatefulNeuron):
    r"""Adaptive LIF neuron, the paper's baseline (spec 1.5): :func:`brf_plugins.functional.alif_step`,
    :math:`u'_t = \alpha u_{t-1} + (1-\alpha) I_t`, :math:`z_t = H(u'_t - \vartheta_0 - \beta a_t)`.

    The adaptation reads the previous spikes, a state as in ``snn.RLeaky``: ``spk, u, a = alif(cur, spk, u, a)``.

    Args:
        num_neurons: number of neurons. tau_mem, tau_adp: time constants in steps, ``(mean, std)`` normal draws
            (defaults ``(20, 5)``, ``(200, 50)``), a number or a tensor. threshold: :math:`\vartheta_0` (0.01).
        adaptation: :math:`\beta` (1.8). input_gain: 1.0. learn_tau_mem, learn_tau_adp: train them (True).
        spike_grad, surrogate_disable, init_hidden, output, learn_threshold, per_channel, generator: as BRF's.

    Example:
        >>> import torch
        >>> from snntorch_ext import ALIF
        >>> spk, u, a = ALIF(3)(torch.ones(2, 3))
        >>> a.shape
        torch.Size([2, 3])
    """

    state_names = ("spk", "u", "a")
    mem_style = ("spk", "u")
    State = ALIFState
    reset_choices = ("subtract",)
    reset_help = "ALIF's reset subtracts its adaptive threshold (spec 1.5)."
    snntorch_hints = {
        "beta": "{cls}'s leak is set by its membrane time constant `tau_mem` in steps (decay exp(-1/tau_mem), "
                "snnTorch's beta = exp(-1/tau_mem)); its `adaptation` is the adaptation strength. Pass tau_mem=... "
                "instead of beta.",
        "learn_beta": "{cls} has no `learn_beta`: its leak is `tau_mem`, trained unless learn_tau_mem=False.",
    }

    def __init__(self, num_neurons: Optional[int] = None, tau_mem: Init = KINDS["alif"].default_init["tau_mem"],
                 tau_adp: Init = KINDS["alif"].default_init["tau_adp"], *, threshold=F.ALIF_THETA,
                 adaptation: float = F.ALIF_BETA, input_gain: float = 1.0, spike_grad=None,
                 surrogate_disable: bool = False, init_hidden: bool = False, output: bool = False,
                 reset_mechanism: str = "subtract", learn_tau_mem: bool = True, learn_tau_adp: bool = True,
                 learn_threshold: bool = False, per_channel: bool = False,
                 generator: Optional[torch.Generator] = None, **unsupported):
        reject_unsupported(type(self), unsupported)
        num_neurons = check_size(type(self), num_neurons, tau_mem, tau_adp, threshold)
        super().__init__(num_neurons, threshold=threshold, spike_grad=spike_grad,
                         surrogate_disable=surrogate_disable, init_hidden=init_hidden, output=output,
                         reset_mechanism=reset_mechanism, learn_threshold=learn_threshold, input_gain=input_gain,
                         per_channel=per_channel)
        self.adaptation = check_finite_float("adaptation", adaptation)
        self._register("tau_mem", tau_mem, learn_tau_mem, generator=generator)
        self._register("tau_adp", tau_adp, learn_tau_adp, generator=generator)

    def neuron_config(self) -> NeuronConfig:
        return NeuronConfig("alif", theta=self._theta(), beta=self.adaptation, spike_fn=self._spike_fn(),
                            input_gain=self.input_gain)

    def neuron_parameters(self) -> tuple:
        return self.tau_mem, self.tau_adp

    def init_alif(self):
        """Clear the state and return it as ``(spk, u, a)`` (empty tensors, meaning zeros)."""
        return self.reset_mem()

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, adaptation={self.adaptation:g}"


class LI(StatefulNeuron):
    r"""Leaky-integrator readout (spec 1.6), :func:`brf_plugins.functional.li_step`:
    :math:`o_t = \alpha o_{t-1} + (1-\alpha) I_t`, :math:`\alpha = e^{-1/|\tau|}`; ``mem = li(cur, mem)``.

    Args: num_neurons; tau_mem (``(mean, std)`` normal draw, default ``(20, 5)``, a number or a tensor);
    learn_tau_mem (True); init_hidden; per_channel; generator.

    Example:
        >>> import torch
        >>> from snntorch_ext import LI
        >>> li = LI(10, tau_mem=20.0)
        >>> mem = li(torch.ones(4, 10)); round(float(mem[0, 0].detach()), 4)
        0.0488
    """

    state_names = ("mem",)
    State = LIState
    reset_choices = ("none",)
    reset_help = "A readout does not spike."

    snntorch_hints = {
        "beta": "{cls}'s leak is its time constant `tau_mem` in steps (decay exp(-1/tau_mem)); pass tau_mem=... "
                "instead of beta.",
        "learn_beta": "{cls} has no `learn_beta`: `tau_mem` is trained unless learn_tau_mem=False.",
    }

    def __init__(self, num_neurons: Optional[int] = None, tau_mem: Init = (20.0, 5.0), *, learn_tau_mem: bool = True,
                 init_hidden: bool = False, per_channel: bool = False, generator: Optional[torch.Generator] = None,
                 **unsupported):
        reject_unsupported(type(self), unsupported)
        num_neurons = check_size(type(self), num_neurons, tau_mem)
        super().__init__(num_neurons, init_hidden=init_hidden, reset_mechanism="none", per_channel=per_channel)
        # A readout has no threshold, spikes or reset: drop SpikingNeuron's buffers so state_dict holds tau only.
        del self.threshold, self.graded_spikes_factor, self.reset_mechanism_val
        self._register("tau_mem", tau_mem, learn_tau_mem, generator=generator)

    def _advance(self, input_, states):
        mem = self._to_user(F.li_step(self._to_core(input_, 1), self._to_core(states[0], 1), self.tau_mem), 1)
        return mem, (mem,)

    def neuron_parameters(self) -> tuple:
        return (self.tau_mem,)

    def forward(self, input_: torch.Tensor, mem: Optional[torch.Tensor] = None) -> torch.Tensor:
        input_, states = self._begin(input_, (mem,))
        mem, states = self._advance(input_, states)
        self._finish(mem, states)
        return mem

    def forward_sequence(self, input_: torch.Tensor, mem: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Step through ``(T, batch, num_neurons)``; returns the membrane of every step ``(T, batch, C)``."""
        input_, states = self._begin(input_, (mem,), sequence=True)
        record = []
        for x in input_:
            out, states = self._advance(x, states)
            record.append(out)
        self._finish(record[-1], states)
        return torch.stack(record)

    def init_li(self):
        """Clear the membrane and return it as ``(mem,)`` (an empty tensor, meaning zeros)."""
        return self.reset_mem()
