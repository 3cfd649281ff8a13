"""The training data path: the augment stage's files, every preset's boxes, seeded draws, lazy datasets."""

import json
import os
import pickle

import cv2
import numpy as np
import pytest
import torch
from conftest import ROOT
from omegaconf import OmegaConf
from torch.utils.data import DataLoader

from facedet import coco
from facedet.apps.sample import SampleSettings, generate
from facedet.config import compose_config
from facedet.images import read_rgb
from facedet.model import build_net
from facedet.model.inputs import prepare
from facedet.pipeline import augment as augment_stage
from facedet.pipeline import collect, labels
from facedet.pipeline.train import datamodule
from facedet.training import augment
from facedet.training.data import EpochShuffle, FaceDataset, collate

PRESETS = sorted(p.stem for p in (ROOT / "conf/augment").glob("*.yaml"))


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """The sample's collect and labels outputs (24 images) in a project folder; cwd for the tests."""
    folder = tmp_path_factory.mktemp("augment")
    generate(folder / "data", SampleSettings(n_images=24))
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        cfg = compose_config(["model.input_size=128"], root=ROOT)
        for stage in (collect, labels):
            stage.run(cfg)
    finally:
        os.chdir(cwd)
    return folder


def _cfg(project, monkeypatch, *overrides):
    monkeypatch.chdir(project)
    return compose_config(["model.input_size=128", *overrides], root=ROOT)


def _train_images(project):
    return coco.read(project / "results/labels/train.json"), project / "results/collect/images"


@pytest.mark.parametrize("preset", PRESETS)
def test_boxes_stay_valid_under_every_transform_of_every_preset(project, monkeypatch, preset):
    cfg = _cfg(project, monkeypatch, f"augment={preset}")
    images, folder = _train_images(project)
    entries = OmegaConf.to_container(cfg.augment.transforms, resolve=True)
    # Each transform alone, forced on (p=1), then the whole pipeline.
    pipelines = [
        augment.build({"transforms": [{**e, "p": 1.0}], "min_visibility": cfg.augment.min_visibility}) for e in entries
    ] + [augment.build(cfg.augment)]
    faces_out = 0
    for pipeline in pipelines:
        for index, image in enumerate(images[:6]):
            rgb = read_rgb(folder / image.file_name)
            for draw in range(4):
                out, boxes, kept = augment.apply(pipeline, rgb, image.boxes, augment.draw_seed(1, draw, index))
                height, width = out.shape[:2]
                assert out.dtype == np.uint8 and out.shape[2] == 3
                assert len(boxes) == len(kept) <= len(image.boxes) and len(set(kept)) == len(kept)
                assert np.all(boxes[:, :2] >= 0) and np.all(boxes[:, 2] <= width) and np.all(boxes[:, 3] <= height)
                assert np.all(boxes[:, 2:] > boxes[:, :2])
                faces_out += len(boxes)
    assert faces_out > 0
    if preset == "face":  # every draw of the whole recipe is an input-sized square
        out, _, _ = augment.apply(pipelines[-1], read_rgb(folder / images[0].file_name), images[0].boxes, 5)
        assert out.shape == (128, 128, 3)


def test_the_face_recipe_keeps_most_faces_and_makes_big_ones(project, monkeypatch):
    cfg = _cfg(project, monkeypatch)
    pipeline = augment.build(cfg.augment)
    images, folder = _train_images(project)
    stats = augment.statistics(pipeline, images, folder, 8, 0, 0.0, read_rgb)
    assert stats["faces_in"] == 8 * sum(len(i.boxes) for i in images)
    assert stats["kept"] + stats["small"] + stats["dropped"] == stats["faces_in"] and stats["small"] == 0
    assert stats["kept_share"] > 0.6
    largest = 0.0
    for index, image in enumerate(images):
        rgb = read_rgb(folder / image.file_name)
        for draw in range(8):
            _, boxes, _ = augment.apply(pipeline, rgb, image.boxes, augment.draw_seed(0, draw, index))
            if len(boxes):
                largest = max(largest, float((boxes[:, 2:] - boxes[:, :2]).min()))
    original = max(min(b[2] - b[0], b[3] - b[1]) * 128 / 640 for i in images for b in i.boxes)
    assert largest > 1.5 * original  # crops zoom faces in beyond the letterboxed picture's largest


