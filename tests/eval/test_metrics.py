import math

import numpy as np
import pytest
import torch

from nar.core.errors import NarError
from nar.eval.metrics import FD_NAR_LABEL, evaluate_images, format_report, inception_score, iter_batches
from nar.eval.scene_classifier import SceneClassifier, SceneClassifierConfig, evaluate_accuracy


def test_inception_score_uniform_predictions_is_one():
    mean, std = inception_score(torch.zeros(40, 7), splits=4)
    assert mean == pytest.approx(1.0) and std == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("k", [2, 6, 10])
def test_inception_score_confident_and_spread_is_k(k):
    labels = torch.arange(10 * k) % k          # every split holds every class equally often
    logits = torch.full((10 * k, k), -50.0)
    logits[torch.arange(10 * k), labels] = 50.0
    mean, std = inception_score(logits, splits=10)
    assert mean == pytest.approx(k, rel=1e-6) and std == pytest.approx(0.0, abs=1e-6)


def test_inception_score_confident_but_one_class_is_one():
    logits = torch.full((30, 5), -50.0)
    logits[:, 2] = 50.0
    assert inception_score(logits, splits=3)[0] == pytest.approx(1.0, abs=1e-6)


def test_inception_score_matches_definition():
    logits = torch.randn(12, 4, generator=torch.Generator().manual_seed(0))
    p = torch.softmax(logits.double(), 1)
    py = p.mean(0)
    kl = (p * (p.log() - py.log())).sum(1).mean()
    assert inception_score(logits, splits=1)[0] == pytest.approx(math.exp(float(kl)), rel=1e-10)
    assert inception_score(logits, splits=100)[0] > 0  # more splits than rows: clamped


def test_iter_batches_accepts_tensors_uint8_and_pairs():
    x = torch.rand(5, 3, 8, 8) * 2 - 1
    assert [b.shape[0] for b in iter_batches(x, 2)] == [2, 2, 1]
    u8 = torch.full((2, 3, 4, 4), 255, dtype=torch.uint8)
    assert torch.all(next(iter_batches(u8, 4)) == 1.0)
    pairs = [(x[i], i) for i in range(5)]   # a dataset of (image, label)
    batches = list(iter_batches(pairs, 4))
    assert [b.shape[0] for b in batches] == [4, 1]
    torch.testing.assert_close(torch.cat(batches), x)
    with pytest.raises(NarError):
        next(iter_batches(torch.rand(2, 1, 4, 4), 2))
    assert next(iter_batches(np.zeros((1, 3, 4, 4), np.uint8), 2)).shape == (1, 3, 4, 4)


def tiny_classifier():
    torch.manual_seed(0)
    return SceneClassifier(SceneClassifierConfig(input_size=32, widths=(8, 16), double=(False, False))).eval()


def test_evaluate_images_identical_sets():
    clf = tiny_classifier()
    g = torch.Generator().manual_seed(0)
    real = torch.rand(16, 3, 48, 48, generator=g) * 2 - 1
    rep = evaluate_images(real, real.clone(), inception=False, classifier=clf, batch_size=5)
    assert rep["fd_nar"] == pytest.approx(0.0, abs=1e-6)
    assert rep["precision"] == 1.0 and rep["recall"] == 1.0
    assert rep["fid"] is None and rep["is_inception"] is None
    assert rep["n_real"] == rep["n_fake"] == 16
    assert 1.0 <= rep["is_nar"] <= len(clf.classes)
    assert rep["labels"]["fd_nar"] == FD_NAR_LABEL and "FID" not in FD_NAR_LABEL
    text = format_report(rep)
    assert "FD (nar features)" in text and "n/a" in text


def test_evaluate_images_detects_a_shift_and_validates():
    clf = tiny_classifier()
    g = torch.Generator().manual_seed(1)
    real = torch.rand(12, 3, 32, 32, generator=g) * 0.5 - 0.25
    fake = [(img, 0) for img in (torch.rand(12, 3, 32, 32, generator=g) * 0.5 + 0.4)]  # an iterable dataset
    rep = evaluate_images(real, fake, inception=False, classifier=clf, limit=10)
    assert rep["n_real"] == rep["n_fake"] == 10
    assert rep["fd_nar"] > 0
    with pytest.raises(NarError):
        evaluate_images(real[:3], real[:3], inception=False, classifier=clf)  # not more than k images
    with pytest.raises(NarError):
        evaluate_images(real, real, feature="clip", inception=False, classifier=clf)
    with pytest.raises(NarError):
        evaluate_images(real, real, feature="inception", inception=False, classifier=clf)


def test_evaluate_images_scores_class_fidelity_from_the_logits_it_already_has():
    clf = tiny_classifier()
    g = torch.Generator().manual_seed(2)
    real = torch.rand(12, 3, 32, 32, generator=g) * 2 - 1
    fake = torch.rand(12, 3, 32, 32, generator=g) * 2 - 1
    seen = clf.logits(fake).argmax(1)
    asked = seen.clone()
    asked[:3] = (seen[:3] + 1) % len(clf.classes)  # three asked for a class they are not seen as
    rep = evaluate_images(real, fake, inception=False, classifier=clf, fake_labels=asked)
    assert rep["class_fidelity"] == pytest.approx(9 / 12)
    assert rep["class_fidelity"] == evaluate_accuracy(clf, fake, asked)["accuracy"]  # one pass agrees with two
    confusion = torch.tensor(rep["class_fidelity_detail"]["confusion"])
    assert confusion.sum() == 12 and confusion.diag().sum() == 9
    assert confusion.sum(1).tolist() == torch.bincount(asked, minlength=len(clf.classes)).tolist()  # rows: asked
    assert set(rep["class_fidelity_detail"]["per_class"]) == set(clf.classes)
    assert "class_fidelity" not in evaluate_images(real, fake, inception=False, classifier=clf)
    with pytest.raises(NarError, match="labels"):
        evaluate_images(real, fake, inception=False, classifier=clf, fake_labels=asked[:5])
