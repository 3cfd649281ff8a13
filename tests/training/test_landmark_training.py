"""A short real training of a landmark model on drawn faces (points known by construction): the landmark
loss goes down, the NME of the held-out faces beats the untrained network's, and the evaluate stage
writes it into metrics.json, MLflow and the prediction grid; training only the landmark branch of a
box-only model leaves its boxes and scores exactly as they were."""

from __future__ import annotations

import functools

import pytest
import pytorch_lightning as pl
import torch
from drawn_faces import make_images
from pytorch_lightning.callbacks import EMAWeightAveraging, ModelCheckpoint

from facedet import coco
from facedet.evaluation.metrics import landmark_metrics
from facedet.images import read_rgb
from facedet.inference.detector import FaceDetector
from facedet.loss.dense import DenseLoss
from facedet.model.dense import DenseNet
from facedet.training.data import FaceDataModule
from facedet.training.module import FaceDetectorModule


def _nme(net, folder, truth, threshold=0.0):
    detector = FaceDetector(net, threshold=0.0)
    predictions = [detector(read_rgb(folder / image.file_name)) for image in truth]
    return landmark_metrics(truth, predictions, threshold=threshold)


def _tiny_net(landmarks: bool = True) -> DenseNet:
    return DenseNet(input_size=128, widths=(8, 16, 24, 32, 32), depth=0, neck_width=24, landmarks=landmarks)


def _train(tmp_path, images: int, epochs: int, net: DenseNet | None = None, trainable: str = "all", **trainer):
    """(network, test images, landmark loss per epoch) after a real Lightning training on drawn faces;
    ``trainer``: Lightning Trainer arguments."""
    pl.seed_everything(0)
    train, test = make_images(tmp_path, images, seed=1), make_images(tmp_path, 8, seed=2)
    coco.write(train, tmp_path / "train.json")
    coco.write(test, tmp_path / "test.json")
    net = net or _tiny_net()
    optimizer = functools.partial(torch.optim.AdamW, lr=0.01)
    module = FaceDetectorModule(net, DenseLoss(landmark_weight=1.0), optimizer, trainable=trainable)
    data = FaceDataModule(tmp_path / "train.json", tmp_path, tmp_path / "test.json", tmp_path, 128, 128, "letterbox", 8)
    losses = []

    class Record(pl.Callback):
        def on_train_epoch_end(self, trainer, pl_module):
            losses.append(float(trainer.callback_metrics["train/landmarks"]))

    callbacks = [Record(), *trainer.pop("callbacks", [])]
    trainer = pl.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=callbacks,
        **{"limit_val_batches": 0, "enable_checkpointing": False} | trainer,
    )
    trainer.fit(module, data)
    return net.eval(), test, losses


def test_a_few_epochs_lower_the_landmark_loss_and_nme_is_measured(tmp_path):
    net, test, losses = _train(tmp_path, images=16, epochs=4)
    assert losses[-1] < 0.8 * losses[0]
    result = _nme(net, tmp_path, test)
    assert set(result) >= {"nme", "nme_left_eye", "nme_mouth_right", "nme_failure_rate", "nme_faces", "nme_missed"}
    assert result["nme_faces"] + result["nme_missed"] == sum(p is not None for i in test for p in i.landmarks)


def test_training_only_the_landmark_branch_keeps_the_box_only_models_boxes_and_scores(tmp_path):
    torch.manual_seed(3)
    box_only = _tiny_net(landmarks=False).eval()
    net = _tiny_net()
    net.load_state_dict(box_only.state_dict(), strict=False)
    before = {name: value.clone() for name, value in net.state_dict().items()}
    # With validation, weight averaging and a checkpoint, as the train stage runs it (conf/callbacks/).
    callbacks = [EMAWeightAveraging(decay=0.9, update_starting_at_step=1), ModelCheckpoint(tmp_path, "last")]
    settings = dict(limit_val_batches=None, enable_checkpointing=True, callbacks=callbacks)
    net, test, losses = _train(tmp_path, 16, 3, net, "landmarks", **settings)
    saved = torch.load(tmp_path / "last.ckpt", weights_only=True)["state_dict"]
    for state in net.state_dict(), {key.removeprefix("net."): value for key, value in saved.items()}:
        changed = {name for name, value in state.items() if not torch.equal(value, before[name])}
        assert changed == {name for name in before if name.startswith("predict_landmarks.")}
    assert losses[-1] < losses[0]
    image = read_rgb(tmp_path / test[0].file_name)
    with torch.no_grad():
        old, new = FaceDetector(box_only, threshold=0.0)(image), FaceDetector(net, threshold=0.0)(image)
    assert [(d.box, d.score) for d in new] == [(d.box, d.score) for d in old]
    assert all(d.landmarks is not None for d in new) and all(d.landmarks is None for d in old)


@pytest.mark.slow  # about a minute on 2 CPU cores
def test_short_training_learns_the_landmarks_and_evaluate_reports_nme(tmp_path):
    torch.manual_seed(1)
    before = _nme(
        _tiny_net().eval(),
        tmp_path,
        make_images(tmp_path, 8, seed=2),
    )
    net, test, losses = _train(tmp_path, images=32, epochs=14)
    after = _nme(net, tmp_path, test)
    print(f"landmark loss per epoch {[round(v, 4) for v in losses]}; test NME {before} -> {after}")
    assert losses[-1] < 0.25 * losses[0]
    assert set(after) >= {"nme", "nme_left_eye", "nme_mouth_right", "nme_failure_rate", "nme_faces", "nme_missed"}
    assert after["nme_faces"] > 0 and 0 <= after["nme_failure_rate"] <= 1
    assert after["nme"] < min(before["nme"], 0.15)

    # The evaluate stage on this model (its threshold 0.3): the same figures in metrics.json and MLflow.
    at_threshold = _nme(net, tmp_path, test, 0.3)
    import json

    from conftest import ROOT

    from facedet.config import compose_config
    from facedet.model import weights
    from facedet.pipeline.evaluate import _evaluate
    from facedet.tracking import Tracker

    paths = {name: tmp_path / name for name in ("train", "labels", "collect", "evaluate")}
    (paths["collect"] / "images").mkdir(parents=True)
    for image in test:
        (tmp_path / image.file_name).rename(paths["collect"] / "images" / image.file_name)
    coco.write(test, paths["labels"] / "test.json")
    for stage in ("collect", "labels"):
        (paths[stage] / "report.json").write_text("{}")
    model_cfg = {"name": "dense", "input_size": 128, "detect_size": 128, "widths": [8, 16, 24, 32, 32], "depth": 0}
    weights.save(
        net, {**model_cfg, "neck_width": 24, "landmarks": True}, paths["train"] / "model.safetensors", threshold=0.3
    )
    cfg = compose_config(
        [f"paths.{name}={path}" for name, path in paths.items()] + ["evaluate.robustness_images=2"], root=ROOT
    )
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}", "t")
    tracker.client.create_experiment("t", artifact_location=(tmp_path / "artifacts").as_uri())
    run_id = tracker.create_run("evaluate", {})
    with tracker.continue_run(run_id):
        _evaluate(cfg, tracker, run_id)
    logged = tracker.client.get_run(run_id).data.metrics
    metrics = json.loads((paths["evaluate"] / "metrics.json").read_text())
    assert metrics["nme"] == pytest.approx(at_threshold["nme"], abs=1e-4) and metrics["nme_faces"] > 0
    assert metrics["nme_faces"] == at_threshold["nme_faces"]
    assert logged["test.nme"] == pytest.approx(at_threshold["nme"], abs=1e-4)
    assert (paths["evaluate"] / "predictions.png").is_file()