def test_the_augment_stage_writes_the_pipeline_preview_and_statistics(project, monkeypatch):
    cfg = _cfg(project, monkeypatch)
    augment_stage.run(cfg)
    out = project / "results/augment"
    assert sorted(p.name for p in out.iterdir()) == ["pipeline.yaml", "preview.png", "stats.json"]  # online
    loaded = augment.load(out / "pipeline.yaml")
    built = augment.build(cfg.augment)
    images, folder = _train_images(project)
    rgb = read_rgb(folder / images[0].file_name)
    first, second = (augment.apply(p, rgb, images[0].boxes, 1234) for p in (loaded, built))
    assert np.array_equal(first[0], second[0]) and np.array_equal(first[1], second[1])  # the file is the recipe
    grid = cv2.imread(str(out / "preview.png"))
    shown = min(cfg.augment.preview_images, sum(1 for i in images if i.boxes))
    assert grid.shape == (160 * shown, 160 * (1 + cfg.augment.preview_draws), 3)
    stats = json.loads((out / "stats.json").read_text())
    assert stats["draws"] == min(cfg.augment.stats_images, len(images)) * cfg.augment.preview_draws


def test_same_seed_epoch_and_index_give_the_same_sample_in_a_worker(project, monkeypatch):
    cfg = _cfg(project, monkeypatch)
    augment_stage.run(cfg)
    data = datamodule(cfg, build_net(cfg.model))
    data.setup("fit")
    train = data.train_set
    image, target = train[(3, 2)]
    again, target_again = train[(3, 2)]
    assert torch.equal(image, again) and torch.equal(target["boxes"], target_again["boxes"])
    assert not torch.equal(image, train[(4, 2)][0])  # another epoch, another draw
    sampler = EpochShuffle(len(train), cfg.seed)
    sampler.set_epoch(3)
    keys = list(sampler)
    assert sorted(i for _, i in keys) == list(range(len(train))) and {e for e, _ in keys} == {3}
    here = [train[k] for k in keys[:4]]
    worker = DataLoader(train, sampler=keys[:4], batch_size=4, num_workers=1, collate_fn=collate)
    images, targets = next(iter(worker))
    for (expected, expected_target), got, got_target in zip(here, images, targets):
        assert torch.equal(expected, got) and torch.equal(expected_target["boxes"], got_target["boxes"])


def test_validation_images_are_never_augmented_and_are_seen_at_detect_size(project, monkeypatch):
    cfg = _cfg(project, monkeypatch, "model.detect_size=192")
    augment_stage.run(cfg)
    data = datamodule(cfg, build_net(cfg.model))
    data.setup("fit")
    assert data.train_set[(0, 0)][0].shape == (3, 128, 128)  # training crops: model.input_size
    truth = coco.read(project / "results/labels/val.json")
    for index, image in enumerate(truth):
        expected, placement = prepare(read_rgb(project / "results/collect/images" / image.file_name), 192, "letterbox")
        got, target = data.val_set[index]
        assert torch.equal(got, expected)
        boxes = placement.to_input(np.asarray(image.boxes).reshape(-1, 4))
        got_boxes = torch.cat([target["boxes"], target["ignore"]]).numpy()  # small faces moved to ignore
        assert np.allclose(np.sort(got_boxes, axis=0), np.sort(boxes, axis=0), atol=1e-6)


def test_small_faces_become_ignore_regions(project, monkeypatch):
    images, folder = _train_images(project)
    index = next(i for i, image in enumerate(images) if image.boxes)
    whole = FaceDataset(project / "results/labels/train.json", folder, 128, "letterbox")
    _, target = whole[index]
    sides = ((target["boxes"][:, 2:] - target["boxes"][:, :2]) * 128).amin(1)
    limit = float(sides.max()) + 1  # every face of that image below the limit
    _, small = FaceDataset(project / "results/labels/train.json", folder, 128, "letterbox", min_face=limit)[index]
    assert len(small["boxes"]) == 0 and torch.allclose(small["ignore"], target["boxes"])


def test_dataset_memory_does_not_grow_with_the_pictures(project, tmp_path):
    images, folder = _train_images(project)
    for n in (10, 1000):
        coco.write([images[i % len(images)] for i in range(n)], tmp_path / f"train{n}.json")
    sizes = {
        n: len(pickle.dumps(FaceDataset(tmp_path / f"train{n}.json", folder, 320, "letterbox"))) for n in (10, 1000)
    }
    per_image = (sizes[1000] - sizes[10]) / 990
    assert per_image < 1000  # the record (name, boxes), not the pixels (a 320x320 float tensor is 1.2 MB)
