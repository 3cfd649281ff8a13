"""The real pipeline, end to end: `dvc repro` in a temporary copy of the project, tiny settings."""

import json
import re
import shutil
import sqlite3
import subprocess
import sys

import pytest
import yaml
from conftest import ROOT, assert_same_faces
from helpers import project_copy, sh
from mlflow.tracking import MlflowClient

from facedet.apps.sample import SampleSettings, generate
from facedet.model import weights

TINY = ["experiment=quick", "augment.copies=2", "train.max_epochs=2", "train.batch_size=8"]


def test_dvc_repro_runs_every_stage_logs_to_mlflow_and_then_has_nothing_to_do(tmp_path):
    project = project_copy(tmp_path, [*TINY, "evaluate.robustness_images=2"])
    generate(project / "data", SampleSettings(n_images=24))
    sh(project, "git", "init", "-q")
    sh(project, "dvc", "init", "-q")
    sh(project, "dvc", "add", "-q", "data")
    sh(project, "dvc", "repro")

    metrics = json.loads((project / "results/evaluate/metrics.json").read_text())
    assert set(metrics) >= {"ap50", "ap50_95", "precision", "recall", "f1", "mean_iou", "image_accuracy"}
    # 24 images = 19 faces + 5 negatives; split per group: faces 13/3/3, negatives round(3.5)=4 / round(.75)=1 / 0
    assert metrics["images"] == 3
    assert all(0 <= metrics[k] <= 1 for k in ("ap50", "precision", "recall", "image_accuracy"))
    curve = json.loads((project / "results/evaluate/pr_curve.json").read_text())["pr_curve"]
    assert all(set(point) == {"threshold", "precision", "recall"} for point in curve)
    assert (project / "results/evaluate/predictions.png").stat().st_size > 10_000
    # The robustness report perturbs only the first evaluate.robustness_images test pictures.
    test_set = json.loads((project / "results/labels/test.json").read_text())
    first_two = {image["id"] for image in test_set["images"][:2]}
    faces = [a for a in test_set["annotations"] if a["image_id"] in first_two and not a.get("iscrowd")]
    rows = json.loads((project / "results/evaluate/robustness.json").read_text())["robustness"]
    assert rows[0]["name"] == "original" and rows[0]["faces"] == len(faces)
    train_set = json.loads((project / "results/augment/train.json").read_text())
    assert len(train_set["images"]) == 2 * 17  # 70 % of 24 images (13 faces + 4 negatives), 2 copies each

    # One MLflow run holds the config, per-epoch metrics, the test metrics and the logged model.
    run_id = json.loads((project / "results/train/run.json").read_text())["run_id"]
    with sqlite3.connect(project / "mlflow.db") as db:
        params = dict(db.execute("select key, value from params where run_uuid=?", (run_id,)))
        metric_steps = db.execute(
            "select key, count(*) from metrics where run_uuid=? group by key", (run_id,)
        ).fetchall()
    assert params["train.max_epochs"] == "2" and params["model.name"] == "dense"
    steps = dict(metric_steps)
    assert steps["val/ap50"] == 2 and steps["test.ap50"] == 1

    # The order of MLflow 3's metric charts (run page and compare view): grouped by the part before the
    # last "/", groups alphabetically, then the names without "/"; by name within a group. The
    # per-epoch train/val curves come before every single-value result.
    def chart_position(key):
        group = key.rsplit("/", 1)[0] if "/" in key else None
        return (group is None, group or "", key)

    curves = [k for k in steps if k.startswith(("train/", "val/"))]
    single = [k for k, n in steps.items() if n == 1]
    # One chart per metric: single values only for the results runs are compared by (the rest are in
    # the run's evaluate/metrics.json and robustness.json).
    headline = {"test.ap50", "test.ap50_95", "test.f1", "test.precision", "test.recall"}
    assert {"test.ap50", "best.val_ap50", "best.threshold"} <= set(single), single
    assert set(single) <= headline | {"best.val_ap50", "best.val_f1", "best.threshold", "export.onnx_max_abs_diff"}
    assert curves
    assert max(map(chart_position, curves)) < min(map(chart_position, single)), sorted(steps, key=chart_position)
    assert (project / "mlartifacts").is_dir()
    logged = {p.name for p in (project / "mlartifacts").rglob("*")}
    assert {
        "MLmodel",
        "model.safetensors",
        "best.ckpt",
        "last.ckpt",
        "predictions.png",
        "model.onnx",
        "config.yaml",
        "report.json",
    } <= logged

    # `dvc plots show` works offline: image plots only, no script from a CDN (Vega's plots need one).
    sh(project, "dvc", "plots", "show", "-o", "plots")
    page = (project / "plots/index.html").read_text()
    assert "<script src" not in page and "https://" not in page
    shown = re.findall(r'<img src="([^"]+)"', page)  # every plot, as a PNG beside the page
    assert len(shown) == 4 and all((project / "plots" / src).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for src in shown)
    assert {src.rsplit("_", 1)[-1] for src in shown} == {
        "preview.png",
        "curve.png",
        "robustness.png",
        "predictions.png",
    }

    # `make compare`: a param that only repeats another (optimizer.lr is ${train.lr}) is not a column.
    compare = subprocess.run(["make", "-s", "-n", "compare"], cwd=ROOT, capture_output=True, text=True)
    command = compare.stdout.strip().splitlines()[-1]
    assert command.startswith("dvc exp show ")
    sh(project, sys.executable, "-m", "facedet.apps.baseline")  # the commit experiments are compared with
    params_file = project / "params.yaml"
    params_text = params_file.read_text()
    changed_lr = yaml.safe_load(params_text)
    changed_lr["train"]["lr"] = changed_lr["optimizer"]["lr"] = 0.5  # what `dvc exp run -S train.lr=0.5` writes
    params_file.write_text(yaml.safe_dump(changed_lr, sort_keys=False))
    shown = sh(project, "bash", "-c", f"COLUMNS=300 {command}")
    assert "train.lr" in shown and "optimizer.lr" not in shown and "lr-AdamW" not in shown
    params_file.write_text(params_text)

    # Nothing changed: a second repro runs nothing and DVC reports a clean state.
    assert "Running stage" not in sh(project, "dvc", "repro")
    assert "up to date" in sh(project, "dvc", "status")

    # The copy's own src/ is what dvc.yaml's code deps point at. The code that picks the best
    # checkpoint and the threshold retrains; a runtime knob (train.num_workers) does not.
    code = project / "src/facedet/evaluation/metrics.py"
    original = code.read_text()
    code.write_text(original + "# a change\n")
    assert {"train", "evaluate"} <= set(json.loads(sh(project, "dvc", "status", "--json")))
    code.write_text(original)
    params_file = project / "params.yaml"
    params_text = params_file.read_text()
    params = yaml.safe_load(params_text)
    params["train"]["num_workers"] += 1
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    changed = json.loads(sh(project, "dvc", "status", "--json"))
    assert "validate" in changed and "train" not in changed, changed  # validate reads the whole file
    params_file.write_text(params_text)
    assert "up to date" in sh(project, "dvc", "status")

    # The stable detect contract, with the pipeline's model as the default weights and its
    # validation best-F1 threshold as the default threshold.
    threshold = weights.read_metadata(project / "results/train/model.safetensors")["threshold"]
    assert metrics["threshold"] == threshold
    sh(project, "facedet", "detect", "data/images", "--json", "faces.json")
    detected = json.loads((project / "faces.json").read_text())
    assert len(detected["images"]) == 24 and detected["errors"] == []
    first = detected["images"][0]
    assert (first["width"], first["height"]) == (640, 480)
    for face in (f for image in detected["images"] for f in image["faces"]):
        x1, y1, x2, y2 = face["box"]
        assert 0 <= x1 <= x2 <= 640 and 0 <= y1 <= y2 <= 480 and threshold <= face["score"] <= 1

    # The first registered version is the champion; the registry URI and the ONNX model the
    # pipeline exported give the same faces, up to the rounding of another engine.
    train_metrics = json.loads((project / "results/train/metrics.json").read_text())
    assert train_metrics["registry/version"] == 1 and train_metrics["registry/champion"] == 1
    # The version's description is the run's name and settings without markdown marks: the registry's
    # versions table shows it as raw text.
    client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    description = client.get_model_version("facedet", "1").description
    assert description.splitlines()[0] == client.get_run(run_id).info.run_name
    assert "**" not in description and "`" not in description
    for extra in (["--weights", "models:/facedet@champion"], ["--backend", "onnx"]):
        sh(project, "facedet", "detect", "data/images", "--json", "again.json", *extra)
        again = json.loads((project / "again.json").read_text())
        assert [i["file"] for i in again["images"]] == [i["file"] for i in detected["images"]]
        for one, other in zip(detected["images"], again["images"]):
            assert_same_faces(one["faces"], other["faces"], threshold)


