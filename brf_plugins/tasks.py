"""The paper's four benchmarks: network sizes, initialisation and training recipe (spec sections 2 and 4).

``TASKS[name]`` is a frozen :class:`TaskConfig`; the trainer, the checkpoint loader and the examples read their
defaults from here, so the recipe lives in one place.

Example:
    >>> from brf_plugins.tasks import TASKS
    >>> cfg = TASKS["ecg"]
    >>> cfg.input_size, cfg.hidden_size, cfg.output_size, cfg.seq_len, cfg.lr, cfg.epochs
    (4, 36, 6, 1300, 0.1, 400)
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Dict, Optional, Tuple

__all__ = ["TaskConfig", "AlifRecipe", "TASKS", "get_task", "LOSS_RULES", "ACCURACY_RULES"]

LOSS_RULES = ("last", "sum", "per_step")
"""``last``: NLL of the last step; ``sum``: NLL summed over steps against the sequence label; ``per_step``: NLL
summed over steps against per-step labels."""
ACCURACY_RULES = ("last", "mean", "per_step")
"""``last``: argmax of the last readout; ``mean``: argmax of the time-mean readout; ``per_step``: every step
scored against its own label."""


@dataclass(frozen=True)
class AlifRecipe:
    """How the repo's own same-size ALIF comparators were trained (spec section 4, second table)."""

    tau_mem: Tuple[float, float]   # the hidden layer's init, then the training, then the readout's init
    tau_adp: Tuple[float, float]
    lr: float
    batch_size: int
    sub_seq_length: int
    tau_out: Tuple[float, float]
    tbptt: int = 0
    # The ALIF scripts never clip (spec section 4, second table), S-/PS-MNIST included, where the BRF recipe does.
    grad_clip: Optional[float] = None


@dataclass(frozen=True)
class TaskConfig:
    name: str
    input_size: int
    hidden_size: int
    output_size: int
    seq_len: int
    omega_init: Tuple[float, float]
    b_offset_init: Tuple[float, float]
    tau_out: Tuple[float, float]
    loss: str
    accuracy: str
    lr: float
    epochs: int
    batch_size: int
    val_batch_size: int
    test_batch_size: int
    grad_clip: Optional[float]
    alif: AlifRecipe
    bhrf_omega_init: Tuple[float, float]
    bhrf_b_offset_init: Tuple[float, float]
    dt: float = 0.01
    permuted: bool = False
    notes: str = ""
    extra: Dict[str, object] = field(default_factory=dict)

    def with_overrides(self, **changes) -> "TaskConfig":
        return replace(self, **changes)

    def init_kwargs(self, neuron: str) -> Dict[str, object]:
        """The paper's initialisation of this task's network for ``neuron``, as :class:`RecurrentSNN` keywords.

        ``dt`` and ``tau_out_init`` always; ``omega_init``/``b_offset_init`` for the resonators (BHRF has its own
        ranges); ``tau_mem_init``/``tau_adp_init`` (and the ALIF readout's ``tau_out_init``) for ALIF. Every
        network builder (core and adapters) reads the recipe from here.
        """
        if neuron == "alif":
            return dict(dt=self.dt, tau_mem_init=self.alif.tau_mem, tau_adp_init=self.alif.tau_adp,
                        tau_out_init=self.alif.tau_out)
        if neuron == "bhrf":
            return dict(dt=self.dt, omega_init=self.bhrf_omega_init, b_offset_init=self.bhrf_b_offset_init,
                        tau_out_init=self.tau_out)
        return dict(dt=self.dt, omega_init=self.omega_init, b_offset_init=self.b_offset_init,
                    tau_out_init=self.tau_out)


_SMNIST = TaskConfig(
    name="smnist", input_size=1, hidden_size=256, output_size=10, seq_len=784,
    omega_init=(15.0, 50.0), b_offset_init=(0.1, 1.0), tau_out=(20.0, 5.0),
    loss="last", accuracy="last", lr=0.1, epochs=300, batch_size=256, val_batch_size=256, test_batch_size=256,
    grad_clip=1.0,
    alif=AlifRecipe(tau_mem=(20.0, 5.0), tau_adp=(200.0, 50.0), tau_out=(20.0, 5.0), lr=0.001, batch_size=256,
                    sub_seq_length=0, tbptt=50),
    bhrf_omega_init=(15.0, 35.0), bhrf_b_offset_init=(0.1, 1.0),
    notes="sequential MNIST, pixel/255 row-major, label-last loss",
)

TASKS: Dict[str, TaskConfig] = {
    "smnist": _SMNIST,
    # The same network and ALIF recipe as S-MNIST; what differs:
    "psmnist": replace(_SMNIST, name="psmnist", omega_init=(15.0, 85.0), tau_out=(20.0, 1.0), loss="sum",
                       accuracy="mean", bhrf_omega_init=(10.0, 50.0), bhrf_b_offset_init=(1.0, 6.0), permuted=True,
                       notes="permuted sequential MNIST"),
    "ecg": TaskConfig(
        name="ecg", input_size=4, hidden_size=36, output_size=6, seq_len=1300,
        omega_init=(3.0, 5.0), b_offset_init=(0.1, 1.0), tau_out=(20.0, 1.0),
        loss="per_step", accuracy="per_step", lr=0.1, epochs=400, batch_size=16, val_batch_size=61,
        test_batch_size=141, grad_clip=None,
        alif=AlifRecipe(tau_mem=(20.0, 0.5), tau_adp=(7.0, 0.2), tau_out=(20.0, 0.5), lr=0.05, batch_size=64,
                        sub_seq_length=10),
        bhrf_omega_init=(7.0, 11.0), bhrf_b_offset_init=(0.1, 1.0),
        notes="ECG-QTDB wave segmentation, per-step labels, unlabelled steps scored as class 0",
    ),
    "shd": TaskConfig(
        name="shd", input_size=700, hidden_size=128, output_size=20, seq_len=250,
        omega_init=(5.0, 10.0), b_offset_init=(2.0, 3.0), tau_out=(20.0, 5.0),
        loss="sum", accuracy="mean", lr=0.075, epochs=20, batch_size=32, val_batch_size=256, test_batch_size=256,
        grad_clip=None,
        alif=AlifRecipe(tau_mem=(20.0, 5.0), tau_adp=(150.0, 10.0), tau_out=(20.0, 5.0), lr=0.075, batch_size=32,
                        sub_seq_length=10),
        bhrf_omega_init=(3.0, 10.0), bhrf_b_offset_init=(0.1, 1.0),
        notes="Spiking Heidelberg Digits, 250 bins of 4 ms",
    ),
}


def get_task(name: str) -> TaskConfig:
    """The config of a task by name, with a helpful error for unknown names."""
    key = name.lower().replace("-", "").replace("_", "")
    if key not in TASKS:
        raise ValueError(f"unknown task {name!r}; choose one of {', '.join(TASKS)}.")
    return TASKS[key]
