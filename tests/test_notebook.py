"""experiments/walkthrough.ipynb runs headless, top to bottom, on tiny settings (what CI executes)."""

import nbformat
import pytest
from conftest import ROOT
from nbclient import NotebookClient

NOTEBOOK = ROOT / "experiments" / "walkthrough.ipynb"


@pytest.mark.slow
def test_walkthrough_notebook_runs_headless_on_tiny_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEDET_NOTEBOOK_TINY", "1")
    monkeypatch.setenv("FACEDET_PROJECT", str(ROOT))
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel draws inline (headless, PNG outputs)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))  # where the notebook makes its working folder
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    # The kernel starts in tmp_path; the notebook works in its own temporary folder and removes it.
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()

    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    pictures = [o for o in outputs if o.output_type == "display_data" and "image/png" in o.get("data", {})]
    assert len(pictures) >= 4  # labelled samples, augmented copies, PR curve + predictions, losses
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "FINISHED" in text and "registered: [('facedet', 1)]" in text
    assert not list(scratch.glob("facedet-walkthrough-*"))  # tiny mode removes its working folder
