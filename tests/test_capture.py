"""The captured training step (brf-train --cuda-graph) on CPU: the graph protocol replayed by re-running the
recorded body (``capture._Rerun``), so the static buffers, the undone warm-up, the tensor learning rate and the
trainer's checks are tested without a GPU (``benchmarks/gpu_check.sh`` runs the real CUDA graphs)."""

import pytest
import torch

import brf_plugins.train.trainer as trainer
from brf_plugins import RecurrentSNN
from brf_plugins.train import TrainConfig, train
from brf_plugins.train.capture import CapturedTrainStep, _Rerun, keep_tensor_lr
from brf_plugins.train.cli import train_main
from brf_plugins.train.trainer import DivergenceError

TINY = dict(task="synthetic", epochs=2, train_samples=80, val_samples=32, test_samples=32, progress=False,
            tensorboard=False)


def _loss(out, y):
    return torch.nn.functional.cross_entropy(out.readout.mean(0), y)


def _net(seed=0):
    torch.manual_seed(seed)
    return RecurrentSNN(2, 8, 3, omega_init=(5.0, 10.0)).double()


def _batches(n, shape=(30, 4, 2)):
    g = torch.Generator().manual_seed(1)
    return [(torch.rand(*shape, generator=g, dtype=torch.float64) * 4, torch.randint(0, 3, (shape[1],), generator=g))
            for _ in range(n)]


def test_captured_step_equals_the_eager_steps_and_undoes_its_warm_up():
    eager, captured = _net(), _net()
    opt_a = torch.optim.Adam(eager.parameters(), lr=1e-2)
    lr = torch.tensor(1e-2, dtype=torch.float64)
    opt_b = torch.optim.Adam(captured.parameters(), lr=lr, foreach=False)
    step = CapturedTrainStep(captured, opt_b, _loss, grad_clip=0.5, output_of=lambda out: out.readout,
                             graphs=_Rerun())
    for x, y in _batches(4):
        opt_a.zero_grad()
        loss_a = _loss(eager(x), y)
        loss_a.backward()
        torch.nn.utils.clip_grad_norm_(eager.parameters(), 0.5)
        opt_a.step()
        loss_b, readout, finite = step(x, y)
        assert bool(finite) and readout.shape == (30, 4, 3)
        torch.testing.assert_close(loss_b, loss_a.detach(), rtol=1e-12, atol=0)
    for p, q in zip(eager.parameters(), captured.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-10, atol=1e-12)
    assert int(opt_b.state[next(captured.parameters())]["step"]) == 4   # the 3 warm-up steps were undone


def test_captured_step_has_static_shapes_and_flags_non_finite_batches():
    net = _net()
    opt = torch.optim.SGD(net.parameters(), lr=1e-3)
    scale = torch.tensor(1.0, dtype=torch.float64)   # read by the recorded body, as a graph reads its buffers
    step = CapturedTrainStep(net, opt, lambda out, y: _loss(out, y) * scale, graphs=_Rerun(), warmup=1)
    (x, y), = _batches(1)
    assert bool(step(x, y)[2])
    assert step.accepts(x, y) and not step.accepts(x[:, :2], y[:2])
    with pytest.raises(ValueError, match="static shapes"):
        step(x[:, :2], y[:2])
    scale.fill_(float("inf"))
    loss, _, finite = step(x, y)
    assert not bool(finite) and not torch.isfinite(loss)


def test_the_cuda_backend_needs_a_capturable_optimizer():
    net = _net()
    with pytest.raises(ValueError, match="capturable=True"):
        CapturedTrainStep(net, torch.optim.Adam(net.parameters(), lr=1e-3), _loss)


def test_keep_tensor_lr_updates_the_captured_tensor_in_place():
    net = _net()
    lr = torch.tensor(0.1)
    opt = torch.optim.Adam(net.parameters(), lr=lr, foreach=False)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda e: 1.0 - e / 4)
    sched.step()
    keep_tensor_lr(opt, [lr])
    assert opt.param_groups[0]["lr"] is lr and float(lr) == pytest.approx(0.075)


class _CountingRerun(_Rerun):
    replays = 0

    def replay(self):
        type(self).replays += 1
        super().replay()


@pytest.fixture
def rerun_graphs(monkeypatch):
    _CountingRerun.replays = 0
    monkeypatch.setattr(trainer, "_graph_backend", lambda cfg, rules, distributed: _CountingRerun())


def test_trainer_with_captured_steps_trains_as_the_eager_trainer(rerun_graphs):
    eager = train(TrainConfig(**TINY))
    graphed = train(TrainConfig(**TINY, cuda_graph=True))   # 64 + 16 samples: a replayed and an eager batch
    assert _CountingRerun.replays == 2                        # the full batch of each of the 2 epochs
    for (name, p), (_, q) in zip(eager.model.named_parameters(), graphed.model.named_parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6, msg=name)
    for a, b in zip(eager.history, graphed.history):
        assert a["lr"] == pytest.approx(b["lr"]) and isinstance(b["lr"], float)
        assert a["test_accuracy"] == b["test_accuracy"]


def test_a_run_switches_between_eager_and_captured_steps_on_resume(rerun_graphs, tmp_path):
    out = str(tmp_path / "run")
    train(TrainConfig(**dict(TINY, epochs=1), out_dir=out))
    resumed = train(TrainConfig(**TINY, out_dir=out, resume=True, allow_recipe_change=True, cuda_graph=True))
    assert resumed.final_epoch == 2
    again = train(TrainConfig(**dict(TINY, epochs=3), out_dir=out, resume=True, allow_recipe_change=True))
    assert again.final_epoch == 3


def test_a_non_finite_captured_step_stops_the_run_saying_the_update_was_applied():
    net = _net()
    params = list(net.parameters())
    stepper = trainer._Stepper(net, net, torch.optim.SGD(params, lr=1.0), params, None, "stop", False, 0)

    def graph(x, y):
        for p in params:
            p.grad = torch.full_like(p, float("nan"))
        return torch.tensor(1.0), torch.zeros(1), torch.tensor(False)

    with pytest.raises(DivergenceError, match="had applied its update already") as info:
        stepper.replay(graph, None, None)
    assert info.value.kind == "gradients"


def test_cuda_graph_errors_name_the_option_and_the_fix(capsys):
    with pytest.raises(ValueError, match="needs a CUDA device"):
        train(TrainConfig(**TINY, cuda_graph=True))
    with pytest.raises(ValueError, match="cannot skip a batch"):
        train(TrainConfig(**TINY, cuda_graph=True, on_nan="skip"))
    assert train_main(["--quick", "--cuda-graph", "--no-progress", "--no-tensorboard", "--framework", "core",
                       "--out-dir", "/nonexistent-not-created"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--cuda-graph" in err[0] and "CUDA device" in err[0]


def test_tbptt_recipes_are_refused(monkeypatch):
    monkeypatch.setattr(trainer.torch.cuda, "is_available", lambda: True)
    cfg = TrainConfig(task="smnist", neuron="alif", device="cuda", cuda_graph=True)
    with pytest.raises(ValueError, match="TBPTT"):
        trainer._graph_backend(cfg, trainer.recipe(cfg), False)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_brf_train_with_cuda_graphs_trains_as_eagerly_on_the_gpu():
    base = dict(TINY, device="cuda", threads=None)
    eager = train(TrainConfig(**base))
    graphed = train(TrainConfig(**base, cuda_graph=True))
    for (name, p), (_, q) in zip(eager.model.named_parameters(), graphed.model.named_parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5, msg=name)
    assert [h["test_accuracy"] for h in eager.history] == [h["test_accuracy"] for h in graphed.history]
