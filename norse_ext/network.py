r"""The paper's network built from Norse parts, and the authors' checkpoints loaded into it.

:class:`PaperNetwork` is a recurrent spiking layer (:class:`norse_ext.BRFRecurrent`, or the RF, BHRF or ALIF one,
with autapses, as in the paper) followed by the paper's leaky-integrator readout
(:class:`norse_ext.LIReadoutLinearCell`), run over time-first sequences ``(T, B, m)``. It computes exactly what
:class:`brf_plugins.network.RecurrentSNN` computes, in the same floating-point order: the recurrent current is one
matmul of ``[W_in, W_rec]`` over ``concat(x_t, z_{t-1})`` (the authors' single ``Linear`` on the concatenation,
input columns first), so the float32 spikes equal the core's bit for bit; the input gain is 1 (the paper's
equations verbatim).

Example:
    >>> import torch
    >>> import norse_ext
    >>> net = norse_ext.build_paper_network("ecg", neuron="brf")
    >>> out = net(torch.rand(1300, 2, 4))
    >>> out.readout.shape, type(net.hidden).__name__
    (torch.Size([1300, 2, 6]), 'BRFRecurrent')
"""

from __future__ import annotations

import numbers
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence, Tuple, Union

import torch
from torch import nn
from torch.nn import functional as nnf

from brf_plugins import functional as F
from brf_plugins import kernels as K
from brf_plugins._checks import check_choice, check_dt, check_positive_int, check_sequence_input, check_state
from brf_plugins.checkpoints import inspect_authors_checkpoint
from brf_plugins.init import xavier_uniform_
from brf_plugins.network import NEURONS, SNNOutput
from brf_plugins.tasks import TaskConfig, get_task

from . import functional as nf
from .functional import LIReadoutState, concat_weights
from .functional import ALIFParameters, BHRFParameters, BRFParameters, LIReadoutParameters, Normal, RFParameters
from .module import ALIFRecurrent, BHRFRecurrent, BRFRecurrent, LIReadoutLinearCell, RFRecurrent

__all__ = ["PaperNetwork", "build_paper_network", "from_authors_checkpoint"]

_LAYERS = {"brf": BRFRecurrent, "rf": RFRecurrent, "bhrf": BHRFRecurrent, "alif": ALIFRecurrent}


def _normal(name: str, spec) -> Normal:
    if isinstance(spec, Normal):
        return spec
    if isinstance(spec, (tuple, list)) and len(spec) == 2:
        return Normal(float(spec[0]), float(spec[1]))
    raise ValueError(f"`{name}` must be a (mean, std) pair or Normal(mean, std), got {spec!r}.")