def test_committed_data_dvc_pins_the_embedded_sample(tmp_path):
    """data.dvc is the hash of what `make data` writes: `facedet sample data --seed $(SAMPLE_SEED)`."""
    seed = re.search(r"^SAMPLE_SEED := (\d+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    generate(tmp_path / "data", SampleSettings(seed=int(seed.group(1))))
    sh(tmp_path, "dvc", "init", "-q", "--no-scm")
    sh(tmp_path, "dvc", "add", "-q", "data")
    committed = subprocess.run(["git", "show", "HEAD:data.dvc"], cwd=ROOT, capture_output=True, text=True)
    pinned = committed.stdout if committed.returncode == 0 else (ROOT / "data.dvc").read_text()
    assert (
        yaml.safe_load((tmp_path / "data.dvc").read_text())["outs"][0]["md5"]
        == yaml.safe_load(pinned)["outs"][0]["md5"]
    )


@pytest.mark.slow
def test_default_pipeline_learns_the_seed_webcam_faces(tmp_path, seed_webcam):
    """`make run DATA=../shared/seed-webcam` with the default config (fine-tuning the bundled model):
    held-out AP@0.5 at least 0.98, recall at least 0.9 (issue 10's target is 1.00 and every face)."""
    project = project_copy(tmp_path, [])
    shutil.copytree(seed_webcam, project / "data")
    for stage in ("collect", "labels", "augment", "train", "evaluate"):
        sh(project, "facedet", "run", stage, "--params", "params.yaml")
    metrics = json.loads((project / "results/evaluate/metrics.json").read_text())
    assert metrics["ap50"] >= 0.98 and metrics["recall"] >= 0.9, metrics
