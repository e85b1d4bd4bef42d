"""Reliability of brf-train / brf-eval / brf-plot: divergence, run folders (lock, reuse, --force), recipe checks on
resume, corrupt and unwritable checkpoints, file modes and temporary files, one-line CLI errors, Ctrl-C, TBPTT."""

import dataclasses
import errno
import json
import os
import signal
import stat
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch

from brf_plugins import _io
from brf_plugins.metrics import sequence_loss
from brf_plugins.train import (CheckpointCorruptError, DivergenceError, NonFiniteLossError, RecipeChangedError,
                               RunExistsError, RunFolderInUseError, TrainConfig, adapter_available, build_model,
                               recipe, train)
from brf_plugins.train import trainer as trainer_module
from brf_plugins.train.cli import eval_main, train_main
from brf_plugins.train.plots import MetricsFormatError, plot_main, read_history
from brf_plugins.train.state import LOCK_NAME, RunLock, atomic_torch_save, load_run_file
from brf_plugins.train.tasks import SYNTHETIC

from .conftest import CHECKPOINTS, needs_data, subprocess_env

TINY = dict(task="synthetic", epochs=2, train_samples=96, val_samples=32, test_samples=32, batch_size=32,
            progress=False, tensorboard=False, framework="core")
CLI_TINY = ["synthetic", "--framework", "core", "--neuron", "brf", "--epochs", "1", "--train-samples", "64",
            "--val-samples", "32", "--test-samples", "32", "--batch-size", "32", "--no-progress", "--no-tensorboard"]


def _finite(state):
    return all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())


def _error_line(capsys):
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1, err
    assert "Traceback" not in err[0]
    return err[0]


# -- divergence ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("framework", ["core", "snntorch", "norse"])
@pytest.mark.parametrize("lr", [100.0, 1e3, 1e30])
def test_a_diverging_run_stops_with_the_step_and_never_saves_a_non_finite_model(tmp_path, framework, lr):
    if not adapter_available(framework):
        pytest.skip(f"{framework} adapter not installed")
    with pytest.raises(DivergenceError) as info:
        train(TrainConfig(**dict(TINY, epochs=3, framework=framework, lr=lr), out_dir=str(tmp_path)))
    err = info.value
    assert err.kind in ("gradients", "parameters") and err.step >= 1 and err.batch is not None
    assert err.tensors and all(name in err.statistics for name in err.tensors)
    assert f"at epoch {err.epoch}, batch {err.batch} (global step {err.step})" in str(err)
    assert (tmp_path / "divergence.txt").read_text().startswith(str(err).split("\n")[0])
    assert _finite(load_run_file(tmp_path / "best.pt")["model"])       # the untrained epoch-0 model at worst
    if (tmp_path / "last.pt").exists():
        last = load_run_file(tmp_path / "last.pt")
        assert _finite(last["model"]) and last["epoch"] <= err.epoch
    assert not (tmp_path / "summary.json").exists()


def test_parameters_made_non_finite_by_an_update_stop_even_under_skip(tmp_path):
    with pytest.raises(DivergenceError) as info:  # an infinite step size: finite gradients, non-finite parameters
        train(TrainConfig(**dict(TINY, lr=float("inf"), on_nan="skip")))
    err = info.value
    assert (err.kind, err.epoch, err.batch, err.step) == ("parameters", 0, 0, 1)
    assert "hidden.omega" in err.tensors and err.statistics["hidden.omega"]["non_finite"] > 0
    assert "became non-finite after the optimizer step at epoch 0, batch 0 (global step 1)" in str(err)
    assert "cannot undo" in err.summary and "\n" not in err.summary


class _NanGradient(torch.autograd.Function):
    """Identity forward (a finite loss), NaN backward (non-finite gradients)."""

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad * float("nan")


def _poison(monkeypatch, which, how):
    calls = {"n": 0}
    real = trainer_module.sequence_loss

    def poisoned(*args, **kwargs):
        loss = real(*args, **kwargs)
        calls["n"] += 1
        return how(loss) if which is None or calls["n"] in which else loss

    monkeypatch.setattr(trainer_module, "sequence_loss", poisoned)