class PaperNetwork(nn.Module):
    r"""The paper's recurrent SNN from Norse modules: ``hidden`` (a recurrent sequence module with autapses) and
    ``out`` (:class:`norse_ext.LIReadoutLinearCell`).

    Per step (spec 1.8): :math:`z_t, s_t = \mathrm{hidden}(x_t, s_{t-1})` with the current
    :math:`W[x_t; z_{t-1}]`, then :math:`o_t = \alpha o_{t-1} + (1-\alpha) W_{out} z_t`.

    Parameters:
        input_size, hidden_size, output_size: m, h, C.
        neuron: ``"brf"`` (default), ``"rf"``, ``"bhrf"`` or ``"alif"``.
        omega_init, b_offset_init: value, ``(low, high)`` uniform range or tensor (resonators).
        tau_mem_init, tau_adp_init: ``(mean, std)`` of ALIF's time constants (steps).
        tau_out_init: ``(mean, std)`` of the readout time constants.
        dt, theta, gamma: resonator step (0.01), threshold (1.0; 0.01 for ALIF), refractory decay (0.9).
        method, alpha: spike function (``"double_gaussian"``, Norse's methods or a callable); ``spike_fn`` is an
            alias of ``method`` for a callable, as in the core.
        rf_reset, bhrf_variant, divergence_boundary, refractory, smooth_reset: model variants (see the core).
        learn_omega, learn_b_offset: train the resonator parameters.
        input_gain: factor on the current (default 1.0, the paper's equations).
        generator: random generator; with the same generator the initial values equal
            :meth:`brf_plugins.network.RecurrentSNN.from_task`'s.

    ``forward(x, state=None, record=False, spike_hook=None)`` takes ``(T, B, m)`` and returns
    :class:`brf_plugins.network.SNNOutput` ``(readout (T, B, C), spike_count, hidden_spikes or None,
    (hidden_state, readout_state))``. ``spike_hook(t, z)`` (optional) replaces the hidden spikes of step ``t``
    before the recurrence, the readout and the count see them, exactly as in
    :meth:`brf_plugins.network.RecurrentSNN.forward` (spike-deletion studies).
    """

    def __init__(self, input_size: int, hidden_size: int, output_size: int, neuron: str = "brf", *,
                 omega_init=(5.0, 10.0), b_offset_init=(0.0, 1.0), tau_mem_init=(20.0, 5.0),
                 tau_adp_init=(200.0, 50.0), tau_out_init=(20.0, 5.0), dt: float = F.DEFAULT_DT,
                 theta: Optional[float] = None, gamma: float = F.DEFAULT_GAMMA, method="double_gaussian",
                 alpha: float = 100.0, spike_fn=None, rf_reset: str = "none", bhrf_variant: str = "code",
                 divergence_boundary: bool = True, refractory: bool = True, smooth_reset: bool = True,
                 learn_omega: bool = True, learn_b_offset: bool = True, input_gain: float = 1.0,
                 generator: Optional[torch.Generator] = None):
        super().__init__()
        self.input_size = check_positive_int("input_size", input_size)
        self.hidden_size = check_positive_int("hidden_size", hidden_size)
        self.output_size = check_positive_int("output_size", output_size)
        self.neuron = check_choice("neuron", neuron, NEURONS)
        dt = check_dt(dt)
        if spike_fn is not None:
            method = spike_fn
        m, h = self.input_size, self.hidden_size
        weight = torch.empty(h, m + h)
        xavier_uniform_(weight, generator=generator)  # over the whole concatenated matrix, as the paper
        if theta is None:
            theta = F.ALIF_THETA if neuron == "alif" else F.DEFAULT_THETA
        common = dict(theta=theta, input_gain=input_gain, method=method, alpha=alpha)
        if neuron == "alif":
            p = ALIFParameters(tau_mem=_normal("tau_mem_init", tau_mem_init),
                               tau_adp=_normal("tau_adp_init", tau_adp_init), **common)
            learn = {}
        else:
            resonator = dict(omega=omega_init, b_offset=b_offset_init, **common)
            if neuron == "brf":
                p = BRFParameters(gamma=gamma, divergence_boundary=bool(divergence_boundary),
                                  refractory=bool(refractory), smooth_reset=bool(smooth_reset), **resonator)
            elif neuron == "rf":
                p = RFParameters(reset=rf_reset, **resonator)
            else:
                p = BHRFParameters(gamma=gamma, variant=bhrf_variant, **resonator)
            learn = dict(learn_omega=learn_omega, learn_b_offset=learn_b_offset)
        self.hidden = _LAYERS[neuron](m, h, p, input_weights=nn.Parameter(weight[:, :m].clone()),
                                      recurrent_weights=nn.Parameter(weight[:, m:].clone()), autapses=True, dt=dt,
                                      generator=generator, **learn)
        self.out = LIReadoutLinearCell(h, self.output_size, LIReadoutParameters(_normal("tau_out_init", tau_out_init)),
                                       generator=generator)

    def forward(self, x: torch.Tensor, state: Optional[tuple] = None, record: bool = False,
                spike_hook: Optional[Callable[[int, torch.Tensor], torch.Tensor]] = None) -> SNNOutput:
        check_sequence_input("x", x, width=self.input_size, reference=next(self.parameters()))
        hidden_state, readout_state = (None, None) if state is None else state
        spec = self._fused_spec(x) if spike_hook is None else None
        if spec is not None:
            return self._fused_forward(spec, x, hidden_state, readout_state, record)
        if spike_hook is None:
            spikes, hidden_state = self.hidden(x, hidden_state)
        else:
            spikes, hidden_state = self._hooked_hidden(x, hidden_state, spike_hook)
        readouts = []
        spike_count = x.new_zeros(())
        for z in spikes:  # the readout sees the current step's spikes; counted step by step, as in the core
            spike_count = spike_count + z.sum()
            o, readout_state = self.out(z, readout_state)
            readouts.append(o)
        return SNNOutput(torch.stack(readouts), spike_count, spikes if record else None,
                         (hidden_state, readout_state))

    def _fused_spec(self, x: torch.Tensor):
        """The fused kernels' cell spec (``brf_plugins.kernels``), or ``None`` where they do not reproduce the
        step loop: ALIF, an input gain other than 1, a tensor threshold, a spike method they do not implement."""
        if self.neuron == "alif":
            return None
        cell, p = self.hidden, self.hidden.p
        gain = nf.input_gain(p, cell.dt)
        if not isinstance(gain, numbers.Real) or gain != 1.0:
            return None
        if isinstance(p.theta, bool) or not isinstance(p.theta, numbers.Real):
            return None
        option = {"rf": lambda: p.reset, "bhrf": lambda: p.variant}.get(self.neuron, lambda: "")()
        ablation = (dict(divergence_boundary=p.divergence_boundary, refractory=p.refractory,
                         smooth_reset=p.smooth_reset) if self.neuron == "brf" else {})
        spec = K.cell_spec(self.neuron, cell.dt, float(p.theta), float(getattr(p, "gamma", F.DEFAULT_GAMMA)),
                           nf.spike_function(p.method, p.alpha), option=option, **ablation)
        tensors = (x, cell.input_weights, cell.recurrent_weights, p.omega, p.b_offset)
        return spec if K.select_backend("auto", spec, tensors, allow_triton=False) == "fused" else None

    def _fused_forward(self, spec, x: torch.Tensor, hidden_state, readout_state, record: bool) -> SNNOutput:
        """The whole sequence as one autograd node for the hidden layer and one for the readout: the values of
        the step loop (tests check spikes and states against it)."""
        cell = self.hidden
        zeros = cell.state_fallback(x)
        if hidden_state is None:
            hidden_state = zeros
        else:
            nf._check_state(hidden_state, type(zeros), zeros.z)
        o = None
        if readout_state is not None:
            if not isinstance(readout_state, LIReadoutState):
                raise TypeError(f"`state[1]` must be a LIReadoutState(o), got {type(readout_state).__name__}.")
            o = check_state("o", readout_state.o, x.new_empty(x.shape[1], self.output_size))
        weight = concat_weights(cell.input_weights, cell.recurrent_weights)
        z_all, final = K.recurrent_sequence(spec, x, weight, tuple(hidden_state), cell.p.omega, cell.p.b_offset,
                                            True)
        readout = K.li_sequence(nnf.linear(z_all, self.out.input_weights, self.out.bias), o, self.out.tau_mem)
        return SNNOutput(readout, z_all.sum(), z_all if record else None,
                         (type(zeros)(*final), LIReadoutState(readout[-1])))

    def _hooked_hidden(self, x, hidden_state, spike_hook):
        """The hidden layer step by step with ``z = spike_hook(t, z)`` after each update, as the core's
        ``RecurrentSNN.forward(spike_hook=...)``: the hooked spikes feed the recurrence and the readout."""
        cell = self.hidden
        if hidden_state is None:
            hidden_state = cell.state_fallback(x)
        z, hidden_state = cell.activation(x[0], hidden_state, cell.input_weights, cell.recurrent_weights, cell.p,
                                          cell.dt)  # checks the state once
        weight = concat_weights(cell.input_weights, cell.recurrent_weights)
        spikes = []
        for t in range(x.shape[0]):
            if t:
                z, hidden_state = cell._kind.recurrent_kernel(x[t], hidden_state, weight, cell.p, cell.dt)
            z = spike_hook(t, z)
            hidden_state = hidden_state._replace(z=z)
            spikes.append(z)
        return torch.stack(spikes), hidden_state

    # ---- the authors' state-dict layout ----------------------------------------------------------------------

    def _hidden_names(self) -> Tuple[str, ...]:
        return ("tau_mem", "tau_adp") if self.neuron == "alif" else ("omega", "b_offset")

    def authors_state_dict(self) -> Dict[str, torch.Tensor]:
        """The weights under the authors' (and :class:`brf_plugins.network.RecurrentSNN`'s) keys:
        ``hidden.linear.weight`` ``(h, m + h)`` (input columns first), ``hidden.omega``... ``out.linear.weight``,
        ``out.tau_mem``."""
        state = {"hidden.linear.weight": torch.cat((self.hidden.input_weights, self.hidden.recurrent_weights),
                                                   1).detach().clone()}
        for name in self._hidden_names():
            state[f"hidden.{name}"] = getattr(self.hidden, name).detach().clone()
        state["out.linear.weight"] = self.out.input_weights.detach().clone()
        if self.out.bias is not None:
            state["out.linear.bias"] = self.out.bias.detach().clone()
        state["out.tau_mem"] = self.out.tau_mem.detach().clone()
        return state

    def load_authors_state_dict(self, state: Dict[str, torch.Tensor]) -> "PaperNetwork":
        """Load weights given under the authors' keys (see :meth:`authors_state_dict`), strictly."""
        expected = set(self.authors_state_dict())
        given = set(state) - {"hidden.linear.mask"}
        if given != expected:
            missing, unexpected = sorted(expected - given), sorted(given - expected)
            raise KeyError(f"the state dict does not fit this {self.neuron!r} network: missing {missing}, "
                           f"unexpected {unexpected}.")
        weight = state["hidden.linear.weight"]
        want = (self.hidden_size, self.input_size + self.hidden_size)
        if tuple(weight.shape) != want:
            raise ValueError(f"`hidden.linear.weight` has shape {tuple(weight.shape)}, this network needs {want}.")
        m = self.input_size
        mapped = {"hidden.input_weights": weight[:, :m], "hidden.recurrent_weights": weight[:, m:],
                  "out.input_weights": state["out.linear.weight"], "out.tau_mem": state["out.tau_mem"]}
        for name in self._hidden_names():
            mapped[f"hidden.{name}"] = state[f"hidden.{name}"]
        if "out.linear.bias" in state:
            mapped["out.bias"] = state["out.linear.bias"]
        self.load_state_dict(mapped, strict=True)
        return self

    def extra_repr(self) -> str:
        return (f"input_size={self.input_size}, hidden_size={self.hidden_size}, output_size={self.output_size}, "
                f"neuron={self.neuron!r}")


