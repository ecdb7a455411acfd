import json

import pytest
import torch

from nar.core.checkpoint import read_meta, save_checkpoint
from nar.core.errors import NarError
from nar.eval.scene_classifier import (
    SceneClassifier, SceneClassifierConfig, SceneClassifierTask, default_path, load_scene_classifier,
    landscapes_fingerprint, render_scene_set, uint8_to_unit,
)
from nar.train.loop import MODEL_FILE, TrainConfig, train


def test_feature_and_logit_shapes_any_resolution():
    model = SceneClassifier()
    for size in (64, 128, 200):
        x = torch.rand(2, 3, size, size) * 2 - 1
        assert model.features(x).shape == (2, 256)
        assert model.logits(x).shape == (2, 6)
    assert model.training  # features() switches to eval and back


def test_bad_input_shape_is_a_user_error():
    with pytest.raises(NarError):
        SceneClassifier().features(torch.rand(2, 1, 32, 32))


def test_shipped_file_is_small_and_self_describing():
    path = default_path()
    assert path.is_file(), "nar/assets/scene_classifier.safetensors must ship with the package"
    assert path.stat().st_size < 2_000_000
    meta = read_meta(path)
    assert meta["kind"] == "scene_classifier"
    assert meta["classes"] == ["mountains", "lake", "coast", "desert", "forest", "city"]
    assert meta["input_size"] == 128
    assert meta["heldout"]["heldout_accuracy_256"] > 0.9


def test_shipped_classifier_recognises_procedural_scenes():
    from nar.data.landscapes import SCENES
    model = load_scene_classifier()
    assert model.classes == SCENES and not model.training
    # seeds far from the training and held-out ranges, rendered at another resolution
    images, labels = render_scene_set(2, 160, 160, seed=987_654)
    pred = model.logits(uint8_to_unit(images)).argmax(1)
    stale = model.shipped_meta.get("landscapes_fingerprint") != landscapes_fingerprint()
    hint = ("; nar/data/landscapes changed since the classifier was trained: "
            "rerun scripts/train_scene_classifier.py" if stale else "")
    assert (pred == labels).sum() >= 10, f"{int((pred == labels).sum())} / 12 correct{hint}"


def test_wrong_checkpoint_kind_is_refused(tmp_path):
    path = save_checkpoint(tmp_path / "x.safetensors", {"w": torch.zeros(1)}, {"kind": "tokenizer"})
    with pytest.raises(NarError, match="expected a scene_classifier"):
        load_scene_classifier(path)


def test_trains_with_the_shared_loop_and_reloads(tmp_path):
    cfg = SceneClassifierConfig(input_size=32, widths=(8, 16), double=(False, True))
    images, labels = render_scene_set(1, 48, 40, seed=5)
    task = SceneClassifierTask(SceneClassifier(cfg), images, labels, batch_size=6)
    run = train(task, TrainConfig(steps=2, batch_size=6, warmup_steps=1, snapshot_every=0, device="cpu"),
                tmp_path / "run", progress=False)
    assert json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["step"] == 2
    model = load_scene_classifier(run / MODEL_FILE)
    assert model.cfg == cfg
    assert model.features(torch.zeros(1, 3, 64, 64)).shape == (1, 16)