def test_non_finite_gradients_with_a_finite_loss_stop_or_skip(monkeypatch):
    _poison(monkeypatch, {2}, _NanGradient.apply)
    with pytest.raises(DivergenceError) as info:
        train(TrainConfig(**TINY))
    assert not isinstance(info.value, NonFiniteLossError)
    assert info.value.kind == "gradients" and (info.value.epoch, info.value.batch, info.value.step) == (0, 1, 2)
    assert "hidden.linear.weight" in info.value.tensors and "--on-nan skip" in str(info.value)
    _poison(monkeypatch, {2}, _NanGradient.apply)
    with pytest.warns(UserWarning, match="non-finite training gradients at epoch 0, batch 1: batch skipped"):
        result = train(TrainConfig(**dict(TINY, on_nan="skip")))
    assert [h.get("skipped_batches") for h in result.history[:2]] == [1, 0]
    assert [h.get("steps") for h in result.history[:2]] == [2, 3]
    assert all(torch.isfinite(p).all() for p in result.model.parameters())


def test_skip_refuses_an_epoch_whose_every_batch_is_non_finite(monkeypatch):
    _poison(monkeypatch, None, lambda loss: loss * float("nan"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DivergenceError, match="every training batch of epoch 0 had a non-finite loss") as info:
            train(TrainConfig(**dict(TINY, on_nan="skip")))
    assert info.value.kind == "all batches skipped"


def test_a_non_finite_validation_loss_stops_the_run(tmp_path, monkeypatch):
    real = trainer_module._evaluate
    calls = {"n": 0}

    def evaluate(*args, **kwargs):
        calls["n"] += 1
        result = real(*args, **kwargs)
        return dataclasses.replace(result, loss=float("nan")) if calls["n"] == 3 else result  # epoch 1's val

    monkeypatch.setattr(trainer_module, "_evaluate", evaluate)
    with pytest.raises(DivergenceError, match="the validation loss is nan at epoch 1") as info:
        train(TrainConfig(**TINY, out_dir=str(tmp_path)))
    assert info.value.kind == "validation loss"
    assert load_run_file(tmp_path / "best.pt")["epoch"] == 0 and load_run_file(tmp_path / "last.pt")["epoch"] == 1


def test_the_divergence_check_is_two_fused_reductions_per_step(monkeypatch):
    calls = {"n": 0}
    real = torch._foreach_norm

    def counting(tensors, *args, **kwargs):
        calls["n"] += 1
        return real(tensors, *args, **kwargs)

    monkeypatch.setattr(torch, "_foreach_norm", counting)
    result = train(TrainConfig(**dict(TINY, epochs=1)))
    assert result.history[0]["steps"] == 3 and calls["n"] == 2 * 3  # loss+gradients, then parameters


def test_all_finite_sees_nan_and_inf_in_any_tensor():
    f = trainer_module._all_finite
    ok = [torch.ones(3), torch.zeros(2, 2, dtype=torch.float64), torch.tensor(3.0)]
    assert bool(f(ok)) and bool(f([])) and bool(f([None, torch.ones(0)]))
    assert bool(f([torch.full((4,), 3e38)]))  # max-abs cannot overflow where a 2-norm would
    for bad in (float("nan"), float("inf"), -float("inf")):
        tensor = torch.ones(5)
        tensor[3] = bad
        assert not bool(f(ok + [tensor])), bad


def test_brf_train_reports_a_divergence_in_one_line_and_exits_3(tmp_path, capsys):
    code = train_main(CLI_TINY + ["--lr", "inf", "--out-dir", str(tmp_path)])
    line = _error_line(capsys)
    assert code == 3
    assert line.startswith("brf-train: error: training diverged: the parameters ")
    assert "global step 1" in line and "--lr" in line and line.endswith(f"Statistics in {tmp_path / 'divergence.txt'}.")
    assert "hidden.omega" in (tmp_path / "divergence.txt").read_text()


# -- run folders --------------------------------------------------------------------------------------------

def test_a_used_folder_is_refused_and_force_moves_the_old_run_aside(tmp_path):
    train(TrainConfig(**TINY, out_dir=str(tmp_path)))
    best = (tmp_path / "best.pt").read_bytes()
    with pytest.raises(RunExistsError, match=r"already holds a run \(last.pt, best.pt, metrics.csv, summary.json, "
                                             r"run.log\): pass --resume to continue it, --force"):
        train(TrainConfig(**dict(TINY, epochs=1), out_dir=str(tmp_path)))
    assert (tmp_path / "best.pt").read_bytes() == best
    with pytest.warns(UserWarning, match="--force: moved the previous run's last.pt, best.pt"):
        train(TrainConfig(**dict(TINY, epochs=1), out_dir=str(tmp_path), force=True))
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("replaced-")]
    assert len(aside) == 1 and (aside[0] / "best.pt").read_bytes() == best
    assert load_run_file(tmp_path / "last.pt")["epoch"] == 2  # the new 1-epoch run
    log = (tmp_path / "run.log").read_text()
    assert "--force: moved the previous run's" in log and str(aside[0]) in log
    with pytest.raises(ValueError, match="not both"):
        train(TrainConfig(**TINY, out_dir=str(tmp_path), force=True, resume=True))


