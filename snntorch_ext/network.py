r"""The paper's network built from snnTorch-style parts, and the authors' checkpoints loaded into it.

:class:`PaperNetwork` is the paper's shape (spec 1.0, 1.6, 1.8) written as an snnTorch user would:

.. code-block:: python

    cur = self.fc(torch.cat((x_t, spk), dim=1))    # nn.Linear(m + h, h, bias=False): input and previous spikes
    spk, u, v, q = self.hidden(cur, u, v, q)        # snntorch_ext.BRF (or RF, BHRF, ALIF)
    mem = self.readout(self.fc_out(spk), mem)       # nn.Linear(h, C, bias=False) + snntorch_ext.LI

over a time-first ``(T, B, m)`` input, returning :class:`brf_plugins.network.SNNOutput` like the core's
:class:`~brf_plugins.network.RecurrentSNN`. Its initialisation is the core's recipe (xavier-uniform weights over the
whole matrices, omega/b' uniform, tau normal; the same random draws in the same order, so the same seed gives the
same parameters), read from :mod:`brf_plugins.tasks` for a named task. The resonators run the spec verbatim
(``input_gain=1.0``) with the paper's learning rates.

The concatenation (rather than ``nn.Linear(m, h)`` + :class:`~snntorch_ext.RBRF`) keeps the authors' order of
floating-point operations, so the released checkpoints give exactly the accuracies of the core loader.

Example:
    >>> import torch
    >>> from snntorch_ext import build_paper_network
    >>> net = build_paper_network("ecg", neuron="brf")
    >>> out = net(torch.rand(100, 2, 4))
    >>> out.readout.shape, out.spike_count.shape
    (torch.Size([100, 2, 6]), torch.Size([]))
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Dict, Optional, Tuple, Union

import torch
from torch import nn

from brf_plugins import functional as F
from brf_plugins import kernels as K
from brf_plugins._checks import check_choice, check_sequence_input, check_positive_int, check_state
from brf_plugins.checkpoints import IGNORED_KEYS, inspect_authors_checkpoint
from brf_plugins.init import Init, xavier_uniform_
from brf_plugins.network import NEURONS, STATE_NAMES, SNNOutput
from brf_plugins.tasks import TaskConfig, get_task

from .neurons import ALIF, BHRF, BRF, LI, RF, RF_RESET_MECHANISMS

__all__ = ["PaperNetwork", "build_paper_network", "from_authors_checkpoint", "AUTHORS_KEYS"]

AUTHORS_KEYS = {
    "hidden.linear.weight": "fc.weight",
    "hidden.omega": "hidden.omega",
    "hidden.b_offset": "hidden.b_offset",
    "hidden.tau_mem": "hidden.tau_mem",
    "hidden.tau_adp": "hidden.tau_adp",
    "out.linear.weight": "fc_out.weight",
    "out.tau_mem": "readout.tau_mem",
}
"""The authors' (and the core's) state-dict keys and the matching keys of :class:`PaperNetwork`."""


class PaperNetwork(nn.Module):
    """The paper's recurrent network from snnTorch-style parts (see the module docstring).

    Args:
        input_size, hidden_size, output_size: m, h, C.
        neuron: ``"brf"``, ``"rf"``, ``"bhrf"`` or ``"alif"``.
        omega_init, b_offset_init: resonator initialisation (number, ``(low, high)`` range or tensor).
        tau_mem_init, tau_adp_init: ALIF time constants, ``(mean, std)`` of a normal draw (steps).
        tau_out_init: readout time constants, ``(mean, std)``.
        dt, threshold, gamma: resonator step (0.01), threshold (1.0; ALIF 0.01), refractory decay (0.9).
        input_gain: on the hidden neuron's current; 1.0 (the spec verbatim, with the paper's learning rates).
        spike_grad: surrogate (default double Gaussian).
        reset_mechanism: RF only, snnTorch names (``'none'``, ``'subtract'``, ``'zero'``).
        variant: BHRF only (``'code'``, ``'paper'``, ``'explicit'``).
        divergence_boundary, refractory, smooth_reset: BRF ablations.
        learn_omega, learn_b_offset: train the resonator parameters (True).
        generator: ``torch.Generator`` for the initialisation.

    ``forward(x, state=None, record=False)``: ``x`` is ``(T, B, m)``; returns ``SNNOutput(readout (T, B, C),
    spike_count, hidden_spikes (T, B, h) if record else None, state)`` with ``state = (hidden_state, mem)`` and
    ``hidden_state = (z, u, v, q)`` (BRF/BHRF), ``(z, u, v)`` (RF) or ``(z, u, a)`` (ALIF), as the core's.
    """

    def __init__(self, input_size: int, hidden_size: int, output_size: int, neuron: str = "brf", *,
                 omega_init: Init = (5.0, 10.0), b_offset_init: Init = (0.0, 1.0),
                 tau_mem_init: Tuple[float, float] = (20.0, 5.0), tau_adp_init: Tuple[float, float] = (200.0, 50.0),
                 tau_out_init: Tuple[float, float] = (20.0, 5.0), dt: float = F.DEFAULT_DT,
                 threshold: Optional[float] = None, gamma: float = F.DEFAULT_GAMMA, input_gain: float = 1.0,
                 spike_grad=None, reset_mechanism: str = "none", variant: str = "code",
                 divergence_boundary: bool = True, refractory: bool = True, smooth_reset: bool = True,
                 learn_omega: bool = True, learn_b_offset: bool = True,
                 generator: Optional[torch.Generator] = None):
        super().__init__()
        self.input_size = check_positive_int("input_size", input_size)
        self.hidden_size = check_positive_int("hidden_size", hidden_size)
        self.output_size = check_positive_int("output_size", output_size)
        self.neuron = check_choice("neuron", neuron, NEURONS)
        # Same modules and random draws, in the same order, as brf_plugins.network.RecurrentSNN.
        self.fc = nn.Linear(input_size + hidden_size, hidden_size, bias=False)
        xavier_uniform_(self.fc.weight, generator=generator)
        common = dict(spike_grad=spike_grad, input_gain=input_gain, generator=generator)
        if threshold is not None:
            common["threshold"] = threshold
        if neuron == "alif":
            self.hidden = ALIF(hidden_size, tau_mem_init, tau_adp_init, **common)
        else:
            resonator = dict(dt=dt, learn_omega=learn_omega, learn_b_offset=learn_b_offset, **common)
            if neuron == "brf":
                self.hidden = BRF(hidden_size, omega_init, b_offset_init, gamma=gamma,
                                  divergence_boundary=divergence_boundary, refractory=refractory,
                                  smooth_reset=smooth_reset, **resonator)
            elif neuron == "rf":
                self.hidden = RF(hidden_size, omega_init, b_offset_init, reset_mechanism=reset_mechanism,
                                 **resonator)
            else:
                self.hidden = BHRF(hidden_size, omega_init, b_offset_init, gamma=gamma, variant=variant,
                                   **resonator)
        self.fc_out = nn.Linear(hidden_size, output_size, bias=False)
        xavier_uniform_(self.fc_out.weight, generator=generator)
        self.readout = LI(output_size, tau_out_init, generator=generator)

    @property
    def state_names(self) -> Tuple[str, ...]:
        """Names of the hidden state, in the order of ``SNNOutput.state[0]`` (the core's)."""
        return STATE_NAMES[self.neuron]

    def init_state(self, batch_size: int, *, dtype=None, device=None) -> tuple:
        """Zero ``(hidden_state, mem)`` for a batch."""
        weight = self.fc.weight
        dtype, device = dtype or weight.dtype, device or weight.device
        hidden = tuple(torch.zeros(batch_size, self.hidden_size, dtype=dtype, device=device)
                       for _ in self.state_names)
        return hidden, torch.zeros(batch_size, self.output_size, dtype=dtype, device=device)

    def forward(self, x: torch.Tensor, state: Optional[tuple] = None, record: bool = False,
                spike_hook: Optional[Callable[[int, torch.Tensor], torch.Tensor]] = None) -> SNNOutput:
        """Run ``x`` ``(T, B, m)``; ``spike_hook(t, z) -> z`` edits the hidden spikes of every step as in
        :meth:`brf_plugins.network.RecurrentSNN.forward`: the recurrence, the readout, the spike count and the
        record see the edited spikes (and ALIF's adaptation, which reads the previous spikes); the refractory
        variable ``q`` was already updated with the original ones, as in the core."""
        check_sequence_input("x", x, width=self.input_size, reference=next(self.parameters()))
        if state is None:
            hidden_state, mem = self.init_state(x.shape[1], dtype=x.dtype, device=x.device)
        else:
            hidden_state, mem = state
            reference = x.new_empty(x.shape[1], self.hidden_size)
            if len(hidden_state) != len(self.state_names):
                raise ValueError(f"`state[0]` must hold {len(self.state_names)} tensors "
                                 f"({', '.join(self.state_names)}), got {len(hidden_state)}.")
            for name, s in zip(self.state_names, hidden_state):
                check_state(name, s, reference)
            check_state("mem", mem, x.new_empty(x.shape[1], self.output_size))
        spec = self._fused_spec(x) if spike_hook is None else None
        if spec is not None:
            return self._fused_forward(spec, x, hidden_state, mem, record)
        spk, *neuron_state = hidden_state
        if self.neuron == "alif":
            neuron_state = [spk, *neuron_state]
        readouts, spikes = [], []
        spike_count = x.new_zeros(())
        for t, x_t in enumerate(x):
            out = self.hidden(self.fc(torch.cat((x_t, spk), dim=1)), *neuron_state)
            spk = out[0] if spike_hook is None else spike_hook(t, out[0])
            neuron_state = (spk, *out[1:]) if self.neuron == "alif" else out[1:]
            spike_count = spike_count + spk.sum()
            mem = self.readout(self.fc_out(spk), mem)
            readouts.append(mem)
            if record:
                spikes.append(spk)
        hidden_state = tuple(neuron_state) if self.neuron == "alif" else (spk, *neuron_state)
        return SNNOutput(torch.stack(readouts), spike_count, torch.stack(spikes) if record else None,
                         (hidden_state, mem))

    def _fused_spec(self, x: torch.Tensor):
        """The fused kernels' cell spec for this network (``brf_plugins.kernels``), or ``None`` where they do not
        reproduce the step loop: ALIF, an input gain or graded spikes other than 1, a learnable or per-neuron
        threshold, a surrogate the kernels do not implement, ``surrogate_disable``."""
        hidden = self.hidden
        if self.neuron == "alif" or hidden.input_gain != 1.0 or hidden.surrogate_disable:
            return None
        graded = hidden.graded_spikes_factor
        if graded.numel() != 1 or graded.requires_grad or float(graded) != 1.0:
            return None
        theta = hidden._sequence_theta()
        if not isinstance(theta, float):
            return None
        option = {"rf": lambda: RF_RESET_MECHANISMS[hidden.reset_mechanism],
                  "bhrf": lambda: hidden.variant}.get(self.neuron, lambda: "")()
        ablation = hidden.ablation if self.neuron == "brf" else {}
        spec = K.cell_spec(self.neuron, hidden.dt, theta, getattr(hidden, "gamma", F.DEFAULT_GAMMA),
                           hidden.spike_grad, option=option, **ablation)
        tensors = (x, self.fc.weight, hidden.omega, hidden.b_offset)
        return spec if K.select_backend("auto", spec, tensors, allow_triton=False) == "fused" else None

    def _fused_forward(self, spec, x: torch.Tensor, hidden_state: tuple, mem: torch.Tensor,
                       record: bool) -> SNNOutput:
        """The whole sequence as one autograd node for the hidden layer and one for the readout: the values of
        the step loop in :meth:`forward` (tests check spikes and states against it)."""
        z_all, final = K.recurrent_sequence(spec, x, self.fc.weight, tuple(hidden_state), self.hidden.omega,
                                            self.hidden.b_offset, True)
        readout = K.li_sequence(self.fc_out(z_all), mem, self.readout.tau_mem)
        return SNNOutput(readout, z_all.sum(), z_all if record else None, (tuple(final), readout[-1]))

    # -- the authors' state dicts -------------------------------------------------------------------------
    def load_authors_state_dict(self, state: Dict[str, torch.Tensor], strict: bool = True):
        """Load a state dict with the authors' (= the core's) keys, e.g. ``hidden.linear.weight``.

        ``hidden.linear.mask`` (all ones) is ignored. With ``strict``, every parameter of this network must be
        set and no key may be left over. Returns the result of ``load_state_dict``.
        """
        mapped, unknown = {}, []
        for key, value in state.items():
            if key in IGNORED_KEYS:
                continue
            if key in AUTHORS_KEYS:
                mapped[AUTHORS_KEYS[key]] = value
            else:
                unknown.append(key)
        result = self.load_state_dict(mapped, strict=False)
        if strict:
            # SpikingNeuron's own buffers (threshold, graded_spikes_factor, reset_mechanism_val) are no part of
            # the authors' files; the constructor sets them.
            own = {f"hidden.{name}" for name in ("threshold", "graded_spikes_factor", "reset_mechanism_val")}
            missing = [k for k in result.missing_keys if k not in own]
            if missing or unknown or result.unexpected_keys:
                raise RuntimeError(f"state dict does not fit this {self.neuron!r} network: missing "
                                   f"{sorted(AUTHORS_KEYS_INV.get(k, k) for k in missing)}, unexpected "
                                   f"{sorted(unknown + list(result.unexpected_keys))}.")
        return result

    def authors_state_dict(self) -> Dict[str, torch.Tensor]:
        """This network's parameters under the authors' keys (loadable by the core's ``RecurrentSNN``)."""
        own = self.state_dict()
        return {key: own[ours] for key, ours in AUTHORS_KEYS.items() if ours in own}

    def extra_repr(self) -> str:
        return f"input_size={self.input_size}, hidden_size={self.hidden_size}, output_size={self.output_size}"


AUTHORS_KEYS_INV = {v: k for k, v in AUTHORS_KEYS.items()}


def build_paper_network(task_or_sizes: Union[str, TaskConfig, Tuple[int, int, int]], neuron: str = "brf",
                        **kwargs) -> PaperNetwork:
    """The paper's network for a task (``"smnist"``, ``"psmnist"``, ``"ecg"``, ``"shd"`` or a
    :class:`~brf_plugins.tasks.TaskConfig`) with its published initialisation, or for ``(m, h, C)`` sizes with
    the defaults of :class:`PaperNetwork`. ``kwargs`` override (see :class:`PaperNetwork`).

    Example:
        >>> from snntorch_ext import build_paper_network
        >>> build_paper_network((4, 36, 6), neuron="alif").hidden
        ALIF(36, adaptation=1.8)
    """
    if isinstance(task_or_sizes, (str, TaskConfig)):
        cfg = get_task(task_or_sizes) if isinstance(task_or_sizes, str) else task_or_sizes
        sizes = (cfg.input_size, cfg.hidden_size, cfg.output_size)
        options = cfg.init_kwargs(neuron)
    else:
        try:
            sizes = tuple(task_or_sizes)
        except TypeError:
            raise TypeError(f"`task_or_sizes` must be a task name, a TaskConfig or (input_size, hidden_size, "
                            f"output_size), got {type(task_or_sizes).__name__}.") from None
        if len(sizes) != 3:
            raise ValueError(f"`task_or_sizes` as sizes must be (input_size, hidden_size, output_size), got "
                             f"{task_or_sizes!r}.")
        options = {}
    options.update(kwargs)
    return PaperNetwork(*sizes, neuron, **options)


def from_authors_checkpoint(path: Union[str, Path], neuron: Optional[str] = None, *, dt: float = F.DEFAULT_DT,
                            map_location: Union[str, torch.device] = "cpu", **kwargs) -> PaperNetwork:
    """A :class:`PaperNetwork` holding a released checkpoint of the paper's authors.

    Args:
        path: the ``.pt`` file (e.g. ``ecg_brf.pt``).
        neuron: ``"brf"``, ``"rf"``, ``"bhrf"`` or ``"alif"``; inferred from the keys and the file name if omitted
            (BRF and RF files have the same keys: ``*_rf*`` names are RF).
        dt: the resonators' step (0.01 in every released model).
        map_location: device of the returned network.
        **kwargs: further :class:`PaperNetwork` options (e.g. ``spike_grad``, ablations).

    Example:
        >>> net = from_authors_checkpoint("../shared/data/reference_checkpoints/ecg_brf.pt")   # doctest: +SKIP
    """
    state, neuron, sizes = inspect_authors_checkpoint(path, neuron, dt=dt)
    if neuron != "alif":
        kwargs.setdefault("omega_init", 1.0)
        kwargs.setdefault("b_offset_init", 1.0)
    kwargs.setdefault("input_gain", 1.0)
    net = PaperNetwork(*sizes, neuron, dt=dt, **kwargs)
    net.load_authors_state_dict(state)
    return net.to(map_location)