def build_paper_network(task_or_sizes: Union[str, TaskConfig, Sequence[int]], neuron: str = "brf", *,
                        generator: Optional[torch.Generator] = None, **kwargs) -> PaperNetwork:
    """The paper's network for a task (``"smnist"``, ``"psmnist"``, ``"ecg"``, ``"shd"`` or a
    :class:`brf_plugins.tasks.TaskConfig`) with its published initialisation, or for sizes ``(m, h, C)`` with the
    defaults of :class:`PaperNetwork`.

    ``kwargs`` override any :class:`PaperNetwork` option (e.g. ``omega_init=(3.0, 5.0)``). The recipe is the same
    as :meth:`brf_plugins.network.RecurrentSNN.from_task`'s (same values for the same ``generator``).

    Example:
        >>> import torch, norse_ext
        >>> net = norse_ext.build_paper_network((4, 16, 3), neuron="rf")
        >>> out = net(torch.rand(20, 5, 4), record=True)
        >>> out.hidden_spikes.shape, out.readout.shape
        (torch.Size([20, 5, 16]), torch.Size([20, 5, 3]))
    """
    check_choice("neuron", neuron, NEURONS)
    if isinstance(task_or_sizes, (str, TaskConfig)):
        cfg = get_task(task_or_sizes) if isinstance(task_or_sizes, str) else task_or_sizes
        sizes = (cfg.input_size, cfg.hidden_size, cfg.output_size)
        options = dict(cfg.init_kwargs(neuron))
    elif isinstance(task_or_sizes, (tuple, list)) and len(task_or_sizes) == 3:
        sizes, options = tuple(task_or_sizes), {}
    else:
        raise TypeError(f"`task_or_sizes` must be a task name, a TaskConfig or (input_size, hidden_size, "
                        f"output_size); got {task_or_sizes!r}.")
    options.update(kwargs)
    return PaperNetwork(*sizes, neuron, generator=generator, **options)


