"""A short real training of a landmark model on drawn faces (points known by construction): the landmark
loss goes down, and the NME of the held-out faces is measured and beats the untrained network's."""

from __future__ import annotations

import functools

import pytorch_lightning as pl
import torch
from drawn_faces import make_images

from facedet import coco
from facedet.evaluate.metrics import landmark_metrics
from facedet.images import read_rgb
from facedet.inference.detector import FaceDetector
from facedet.loss.dense import DenseLoss
from facedet.model.dense import DenseNet
from facedet.train.data import FaceDataModule
from facedet.train.module import FaceDetectorModule


def _nme(net, folder, truth):
    detector = FaceDetector(net, threshold=0.0)
    predictions = [detector(read_rgb(folder / image.file_name)) for image in truth]
    return landmark_metrics(truth, predictions, threshold=0.0)


def test_short_training_lowers_the_landmark_loss_and_measures_nme(tmp_path):
    pl.seed_everything(0)
    train, test = make_images(tmp_path, 32, seed=1), make_images(tmp_path, 8, seed=2)
    coco.write(train, tmp_path / "train.json")
    coco.write(test, tmp_path / "test.json")
    net = DenseNet(input_size=128, widths=(8, 16, 24, 32, 32), depth=0, neck_width=24, landmarks=True)
    before = _nme(net.eval(), tmp_path, test)
    net.train()
    module = FaceDetectorModule(net, DenseLoss(landmark_weight=1.0), functools.partial(torch.optim.AdamW, lr=0.01))
    data = FaceDataModule(tmp_path / "train.json", tmp_path, tmp_path / "test.json", tmp_path, 128, 128, "letterbox", 8)
    losses = []

    class Record(pl.Callback):
        def on_train_epoch_end(self, trainer, pl_module):
            losses.append(float(trainer.callback_metrics["train/landmarks"]))

    trainer = pl.Trainer(
        max_epochs=14,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        callbacks=[Record()],
    )
    trainer.fit(module, data)
    after = _nme(net.eval(), tmp_path, test)
    print(f"landmark loss per epoch {[round(v, 4) for v in losses]}; test NME {before} -> {after}")
    assert losses[-1] < 0.25 * losses[0]
    assert set(after) >= {"nme", "nme_left_eye", "nme_mouth_right", "nme_failure_rate", "nme_faces", "nme_missed"}
    assert after["nme_faces"] > 0 and 0 <= after["nme_failure_rate"] <= 1
    assert after["nme"] < min(before["nme"], 0.15)
