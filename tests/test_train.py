"""The trainer: one short epoch per framework, logs, exact resume (in process and after SIGKILL), atomic
checkpoints, non-finite losses, DDP over gloo with two processes, and the command lines."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from brf_plugins.train import (CSV_COLUMNS, NonFiniteLossError, TrainConfig, adapter_available, build_model,
                               convergence_epochs, recipe, resolve_task, train)
from brf_plugins.train import trainer as trainer_module
from brf_plugins.train.cli import eval_main, train_main
from brf_plugins.train.plots import plot_main, read_history
from brf_plugins.train.state import atomic_torch_save, load_run_file

from .conftest import CHECKPOINTS, DATA_ROOT, REPO_ROOT, needs_data, subprocess_env

TINY = dict(task="synthetic", epochs=2, train_samples=96, val_samples=32, test_samples=32, batch_size=32,
            progress=False, tensorboard=False)


def _states_equal(a, b, atol=0.0):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key], b[key], atol=atol, rtol=0), key


@pytest.mark.parametrize("framework", ["core", "snntorch", "norse"])
def test_one_short_epoch_per_framework_logs_and_checkpoints(tmp_path, framework):
    if not adapter_available(framework):
        pytest.skip(f"{framework} adapter not installed")
    cfg = TrainConfig(**{**TINY, "epochs": 1, "tensorboard": True}, framework=framework, out_dir=str(tmp_path))
    torch.manual_seed(cfg.seed)
    initial = build_model(framework, resolve_task("synthetic"), "brf",
                          generator=torch.Generator().manual_seed(cfg.seed)).state_dict()
    result = train(cfg)
    assert [h["epoch"] for h in result.history] == [0, 1]
    assert result.history[0]["lr"] == pytest.approx(0.1) and result.history[1]["lr"] == pytest.approx(0.0)
    changed = [k for k, v in result.model.state_dict().items() if not torch.equal(v, initial[k])]
    assert changed, "one epoch of Adam at lr 0.1 must move the weights"
    with open(tmp_path / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == CSV_COLUMNS and len(rows) == 2
    assert float(rows[0]["omega_min"]) > 0 and float(rows[0]["train_loss"]) > 0
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    assert load_run_file(tmp_path / "last.pt")["epoch"] == 2
    assert (tmp_path / "best.pt").is_file() and (tmp_path / "summary.json").is_file()
    assert 0.0 <= result.test_accuracy <= 1.0


def test_norse_and_core_train_to_the_same_weights():
    if not adapter_available("norse"):
        pytest.skip("norse adapter not installed")
    cfg = dict(TINY, epochs=1, train_samples=64, lr=0.3)
    core = train(TrainConfig(**cfg, framework="core"))
    norse = train(TrainConfig(**cfg, framework="norse"))
    _states_equal(norse.model.authors_state_dict(), core.model.state_dict(), atol=1e-5)
    assert norse.history[0]["train_loss"] == pytest.approx(core.history[0]["train_loss"], rel=1e-5)


def test_recipe_follows_the_task_and_the_alif_table():
    ecg = recipe(TrainConfig(task="ecg"))
    assert (ecg["lr"], ecg["batch_size"], ecg["grad_clip"], ecg["epochs"], ecg["best_rule"]) == (0.1, 16, None,
                                                                                                  400, "<=")
    alif = recipe(TrainConfig(task="ecg", neuron="alif"))
    assert (alif["lr"], alif["batch_size"], alif["start"]) == (0.05, 64, 10)
    smnist = recipe(TrainConfig(task="smnist", grad_clip=0))
    assert smnist["grad_clip"] is None and recipe(TrainConfig(task="smnist"))["grad_clip"] == 1.0
    # the ALIF scripts never clip, S-MNIST's included (spec section 4, ALIF table), and train with 50-step TBPTT
    smnist_alif = recipe(TrainConfig(task="smnist", neuron="alif"))
    assert (smnist_alif["grad_clip"], smnist_alif["tbptt"], smnist_alif["lr"]) == (None, 50, 0.001)
    assert recipe(TrainConfig(task="smnist", neuron="alif", grad_clip=2.0))["grad_clip"] == 2.0
    # a new best validation loss: strict < in the S-MNIST/SHD BRF scripts, <= in ECG's and in every ALIF script
    assert [recipe(TrainConfig(task=t, neuron=n))["best_rule"] for t, n in
            (("smnist", "brf"), ("psmnist", "rf"), ("shd", "brf"), ("smnist", "alif"), ("shd", "alif"))] == \
        ["<", "<", "<", "<=", "<="]
    assert recipe(TrainConfig(task="ecg", neuron="alif"))["best_rule"] == "<="
    # the core's lif is ALIF without adaptation (its recipe: <=); snnTorch's / Norse's own LIF train as BRF does
    assert recipe(TrainConfig(task="smnist", neuron="lif"))["best_rule"] == "<="
    assert recipe(TrainConfig(task="smnist", neuron="lif", framework="norse"))["best_rule"] == "<"
    assert recipe(TrainConfig(task="synthetic", neuron="brf"))["best_rule"] == "<"
    # snnTorch's / Norse's own LIF baselines train with the BRF recipe, clipping included
    assert recipe(TrainConfig(task="smnist", neuron="lif", framework="snntorch"))["grad_clip"] == 1.0


def test_convergence_epochs():
    # 95 % of 0.95 is 0.9025, 98 % is 0.931
    assert convergence_epochs([0.1, 0.5, 0.91, 0.94, 0.96, 0.95], 0.95) == {"epochs_to_95": 2, "epochs_to_98": 3,
                                                                           "epochs_to_100": 4}
    assert convergence_epochs([0.1, 0.2], 0.5)["epochs_to_95"] is None


def test_resume_after_an_interruption_mid_epoch_gives_the_same_weights(tmp_path, monkeypatch):
    full = train(TrainConfig(**TINY, out_dir=str(tmp_path / "full")))
    calls = {"n": 0}
    real = trainer_module.sequence_loss

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:  # training calls only (evaluation scores through metrics): call 5 is batch 1 of epoch 1
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(trainer_module, "sequence_loss", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(TrainConfig(**TINY, out_dir=str(tmp_path / "cut")))
    assert load_run_file(tmp_path / "cut" / "last.pt")["epoch"] == 1
    monkeypatch.setattr(trainer_module, "sequence_loss", real)
    resumed = train(TrainConfig(**TINY, out_dir=str(tmp_path / "cut"), resume=True))
    _states_equal(resumed.model.state_dict(), full.model.state_dict())
    assert [h["val_loss"] for h in resumed.history] == [h["val_loss"] for h in full.history]
    assert resumed.best_epoch == full.best_epoch and resumed.test_accuracy == full.test_accuracy


def test_resume_checks_the_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="last.pt"):
        train(TrainConfig(**TINY, out_dir=str(tmp_path), resume=True))
    train(TrainConfig(**dict(TINY, epochs=1), out_dir=str(tmp_path)))
    with pytest.raises(ValueError, match="neuron='brf'.*neuron='rf'"):
        train(TrainConfig(**dict(TINY, epochs=1), neuron="rf", out_dir=str(tmp_path), resume=True))


def test_killed_process_resumes_to_the_same_weights(tmp_path):
    epochs = 10  # an epoch of this run is ~0.15 s with the compiled kernels: a window the kill cannot miss
    args = ["--epochs", str(epochs), "--train-samples", "320", "--val-samples", "32", "--test-samples", "32",
            "--batch-size", "32", "--neuron", "brf", "--framework", "core", "--no-progress", "--no-tensorboard"]
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "brf_plugins.train", "synthetic", *args, "--out-dir", str(out)]
    proc = subprocess.Popen(cmd, env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    try:
        while not (out / "last.pt").exists():   # the first epoch is done: kill it inside a later one
            assert proc.poll() is None, "the training process ended before writing a checkpoint"
            assert time.monotonic() < deadline
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    epoch_at_kill = load_run_file(out / "last.pt")["epoch"]
    assert 1 <= epoch_at_kill < epochs + 1, "the kill must land before the run ended"
    subprocess.run(cmd + ["--resume"], env=subprocess_env(), check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=300)
    resumed = load_run_file(out / "last.pt")
    reference = train(TrainConfig(task="synthetic", epochs=epochs, train_samples=320, val_samples=32,
                                  test_samples=32, batch_size=32, progress=False, tensorboard=False))
    _states_equal(resumed["model"], reference.model.state_dict())
    assert resumed["epoch"] == epochs + 1 and len(resumed["history"]) == epochs + 1


def test_a_checkpoint_interrupted_while_written_never_replaces_the_last_good_one(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    atomic_torch_save({"epoch": 1, "w": torch.ones(3)}, path)

    def dying_save(obj, f, *args, **kwargs):
        f.write(b"half a checkpoint")
        raise OSError("No space left on device")

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(OSError, match="No space"):
        atomic_torch_save({"epoch": 2, "w": torch.zeros(3)}, path)
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary file left either
    assert torch.load(path, weights_only=True)["epoch"] == 1


def _nan_on_call(monkeypatch, which):
    calls = {"n": 0}
    real = trainer_module.sequence_loss

    def poisoned(*args, **kwargs):
        loss = real(*args, **kwargs)
        calls["n"] += 1
        return loss * float("nan") if calls["n"] == which else loss

    monkeypatch.setattr(trainer_module, "sequence_loss", poisoned)


def test_nan_loss_stops_naming_the_step_and_parameter_statistics(tmp_path, monkeypatch):
    _nan_on_call(monkeypatch, 5)  # training calls only (evaluation scores through metrics): 3 batches per epoch -> call 5 is batch 1 of epoch 1
    with pytest.raises(NonFiniteLossError) as info:
        train(TrainConfig(**dict(TINY, epochs=3), out_dir=str(tmp_path)))
    message = str(info.value)
    assert "at epoch 1, batch 1 (global step 5)" in message
    assert "hidden.omega (32,): min" in message and "--on-nan skip" in message
    good = load_run_file(tmp_path / "last.pt")
    assert all(torch.isfinite(v).all() for v in good["model"].values())
    assert (tmp_path / "divergence.txt").read_text().startswith("the training loss is nan")


def test_nan_loss_can_skip_the_batch(monkeypatch):
    _nan_on_call(monkeypatch, 1)  # the first training batch
    with pytest.warns(UserWarning, match="batch skipped"):
        result = train(TrainConfig(**TINY, on_nan="skip"))
    assert sum(h.get("skipped_batches", 0) for h in result.history) == 1
    assert all(torch.isfinite(p).all() for p in result.model.parameters())


def test_ddp_gloo_two_processes_match_one_process_with_the_same_global_batch(tmp_path):
    out = tmp_path / "ddp"
    args = ["synthetic", "--framework", "core", "--neuron", "brf", "--epochs", "1", "--train-samples", "128",
            "--val-samples", "32", "--test-samples", "32", "--batch-size", "32", "--max-batches", "2",
            "--lr", "0.3", "--no-progress", "--no-tensorboard", "--out-dir", str(out)]
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                    "-m", "brf_plugins.train", *args], env=subprocess_env(), check=True, timeout=300,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ddp = load_run_file(out / "last.pt")
    single = train(TrainConfig(task="synthetic", epochs=1, train_samples=128, val_samples=32, test_samples=32,
                               batch_size=32, max_batches=2, lr=0.3, progress=False, tensorboard=False))
    assert ddp["history"][0]["train_loss"] == pytest.approx(single.history[0]["train_loss"], rel=1e-6)
    assert ddp["history"][-1]["val_loss"] == pytest.approx(single.history[-1]["val_loss"], rel=1e-5)
    _states_equal(ddp["model"], single.model.state_dict(), atol=1e-5)
    moved = build_model("core", resolve_task("synthetic"), "brf", generator=torch.Generator().manual_seed(0))
    assert not torch.allclose(moved.state_dict()["hidden.linear.weight"], ddp["model"]["hidden.linear.weight"])


def test_brf_train_cli_prints_a_table_and_brf_eval_scores_its_checkpoint(tmp_path, capsys):
    out = tmp_path / "cli"
    assert train_main(["--quick", "--framework", "core", "--neuron", "brf,lif", "--no-progress",
                       "--no-tensorboard", "--out-dir", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "synthetic (core)" in printed and "\nbrf " in printed and "\nlif " in printed
    best = load_run_file(out / "brf" / "best.pt")
    assert eval_main([str(out / "brf" / "best.pt"), "--no-progress"]) == 0
    line = capsys.readouterr().out.splitlines()[-1]
    assert line.startswith("test: accuracy") and f"{100 * best['test_accuracy']:.2f} %" in line
    with pytest.raises(SystemExit):
        train_main(["--neuron", "lstm"])
    # brf-plot reads the runs' metrics.csv back and draws them
    history, saved = read_history(out / "brf"), load_run_file(out / "brf" / "last.pt")["history"]
    assert len(history) == len(saved) > 1
    for row, kept in zip(history, saved):
        for column in ("epoch", "val_loss", "test_accuracy", "lr", "omega_mean"):
            assert row[column] == kept[column], column
    assert plot_main([str(out / "brf"), str(out / "lif"), "--out", str(tmp_path / "curves.png")]) == 0
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "wrote" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        plot_main([str(tmp_path / "no_run")])
    assert "no metrics.csv at" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        plot_main([str(out / "brf"), "--labels", "a", "b"])
    assert "--labels got 2 labels for 1 runs" in capsys.readouterr().err


@needs_data("reference_checkpoints", "ecg_brf.pt")
def test_brf_eval_scores_an_authors_checkpoint(capsys):
    assert eval_main([str(CHECKPOINTS / "ecg_brf.pt"), "--data-root", str(DATA_ROOT), "--samples", "8",
                      "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "ecg brf (core), authors' checkpoint ecg_brf.pt" in out and "(10400 scored)" in out


def test_time_limit_stops_before_an_epoch_that_would_not_fit_and_resume_continues(tmp_path):
    result = train(TrainConfig(**TINY, time_limit=0.0, out_dir=str(tmp_path)))
    assert result.stopped_early and [h["epoch"] for h in result.history] == [0]
    assert "train_loss" not in result.history[0] and result.best_epoch == 0
    resumed = train(TrainConfig(**TINY, out_dir=str(tmp_path), resume=True))
    full = train(TrainConfig(**TINY))
    _states_equal(resumed.model.state_dict(), full.model.state_dict())
    assert [h["epoch"] for h in resumed.history] == [0, 1, 2]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["final_epoch"] == 2 and not summary["stopped_early"]
    assert summary["run_seconds"] == pytest.approx(sum(h["epoch_seconds"] for h in read_history(tmp_path)))


def test_stop_after_epochs_keeps_the_schedule_and_resume_matches_an_uninterrupted_run(tmp_path):
    config = dict(TINY, epochs=3)
    first = train(TrainConfig(**config, stop_after_epochs=1, out_dir=str(tmp_path)))
    assert first.stopped_early and [h["epoch"] for h in first.history] == [0, 1]
    assert "train_loss" in first.history[0] and "train_loss" not in first.history[1]
    assert first.history[1]["lr"] == pytest.approx(0.1 * (1 - 1 / 3))   # the 3-epoch schedule, not a 1-epoch one
    resumed = train(TrainConfig(**config, out_dir=str(tmp_path), resume=True))
    full = train(TrainConfig(**config))
    _states_equal(resumed.model.state_dict(), full.model.state_dict())
    assert [h["lr"] for h in resumed.history] == pytest.approx([h["lr"] for h in full.history])
    assert not resumed.stopped_early
    with pytest.raises(ValueError, match=r"nothing to do: .* already trained 3 epochs.*--stop-after-epochs"):
        train(TrainConfig(**config, stop_after_epochs=2, out_dir=str(tmp_path), resume=True))


@pytest.mark.parametrize("change, message", [(dict(stop_after_epochs=0), "`stop_after_epochs` must be"),
                                             (dict(stop_after_epochs=1.5), "`stop_after_epochs` must be"),
                                             (dict(time_limit=-1.0), "`time_limit` must be"),
                                             (dict(time_limit=float("nan")), "`time_limit` must be")])
def test_bad_stop_conditions_are_rejected_before_training(change, message, tmp_path):
    with pytest.raises((TypeError, ValueError), match=message):
        train(TrainConfig(**TINY, out_dir=str(tmp_path), **change))
    assert not any(tmp_path.iterdir())   # nothing written


def test_missing_adapter_gives_an_install_hint_and_core_still_works(monkeypatch):
    monkeypatch.setitem(sys.modules, "snntorch_ext", None)  # None in sys.modules: "import snntorch_ext" fails
    monkeypatch.setitem(sys.modules, "norse_ext", None)
    from brf_plugins.train import AdapterMissingError
    with pytest.raises(AdapterMissingError, match=r"pip install 'brf-plugins\[norse\]'.*framework='core'"):
        build_model("norse", resolve_task("ecg"))
    assert not adapter_available("snntorch")
    assert build_model("core", resolve_task("ecg")).hidden.neuron == "brf"


def test_snntorch_rate_loss_and_accuracy_are_the_summed_and_mean_rules():
    SF = pytest.importorskip("snntorch.functional")
    from brf_plugins.metrics import accuracy, sequence_loss
    from brf_plugins.train.trainer import _training_loss
    readout = torch.randn(40, 8, 5, dtype=torch.float64)
    labels = torch.randint(0, 5, (8,))
    snn_loss = _training_loss("snntorch", dict(loss="sum", start=0))(readout, labels, "sum", 0)
    # snnTorch accumulates the per-step losses in float32 whatever the input dtype
    assert float(snn_loss) == pytest.approx(float(sequence_loss(readout, labels, "sum")), rel=1e-6)
    assert float(SF.accuracy_rate(readout, labels)) == pytest.approx(accuracy(readout, labels, "mean"))


@pytest.mark.parametrize("neuron", ["brf", "rf", "bhrf", "alif"])
def test_same_generator_gives_the_same_initial_network_in_every_framework(neuron):
    from brf_plugins.train.tasks import resolve_task
    cfg = resolve_task("ecg")
    core = build_model("core", cfg, neuron, generator=torch.Generator().manual_seed(5)).state_dict()
    for framework in ("snntorch", "norse"):
        adapter = build_model(framework, cfg, neuron, generator=torch.Generator().manual_seed(5))
        weights = adapter.authors_state_dict()
        for key, value in core.items():
            assert torch.equal(weights[key], value), (framework, key)


@pytest.mark.parametrize("ablation", ["brf-no-rp", "rf-smr", "rf-soft", "rf-hard"])
def test_ablations_build_the_same_network_in_every_framework(ablation):
    from brf_plugins.analysis.ablations import ablation_kwargs
    from brf_plugins.train.tasks import resolve_task
    options = ablation_kwargs(ablation)
    neuron = options.pop("neuron")
    cfg = resolve_task("ecg")
    x = torch.rand(60, 3, cfg.input_size, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 30
    outputs = {}
    for framework in ("core", "snntorch", "norse"):
        model = build_model(framework, cfg, neuron, generator=torch.Generator().manual_seed(5), **options).double()
        outputs[framework] = model(x, record=True)
    assert outputs["core"].hidden_spikes.sum() > 0
    for framework in ("snntorch", "norse"):
        assert torch.equal(outputs[framework].hidden_spikes, outputs["core"].hidden_spikes), framework
        torch.testing.assert_close(outputs[framework].readout, outputs["core"].readout, rtol=1e-9, atol=1e-6)


def test_cli_ablation_sets_neuron_and_switches(tmp_path, capsys):
    out = tmp_path / "run"
    assert train_main(["synthetic", "--quick", "--framework", "core", "--ablation", "brf-no-rp", "--out-dir",
                       str(out), "--no-progress", "--no-tensorboard"]) == 0
    config = load_run_file(out / "last.pt")["config"]
    assert config["neuron"] == "brf" and config["model_kwargs"] == {"refractory": False}
    with pytest.raises(SystemExit) as info:  # a usage error: one line and exit status 2
        train_main(["synthetic", "--quick", "--ablation", "rf", "--neuron", "brf", "--out-dir", str(out)])
    assert info.value.code == 2 and "brf-train: error: give --ablation or --neuron" in capsys.readouterr().err


def test_cli_default_out_dir_is_runs_task_framework(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert train_main(["synthetic", "--quick", "--framework", "core", "--neuron", "brf", "--no-progress",
                       "--no-tensorboard"]) == 0
    assert (tmp_path / "runs" / "synthetic-core" / "last.pt").is_file()
    assert train_main(["synthetic", "--quick", "--framework", "core", "--ablation", "rf-soft", "--no-progress",
                       "--no-tensorboard"]) == 0
    assert (tmp_path / "runs" / "synthetic-core-rf-soft" / "last.pt").is_file()
