r"""The LIF baselines: each framework's own recurrent LIF neuron in a network of the paper network's size.

A BRF network is compared with the LIF neuron its user would otherwise have taken, written the way that
framework's tutorials write it, with its defaults and a learning rate chosen by a sweep
(:data:`LIF_LEARNING_RATES`, ``benchmarks/lif_lr_sweep.py``), not a handicapped copy:

* snnTorch (:class:`SnnTorchRLeakyNetwork`): ``nn.Linear(m, h)`` into ``snn.RLeaky(beta=0.95,
  linear_features=h, learn_beta=True)`` (all-to-all recurrence, subtractive reset, ATan surrogate, threshold 1),
  then ``nn.Linear(h, C)`` into ``snn.Leaky(beta=0.95, learn_beta=True, reset_mechanism="none")`` whose membrane is
  the readout, stepped by a Python loop as in snnTorch's tutorials;
* Norse (:class:`NorseLIFRecurrentNetwork`): ``norse.torch.LIFRecurrent(m, h)`` (the sequence module of
  ``LIFRecurrentCell``: input and recurrent weights, Norse's default ``LIFParameters``), then
  ``Lift(nn.Linear(h, C))`` and ``LI()`` whose voltage is the readout.

Both take time-first input ``(T, B, m)`` and return :class:`brf_plugins.network.SNNOutput` like every trainer
model. beta = 0.95 is snnTorch's tutorial value and the paper's membrane time constant (20 steps:
:math:`e^{-1/20} \approx 0.951`). ``core`` has no LIF neuron of its own: its ``"lif"`` is the core ALIF neuron
without adaptation (:func:`brf_plugins.train.models.build_model`).

Example:
    >>> import torch
    >>> net = SnnTorchRLeakyNetwork(4, 36, 6, generator=torch.Generator().manual_seed(0))  # doctest: +SKIP
    >>> net(torch.rand(50, 2, 4)).readout.shape                                            # doctest: +SKIP
    torch.Size([50, 2, 6])
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

import torch
from torch import nn

from ..network import SNNOutput

__all__ = ["LIF_LEARNING_RATES", "LIF_BASELINES", "SnnTorchRLeakyNetwork", "NorseLIFRecurrentNetwork",
           "lif_baseline", "lif_learning_rate"]

LIF_LEARNING_RATES: Dict[Tuple[str, str], float] = {("synthetic", "snntorch"): 0.03, ("synthetic", "norse"): 0.3}
"""``(task, framework) -> lr`` chosen by ``python benchmarks/lif_lr_sweep.py`` (best validation loss of the
sweep; the README reports the sweep). A task without an entry uses the paper's ALIF learning rate."""

BETA = 0.95


def _built(generator: Optional[torch.Generator], build):
    """``build()`` under a forked global RNG seeded from ``generator``: the frameworks' modules initialise from the
    global RNG, so the same generator gives the same network without touching the caller's random stream."""
    with torch.random.fork_rng(devices=[]):
        if generator is not None:
            torch.manual_seed(int(torch.randint(2 ** 62, (1,), generator=generator)))
        return build()


class SnnTorchRLeakyNetwork(nn.Module):
    """snnTorch's recurrent LIF network (see the module docstring); ``forward(x (T, B, m)) -> SNNOutput``."""

    def __init__(self, input_size: int, hidden_size: int, output_size: int, *, beta: float = BETA,
                 generator: Optional[torch.Generator] = None):
        super().__init__()
        import snntorch as snn
        self.fc_in, self.lif, self.fc_out, self.readout = _built(generator, lambda: (
            nn.Linear(input_size, hidden_size),
            snn.RLeaky(beta=torch.full((hidden_size,), beta), linear_features=hidden_size, learn_beta=True),
            nn.Linear(hidden_size, output_size),
            snn.Leaky(beta=torch.full((output_size,), beta), learn_beta=True, reset_mechanism="none")))

    def forward(self, x: torch.Tensor, state=None) -> SNNOutput:
        spk, mem = self.lif.init_rleaky() if state is None else state[0]
        mem_out = self.readout.init_leaky() if state is None else state[1]
        readout, count = [], x.new_zeros(())
        for x_t in x:
            spk, mem = self.lif(self.fc_in(x_t), spk, mem)
            _, mem_out = self.readout(self.fc_out(spk), mem_out)
            readout.append(mem_out)
            count = count + spk.sum()
        return SNNOutput(torch.stack(readout), count, None, ((spk, mem), mem_out))


class NorseLIFRecurrentNetwork(nn.Module):
    """Norse's recurrent LIF network (see the module docstring); ``forward(x (T, B, m)) -> SNNOutput``."""

    def __init__(self, input_size: int, hidden_size: int, output_size: int, *,
                 generator: Optional[torch.Generator] = None):
        super().__init__()
        import norse.torch as norse
        self.lif, self.fc_out, self.readout = _built(generator, lambda: (
            norse.LIFRecurrent(input_size, hidden_size), norse.Lift(nn.Linear(hidden_size, output_size)),
            norse.LI()))

    def forward(self, x: torch.Tensor, state=None) -> SNNOutput:
        hidden_state, readout_state = (None, None) if state is None else state
        z, hidden_state = self.lif(x, hidden_state)
        v, readout_state = self.readout(self.fc_out(z), readout_state)
        return SNNOutput(v, z.sum(), None, (hidden_state, readout_state))


LIF_BASELINES = {"snntorch": SnnTorchRLeakyNetwork, "norse": NorseLIFRecurrentNetwork}
"""The framework-native LIF network class of each framework."""


def lif_baseline(framework: str, input_size: int, hidden_size: int, output_size: int, *,
                 generator: Optional[torch.Generator] = None) -> nn.Module:
    """``framework``'s own recurrent LIF network of the given size (``framework`` in :data:`LIF_BASELINES`)."""
    return LIF_BASELINES[framework](input_size, hidden_size, output_size, generator=generator)


def lif_learning_rate(task: str, framework: str, default: float) -> float:
    """The swept learning rate of ``framework``'s LIF baseline on ``task``, else ``default``."""
    return LIF_LEARNING_RATES.get((task, framework), default)
