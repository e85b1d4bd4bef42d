"""The tutorial notebooks run end to end in quick mode (BRF_QUICK=1) through nbclient, and match their generator."""

import os
from pathlib import Path

import pytest

from .conftest import DATA_ROOT, REPO_ROOT

EXAMPLES = REPO_ROOT / "examples"
NOTEBOOKS = ["ecg_tutorial.ipynb", "smnist_tutorial.ipynb", "psmnist_tutorial.ipynb", "shd_tutorial.ipynb"]
NEEDS = {"ecg_tutorial.ipynb": "ecg_qtdb", "smnist_tutorial.ipynb": "mnist", "psmnist_tutorial.ipynb": "mnist",
         "shd_tutorial.ipynb": None}


# SHD's quick mode needs no data and is the quickest: it runs by default; the others with -m slow (CI runs both).
@pytest.mark.parametrize("name", [pytest.param(n, marks=[] if n.startswith("shd") else [pytest.mark.slow])
                                  for n in NOTEBOOKS])
def test_notebook_runs_in_quick_mode(name, monkeypatch, tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("matplotlib")
    if NEEDS[name] and not (DATA_ROOT / NEEDS[name]).exists():
        pytest.skip(f"{DATA_ROOT / NEEDS[name]} not available")
    extra = [str(REPO_ROOT)] + [p for p in ("/work/wt/snntorch", "/work/wt/norse") if Path(p).is_dir()]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(extra + [os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("BRF_QUICK", "1")
    monkeypatch.setenv("BRF_PLUGINS_DATA", str(DATA_ROOT))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    nb = nbformat.read(EXAMPLES / name, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    text = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "test accuracy" in text and "mode: quick" in text
    images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) >= 3  # learning curves, raster, omega-b' scatter


def test_notebooks_are_generated_from_make_notebooks():
    import importlib.util
    nbformat = pytest.importorskip("nbformat")
    spec = importlib.util.spec_from_file_location("make_notebooks", EXAMPLES / "make_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert sorted(module.NOTEBOOKS) == sorted(NOTEBOOKS)
    for name, nb_spec in module.NOTEBOOKS.items():
        on_disk = nbformat.read(EXAMPLES / name, as_version=4)
        built = module.build(name, nb_spec)
        assert [c.source for c in on_disk.cells] == [c.source for c in built.cells], name
