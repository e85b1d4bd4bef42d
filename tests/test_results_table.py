"""``benchmarks/results_table.py``, which writes the README's from-scratch table: mean ± std over seeds, partial
runs marked and left out of the convergence columns, the paper's figures beside ours, the README rewritten between
its markers only."""

import importlib.util
import json
import math
import statistics
from pathlib import Path

import pytest

from brf_plugins.train.state import RUN_FORMAT, atomic_torch_save
from brf_plugins.train.trainer import _write_csv

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def results_table():
    spec = importlib.util.spec_from_file_location("results_table", ROOT / "benchmarks" / "results_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(folder: Path, seed: int, accuracies, *, finished: bool = True, framework: str = "snntorch") -> Path:
    """A brf-train run folder: metrics.csv (validation loss falling until the last epoch) and, when finished, the
    summary.json brf-train writes."""
    run = folder / f"ecg-{framework}-brf-seed{seed}"
    run.mkdir(parents=True)
    history = [{"epoch": e, "lr": 0.1, "val_loss": 1.0 / (e + 1), "val_accuracy": a, "test_loss": 1.0,
                "test_accuracy": a, "test_sops": 6000.0 + e, "epoch_seconds": 2.0} for e, a in enumerate(accuracies)]
    _write_csv(history, run / "metrics.csv")
    if finished:
        last = len(accuracies) - 1
        run.joinpath("summary.json").write_text(json.dumps({
            "config": {"task": "ecg", "framework": framework, "neuron": "brf", "seed": seed},
            "best_epoch": last, "test_accuracy": accuracies[last], "test_sops": 6000.0 + last,
            "stopped_early": False, "run_seconds": 2.0 * len(accuracies)}))
    return run


def _last_checkpoint(run: Path, seed: int, framework: str = "snntorch", model_kwargs=None) -> Path:
    """The ``last.pt`` every epoch of a run writes, reduced to what the table reads: its configuration."""
    return atomic_torch_save({"format": RUN_FORMAT, "config": {"task": "ecg", "framework": framework, "neuron": "brf",
                                                               "seed": seed, "model_kwargs": model_kwargs or {}}},
                             run / "last.pt")


def _row(text: str, framework: str) -> list:
    line = next(l for l in text.splitlines() if l.startswith(f"| ecg | {framework} | brf |"))
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_mean_std_over_seeds_and_epochs_to_fractions_of_the_final_accuracy(tmp_path, results_table):
    runs = [_run(tmp_path, 0, [0.2, 0.82, 0.86]), _run(tmp_path, 1, [0.3, 0.5, 0.84, 0.85])]
    rows = [results_table.read_run(r) for r in runs]
    cells = _row(results_table.table(rows), "snntorch")
    assert cells[3] == "0, 1"
    assert cells[4] == f"{statistics.mean([86.0, 85.0]):.2f} ± {statistics.stdev([86.0, 85.0]):.2f}"
    assert cells[5] == "85.8 ± 0.7"                         # the paper's Table 1
    # epochs to 95 % of each run's own final accuracy: seed 0 at epoch 1 (0.82 >= 0.95 * 0.86), seed 1 at 2
    assert cells[7].startswith("1.5 / ") and cells[7].endswith("(6 / 32 / 75)")
    assert cells[8] == "1.5 (6)"                            # 95 % of the paper's 85.8 %: 0.8151
    assert cells[9].startswith("6,00") and cells[9].endswith("(6,308)")


def test_a_partial_run_is_marked_read_from_its_curve_and_kept_out_of_the_convergence_columns(tmp_path,
                                                                                               results_table):
    partial = results_table.read_run(_run(tmp_path, 5, [0.2, 0.7, 0.8], finished=False, framework="norse"))
    assert partial["partial"] and partial["accuracy"] == pytest.approx(80.0)   # min validation loss: the last epoch
    cells = _row(results_table.table([partial]), "norse")
    assert cells[3] == "5*" and cells[7].startswith("- / - / -")


def test_the_readme_table_is_replaced_between_its_markers_only(tmp_path, results_table, monkeypatch):
    run = _run(tmp_path / "runs", 0, [0.5, 0.8])
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{results_table.README_START}\nold table\n{results_table.README_END}\noutro\n")
    monkeypatch.setattr("sys.argv", ["results_table.py", str(run), "--out", str(tmp_path / "out" / "results.md"),
                                     "--readme", str(readme)])
    assert results_table.main() == 0
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith(f"{results_table.README_END}\noutro\n")
    assert "old table" not in text and "| ecg | snntorch | brf | 0 | 80.00 |" in text
    assert (tmp_path / "out" / "results_ecg.png").stat().st_size > 0
    stored = json.loads((tmp_path / "out" / "results.json").read_text())
    assert stored[0]["seed"] == 0 and math.isclose(stored[0]["accuracy"], 80.0)


def test_store_keeps_the_last_checkpoint_of_unfinished_runs_only(tmp_path, results_table, monkeypatch):
    going = _run(tmp_path / "runs", 1, [0.5, 0.6], finished=False)
    done = _run(tmp_path / "runs", 2, [0.5, 0.8])
    for seed, run in ((1, going), (2, done)):
        _last_checkpoint(run, seed)
    store = tmp_path / "store"
    (store / done.name).mkdir(parents=True)
    (store / done.name / "last.pt").write_bytes(b"stale: the run has finished since")
    (store / going.name).mkdir(parents=True)
    (store / going.name / "summary.json").write_text("stale: an earlier run of this folder, restarted since")
    monkeypatch.setattr("sys.argv", ["results_table.py", str(going), str(done), "--store", str(store),
                                     "--out", str(tmp_path / "out" / "results.md")])
    assert results_table.main() == 0
    assert (store / going.name / "last.pt").read_bytes() == (going / "last.pt").read_bytes()
    assert {p.name for p in (store / going.name).iterdir()} == {"metrics.csv", "last.pt"}
    assert not (store / done.name / "last.pt").exists()
    assert {p.name for p in (store / done.name).iterdir()} == {"metrics.csv", "summary.json"}


def test_a_running_variant_is_labelled_by_its_options_not_its_folder_name(tmp_path, results_table):
    """A run still going (no summary.json yet) reads its --set options from its last.pt, so its row is the one its
    finished siblings have (their summary.json holds the options' tuples as lists)."""
    run = _run(tmp_path, 0, [0.5, 0.7], finished=False)
    run = run.rename(run.with_name(run.name + "-fastreadout"))
    _last_checkpoint(run, 0, model_kwargs={"tau_out_init": (1.4427, 0.15)})
    row = results_table.read_run(run)
    assert (row["variant"], row["seed"], row["partial"]) == ("tau_out_init=[1.4427, 0.15]", 0, True)
    # before its first epoch ends there is no last.pt: the folder name is all there is
    (run / "last.pt").unlink()
    assert results_table.read_run(run)["variant"] == "variant=fastreadout"