def from_authors_checkpoint(path: Union[str, Path], neuron: Optional[str] = None, *, dt: float = 0.01,
                            map_location: Union[str, torch.device] = "cpu", **kwargs) -> PaperNetwork:
    """A :class:`PaperNetwork` with the weights of one of the authors' released checkpoints.

    ``neuron`` (``"brf"``, ``"rf"``, ``"alif"``; BHRF has no released model) is inferred from the file when
    omitted, as by :func:`brf_plugins.checkpoints.load_authors_checkpoint`, which this mirrors: same checks, same
    model.

    Example:
        >>> import norse_ext
        >>> net = norse_ext.from_authors_checkpoint("../shared/data/reference_checkpoints/ecg_brf.pt")  # doctest: +SKIP
        >>> net.neuron, net.hidden_size                                                                  # doctest: +SKIP
        ('brf', 36)
    """
    state, neuron, (m, h, c) = inspect_authors_checkpoint(path, neuron, dt=dt)
    if neuron != "alif":  # placeholders, overwritten by the checkpoint
        kwargs.setdefault("omega_init", 1.0)
        kwargs.setdefault("b_offset_init", 1.0)
    model = PaperNetwork(m, h, c, neuron, dt=dt, **kwargs)
    model.load_authors_state_dict(state)
    return model.to(map_location)