def test_a_second_brf_train_on_a_locked_folder_fails_at_once_and_ctrl_c_gives_the_resume_command(tmp_path):
    out = tmp_path / "run"
    args = ["synthetic", "--framework", "core", "--neuron", "brf", "--epochs", "1000", "--train-samples", "320",
            "--val-samples", "32", "--test-samples", "32", "--batch-size", "32", "--no-progress",
            "--no-tensorboard", "--out-dir", str(out)]
    cmd = [sys.executable, "-m", "brf_plugins.train", *args]
    first = subprocess.Popen(cmd, env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not ((out / "last.pt").exists() and f"pid={first.pid}" in (out / LOCK_NAME).read_text()):
            assert first.poll() is None and time.monotonic() < deadline, "the first run ended early"
            time.sleep(0.05)
        second = subprocess.run(cmd + ["--resume"], env=subprocess_env(), capture_output=True, text=True, timeout=120)
        assert second.returncode == 2
        lines = [line for line in second.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith(f"brf-train: error: run folder {out} is in use by another "
                                                       f"brf-train run (pid {first.pid} on ")
        first.send_signal(signal.SIGINT)
        _, err = first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == 130
    assert "Traceback" not in err
    assert f"brf-train: interrupted; last.pt in {out} keeps the last finished epoch; continue with: brf-train " \
           f"synthetic" in err and err.strip().endswith("--resume")
    with pytest.raises(RunExistsError):  # the lock went with the process; the folder still holds the run
        train(TrainConfig(**TINY, out_dir=str(out)))


def test_the_lock_names_its_holder_and_is_released(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", "import sys; from brf_plugins.train.state import RunLock; "
                               f"RunLock({str(tmp_path)!r}).acquire(); print('locked', flush=True); sys.stdin.read()"],
                              env=subprocess_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunFolderInUseError, match=f"pid {holder.pid} on ") as info:
            train(TrainConfig(**TINY, out_dir=str(tmp_path)))
        assert info.value.pid == holder.pid
        assert not (tmp_path / "best.pt").exists()  # refused before anything was written
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    with RunLock(tmp_path):  # free again once the holder ended
        pass


# -- recipe on resume ---------------------------------------------------------------------------------------

def test_resume_refuses_a_changed_recipe_and_lists_every_difference(tmp_path):
    train(TrainConfig(**TINY, out_dir=str(tmp_path)))
    with pytest.raises(RecipeChangedError) as info:
        train(TrainConfig(**dict(TINY, epochs=4, lr=0.05, batch_size=16, train_samples=64), out_dir=str(tmp_path),
                          resume=True))
    message = str(info.value)
    for part in ("epochs 2 -> 4", "lr 0.1 -> 0.05", "batch_size 32 -> 16", "train_samples 96 -> 64",
                 "--allow-recipe-change"):
        assert part in message, part
    assert set(info.value.differences) == {"epochs", "lr", "batch_size", "train_samples"}
    with pytest.raises(RecipeChangedError, match="it was trained with data_seed=0, this run has data_seed=1"):
        train(TrainConfig(**TINY, data_seed=1, out_dir=str(tmp_path), resume=True, allow_recipe_change=True))
    with pytest.raises(RecipeChangedError, match="already trained 2 epochs"):
        train(TrainConfig(**dict(TINY, epochs=1), out_dir=str(tmp_path), resume=True, allow_recipe_change=True))
    # the same recipe spelled through the defaults is no change: epochs=None is the task's 5, not 2
    assert recipe(TrainConfig(task="synthetic"))["epochs"] == 5


def test_extending_a_finished_run_trains_the_new_epochs_on_the_documented_schedule(tmp_path):
    finished = train(TrainConfig(**TINY, out_dir=str(tmp_path)))
    with pytest.warns(UserWarning, match="changed recipe \\(epochs 2 -> 4\\)"):
        extended = train(TrainConfig(**dict(TINY, epochs=4), out_dir=str(tmp_path), resume=True,
                                     allow_recipe_change=True))
    rows = extended.history
    assert [h["epoch"] for h in rows] == [0, 1, 2, 3, 4]
    assert ["train_loss" in h for h in rows] == [True, True, True, True, False]
    # lr_e = 0.1 (1 - e/E): epochs 0, 1 ran on the 2-epoch schedule, 2 and 3 on the 4-epoch one
    assert [h["lr"] for h in rows] == pytest.approx([0.1, 0.05, 0.05, 0.025, 0.0])
    assert rows[:2] == finished.history[:2] and rows[2]["val_loss"] == finished.history[2]["val_loss"]
    assert not torch.equal(extended.model.hidden.linear.weight, finished.model.hidden.linear.weight)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["recipe_changes"] == [{"epoch": 2, "changes": {"epochs": [2, 4]}}]
    assert summary["final_epoch"] == 4
    assert "resumed at epoch 2 with a changed recipe: epochs 2 -> 4; lr of epoch e = 0.1 * (1 - e/4)" in \
        (tmp_path / "run.log").read_text()
    assert load_run_file(tmp_path / "last.pt")["recipe"]["epochs"] == 4


def test_a_changed_lr_on_an_unfinished_run_applies_from_the_resume_epoch(tmp_path):
    train(TrainConfig(**dict(TINY, epochs=3), time_limit=0.0, out_dir=str(tmp_path)))  # epoch 0 evaluated only
    with pytest.warns(UserWarning, match="lr 0.1 -> 0.3"):
        result = train(TrainConfig(**dict(TINY, epochs=3, lr=0.3), out_dir=str(tmp_path), resume=True,
                                   allow_recipe_change=True))
    assert [h["lr"] for h in result.history] == pytest.approx([0.3, 0.2, 0.1, 0.0])


# -- corrupt files, full disk, modes, temporaries -----------------------------------------------------------

class _Unsafe:
    pass


@pytest.mark.parametrize("damage", ["empty", "truncated", "garbage", "pickled object"])
def test_a_corrupt_last_pt_names_the_file_and_never_suggests_weights_only_false(tmp_path, damage, capsys):
    train(TrainConfig(**dict(TINY, epochs=1), out_dir=str(tmp_path)))
    path = tmp_path / "last.pt"
    data = path.read_bytes()
    if damage == "pickled object":
        torch.save({"format": "brf-plugins-run", "x": _Unsafe()}, path)
    else:
        path.write_bytes({"empty": b"", "truncated": data[: len(data) // 2], "garbage": b"not a checkpoint " * 8}[damage])
    with pytest.raises(CheckpointCorruptError) as info:
        train(TrainConfig(**dict(TINY, epochs=1), out_dir=str(tmp_path), resume=True))
    message = str(info.value)
    assert message.startswith(f"checkpoint {path} cannot be loaded: ") and info.value.path == path
    expected = {"empty": "it is empty (0 bytes): truncated", "truncated": "it is truncated or corrupt",
                "garbage": "it is corrupt", "pickled object": "it was not written by brf-train"}[damage]
    assert expected in message and "weights_only" not in message
    assert train_main(CLI_TINY + ["--out-dir", str(tmp_path), "--resume"]) == 2
    assert _error_line(capsys) == f"brf-train: error: {message}"
    assert eval_main([str(path), "--no-progress"]) == 2
    assert _error_line(capsys) == f"brf-eval: error: {message}"


def test_a_resume_from_non_finite_weights_is_refused(tmp_path):
    train(TrainConfig(**dict(TINY, epochs=1), out_dir=str(tmp_path)))
    blob = load_run_file(tmp_path / "last.pt")
    blob["model"]["hidden.omega"][0] = float("nan")
    atomic_torch_save(blob, tmp_path / "last.pt")
    with pytest.raises(CheckpointCorruptError, match="holds non-finite weights"):
        train(TrainConfig(**dict(TINY, epochs=1), out_dir=str(tmp_path), resume=True))


@pytest.mark.parametrize("failure", [OSError(errno.ENOSPC, "No space left on device"),
                                     RuntimeError("[enforce fail at inline_container.cc:603] . unexpected pos 64 "
                                                  "vs 0")])
def test_a_full_disk_names_the_file_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch, failure, capsys):
    path = tmp_path / "last.pt"
    atomic_torch_save({"epoch": 1}, path)

    def full(obj, f, *args, **kwargs):
        f.write(b"partial")
        raise failure

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(_io.DiskFullError) as info:
        atomic_torch_save({"epoch": 2}, path)
    assert info.value.errno == errno.ENOSPC
    assert str(info.value).startswith(f"cannot write {path}: No space left on device (")
    assert f"free on {tmp_path}); the previous last.pt is kept" in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]
    monkeypatch.undo()
    assert torch.load(path, weights_only=True) == {"epoch": 1}
    monkeypatch.setattr(torch, "save", full)
    assert train_main(CLI_TINY + ["--out-dir", str(tmp_path / "run")]) == 2
    line = _error_line(capsys)
    assert line.startswith(f"brf-train: error: cannot write {tmp_path / 'run' / 'best.pt'}: No space left on device")


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_checkpoints_and_logs_get_the_umask_mode(tmp_path, umask):
    old = os.umask(umask)
    try:
        train(TrainConfig(**dict(TINY, epochs=1, tensorboard=True), out_dir=str(tmp_path)))
        (tmp_path / "metrics.csv").chmod(0o640)
        train(TrainConfig(**dict(TINY, epochs=1), out_dir=str(tmp_path / "again")))
    finally:
        os.umask(old)
    expected = 0o666 & ~umask
    for name in ("last.pt", "best.pt", "summary.json", "run.log", LOCK_NAME):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == expected, name
    assert stat.S_IMODE((tmp_path / "metrics.csv").stat().st_mode) == 0o640  # chmod survives (as with open())
    events = list((tmp_path / "tensorboard").glob("events.*"))
    assert events and stat.S_IMODE(events[0].stat().st_mode) == expected


def test_temporary_files_are_removed_on_failure_and_stale_ones_of_killed_writers_are_cleaned(tmp_path,
                                                                                             monkeypatch):
    path = tmp_path / "last.pt"

    def interrupted(obj, f, *args, **kwargs):
        f.write(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_torch_save({"epoch": 1}, path)
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".last.pt.{dead.pid}.abc123.tmp"
    alive = tmp_path / f".last.pt.{os.getppid()}.def456.tmp"   # a running writer: left alone
    other = tmp_path / f".best.pt.{dead.pid}.ghi789.tmp"
    for p in (stale, alive, other):
        p.write_bytes(b"half a checkpoint")
    atomic_torch_save({"epoch": 1}, path)
    assert not stale.exists() and alive.exists() and other.exists()
    with pytest.warns(UserWarning, match="--force: moved the previous run.s last.pt"):
        train(TrainConfig(**dict(TINY, epochs=1), out_dir=str(tmp_path), force=True))  # a run cleans its folder
    assert not other.exists() and alive.exists()


# -- one-line CLI errors ------------------------------------------------------------------------------------

def test_cli_errors_are_one_line_with_exit_2_and_traceback_on_request(tmp_path, capsys):
    assert train_main(CLI_TINY + ["--out-dir", str(tmp_path / "none"), "--resume"]) == 2
    assert _error_line(capsys).startswith("brf-train: error: `resume=True` but ")
    assert train_main(CLI_TINY + ["--out-dir", str(tmp_path / "none"), "--resume", "--traceback"]) == 2
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and err.strip().splitlines()[-1].startswith("brf-train: error:")
    for argv, text in ((["--epochs", "x"], "argument --epochs: invalid int value: 'x'"),
                       (["--neuron", "lstm"], "--neuron 'lstm' is not one of"),
                       (["--resume", "--force"], "give --resume (continue the run) or --force"),
                       (["--allow-recipe-change"], "--allow-recipe-change only applies with --resume"),
                       (["--set", "omega"], "--set takes KEY=VALUE")):
        with pytest.raises(SystemExit) as info:
            train_main(argv)
        assert info.value.code == 2
        line = _error_line(capsys)
        assert line.startswith("brf-train: error: ") and text in line, line
    assert train_main(CLI_TINY + ["--out-dir", str(tmp_path / "used")]) == 0
    capsys.readouterr()
    assert train_main(CLI_TINY + ["--out-dir", str(tmp_path / "used")]) == 2
    assert "already holds a run" in _error_line(capsys)
    assert train_main(CLI_TINY[:6] + ["2"] + CLI_TINY[7:] + ["--out-dir", str(tmp_path / "used"), "--resume"]) == 2
    assert "the recipe differs from the run's (epochs 1 -> 2)" in _error_line(capsys)


def test_ctrl_c_in_process_prints_the_resume_command(tmp_path, monkeypatch, capsys):
    def interrupt(cfg):
        (Path(cfg.out_dir) / "last.pt").parent.mkdir(parents=True, exist_ok=True)
        (Path(cfg.out_dir) / "last.pt").write_bytes(b"")
        raise KeyboardInterrupt

    monkeypatch.setattr("brf_plugins.train.cli.train", interrupt)
    argv = CLI_TINY + ["--out-dir", str(tmp_path), "--force"]
    assert train_main(argv) == 130
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    assert err.endswith("continue with: brf-train " + " ".join(CLI_TINY) + f" --out-dir {tmp_path} --resume")


# -- brf-eval and brf-plot ----------------------------------------------------------------------------------

@needs_data("reference_checkpoints", "ecg_brf.pt")
def test_brf_eval_refuses_a_neuron_the_checkpoint_contradicts(capsys):
    assert eval_main([str(CHECKPOINTS / "ecg_brf.pt"), "--neuron", "rf", "--no-progress"]) == 2
    line = _error_line(capsys)
    assert line == (f"brf-eval: error: {CHECKPOINTS / 'ecg_brf.pt'} is a 'brf' model (its file name says so); "
                    f"--neuron rf would score it as another neuron. Leave --neuron out, or pass --force-neuron "
                    f"to do it anyway.")
    with pytest.raises(SystemExit) as info:
        eval_main([str(CHECKPOINTS / "ecg_brf.pt"), "--force-neuron"])
    assert info.value.code == 2 and "--force-neuron needs --neuron" in _error_line(capsys)


def test_brf_eval_states_the_trained_epochs_and_checks_the_neuron_of_a_run(tmp_path, capsys):
    result = train(TrainConfig(**TINY, out_dir=str(tmp_path)))
    assert eval_main([str(tmp_path / "last.pt"), "--no-progress"]) == 0
    assert "last.pt: after 2 of 2 training epochs (brf-train)" in capsys.readouterr().out
    assert eval_main([str(tmp_path / "best.pt"), "--no-progress"]) == 0
    assert (f"best.pt: the best validation epoch {result.best_epoch}, after {result.best_epoch} of 2 training "
            f"epochs") in capsys.readouterr().out
    assert eval_main([str(tmp_path / "best.pt"), "--neuron", "rf", "--no-progress"]) == 2
    assert "holds a 'brf' model (its stored config); --neuron rf cannot" in _error_line(capsys)


@pytest.mark.parametrize("content, message", [
    ("a,b\n1,2\n", "is not a brf-train metrics.csv: it has no epoch, val_loss, test_accuracy columns (found: a, b)"),
    ("", "it has no epoch, val_loss, test_accuracy columns (found: nothing)"),
    ("epoch,val_loss,test_accuracy\n", "it has a header but no epoch rows"),
    ("epoch,val_loss,test_accuracy\n0,abc,0.5\n", "line 2, column val_loss: 'abc' is not a number"),
    ("epoch,val_loss,test_accuracy\n0.5,1.0,0.5\n", "line 2: epoch '0.5' is not an epoch number"),
    (b"\x89PNG\r\n\x1a\n\xff\xfe\x00", "it is not a readable CSV text file"),
])
def test_brf_plot_rejects_a_file_that_is_not_a_metrics_csv(tmp_path, capsys, content, message):
    path = tmp_path / "metrics.csv"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(MetricsFormatError, match="not a brf-train metrics.csv"):
        read_history(path)
    with pytest.raises(SystemExit) as info:
        plot_main([str(tmp_path), "--out", str(tmp_path / "plot.png")])
    assert info.value.code == 2
    line = _error_line(capsys)
    assert line.startswith(f"brf-plot: error: {path} is not a brf-train metrics.csv") and message in line
    assert not (tmp_path / "plot.png").exists()


# -- truncated BPTT -----------------------------------------------------------------------------------------

def test_the_alif_recipes_tbptt_window_is_in_the_trainer_recipe():
    for task in ("smnist", "psmnist"):
        assert recipe(TrainConfig(task=task, neuron="alif"))["tbptt"] == 50
        assert recipe(TrainConfig(task=task, neuron="lif"))["tbptt"] == 50
        assert recipe(TrainConfig(task=task, neuron="brf"))["tbptt"] == 0
    assert recipe(TrainConfig(task="ecg", neuron="alif"))["tbptt"] == 0


def _alif_task(window):
    return SYNTHETIC.with_overrides(alif=dataclasses.replace(SYNTHETIC.alif, tbptt=window))


def test_the_authors_tbptt_schedule_updates_at_every_50th_step_from_t0_and_at_the_last():
    # spec section 4 (SimpleALIFRNNTbptt): updates at t = 0, 50, ..., 750 and 783, 17 per S-MNIST sequence
    windows = trainer_module.tbptt_windows(784, 50)
    assert len(windows) == 17 and windows[:2] == [(0, 1), (1, 51)] and windows[-1] == (751, 784)
    assert [e - 1 for _, e in windows] == list(range(0, 751, 50)) + [783]
    assert all(a[1] == b[0] for a, b in zip(windows, windows[1:]))      # contiguous, nothing skipped
    assert trainer_module.tbptt_windows(101, 50) == [(0, 1), (1, 51), (51, 101)]   # T - 1 on the grid: no repeat
    assert trainer_module.tbptt_windows(30, 50) == [(0, 1), (1, 30)]               # shorter than a window


def test_tbptt_windows_score_from_the_recipes_first_scored_step():
    y = torch.tensor([1, 2])
    rules = dict(loss="sum", start=10)
    assert trainer_module._chunk_target(rules, y, 0, 1) == (False, None, 0)      # t = 0 < start
    scored, target, start = trainer_module._chunk_target(rules, y, 1, 26)
    assert scored and target is y and start == 9                                      # scoring from t = 10
    assert trainer_module._chunk_target(rules, y, 26, 51)[2] == 0


def test_a_run_started_under_the_earlier_tbptt_schedule_resumes_only_with_a_recipe_change():
    run_recipe, recipe_differences = trainer_module.run_recipe, trainer_module.recipe_differences
    alif = run_recipe(TrainConfig(task="smnist", neuron="alif"))
    earlier = {k: v for k, v in alif.items() if k != "tbptt_schedule"}   # last.pt of a run before the schedule
    assert set(recipe_differences(earlier, alif)) == {"tbptt_schedule"}
    brf = run_recipe(TrainConfig(task="smnist", neuron="brf"))            # full BPTT: its runs resume as before
    assert brf["tbptt_schedule"] is None
    assert recipe_differences({k: v for k, v in brf.items() if k != "tbptt_schedule"}, brf) == {}


def test_the_trainer_takes_one_update_per_tbptt_window():
    cfg = dict(TINY, epochs=1, max_batches=2)
    windowed = train(TrainConfig(**{**cfg, "task": _alif_task(25)}, neuron="alif"))
    full = train(TrainConfig(**cfg, neuron="alif"))
    # T = 100: updates at t = 0, 25, 50, 75 and 99, five windows
    assert windowed.history[0]["steps"] == 2 * 5 and full.history[0]["steps"] == 2


@pytest.mark.parametrize("rule", ["last", "sum"])
def test_tbptt_gradients_stop_at_the_window_and_the_forward_is_unchanged(rule):
    task = _alif_task(25)
    model = build_model("core", task, "alif", generator=torch.Generator().manual_seed(0)).double()
    x = (torch.rand(100, 4, task.input_size, dtype=torch.float64) < 0.3).double().requires_grad_(True)
    y = torch.randint(0, task.output_size, (4,))
    rules = dict(recipe(TrainConfig(task=task, neuron="alif")), loss=rule, start=0)
    grads = []

    def step(loss):
        x.grad = None
        loss.backward()
        grads.append(x.grad.clone())
        return 1

    loss, readout, updates = trainer_module._train_batch(model, x, y, trainer_module._training_loss("core", rules),
                                                         rules, step)
    reference = model(x.detach())
    torch.testing.assert_close(readout, reference.readout.detach(), rtol=0, atol=0)
    windows = [(0, 1), (1, 26), (26, 51), (51, 76), (76, 100)]
    assert updates == len(grads) == len(windows)
    # label-last: each window is scored at its last step (the authors' intermediate labels) and the batch's loss
    # is the last step's, the validation loss's quantity; sum: all the window's steps, summed over the windows
    window_losses = [sequence_loss(reference.readout[s:e], y, rule).detach() for s, e in windows]
    torch.testing.assert_close(loss, window_losses[-1] if rule == "last" else sum(window_losses))
    for (s, e), g in zip(windows, grads):
        assert g[:s].abs().sum() == 0 and g[e:].abs().sum() == 0, (s, e)  # nothing outside the window
        assert g[s:e].abs().sum() > 0, (s, e)
        if rule == "last":
            assert g[e - 1].abs().sum() > 0     # the scored step itself feeds its readout


def test_resuming_a_comparison_continues_the_started_neurons_and_starts_the_others(tmp_path):
    from brf_plugins.train import compare
    finished = train(TrainConfig(**dict(TINY, epochs=1), out_dir=str(tmp_path / "brf")))
    results = compare(TrainConfig(**dict(TINY, epochs=1), out_dir=str(tmp_path), resume=True), ["brf", "lif"])
    assert results["brf"].history == finished.history  # finished already: nothing retrained
    assert load_run_file(tmp_path / "lif" / "last.pt")["config"]["neuron"] == "lif"
    with pytest.raises(FileNotFoundError, match="last.pt"):  # none started: a resume of nothing is an error
        compare(TrainConfig(**dict(TINY, epochs=1), out_dir=str(tmp_path / "new"), resume=True), ["brf", "lif"])


@pytest.mark.parametrize("neuron, best", [("brf", 0), ("alif", 2)])
def test_equal_validation_losses_keep_the_first_epoch_under_lt_and_the_last_under_le(monkeypatch, neuron, best):
    # the synthetic BRF recipe keeps a new best only on a strictly lower loss, every ALIF recipe on an equal one
    real = trainer_module._evaluate

    def tied(*args, **kwargs):
        return dataclasses.replace(real(*args, **kwargs), loss=1.0)

    monkeypatch.setattr(trainer_module, "_evaluate", tied)
    result = train(TrainConfig(**TINY, neuron=neuron))
    assert result.best_epoch == best
