import pickle

import pytest
import torch
import torch.nn.functional as F

from nar.core.errors import NarError
from nar.eval import inception as inc


@pytest.fixture
def empty_hub(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None, raising=False)
    monkeypatch.setattr(inc, "_told_missing", False)
    # any attempt to download fails the test
    monkeypatch.setattr(torch.hub, "download_url_to_file",
                        lambda *a, **k: pytest.fail("tried to download"))
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url",
                        lambda *a, **k: pytest.fail("tried to download"))
    return tmp_path


def test_no_weights_returns_none_with_one_message(empty_hub, capsys):
    assert inc.find_inception_weights() is None
    assert str(inc.hub_checkpoint_dir()).startswith(str(empty_hub))
    assert inc.load_inception(None) is None
    assert inc.load_inception(None) is None
    err = capsys.readouterr().err
    assert err.count("no Inception weights") == 1 and len(err.strip().splitlines()) == 1


def test_given_missing_path_is_a_user_error(empty_hub):
    with pytest.raises(NarError, match="not found"):
        inc.load_inception(empty_hub / "nope.pth")


class Payload:
    pass


def test_pickled_objects_are_refused(empty_hub):
    path = empty_hub / "evil.pth"
    path.write_bytes(pickle.dumps({"fc.weight": Payload()}, protocol=2))
    with pytest.raises(NarError, match="weights_only"):
        inc.load_inception(path)


def fake_state_dict(**kwargs):
    """Zero weights with the layout of a real Inception file (built on the meta device: fast)."""
    from torchvision.models import inception_v3
    with torch.device("meta"):
        net = inception_v3(weights=None, init_weights=False, **kwargs)
    return {k: (torch.ones(v.shape) if k.endswith("running_var") else torch.zeros(v.shape, dtype=v.dtype))
            for k, v in net.state_dict().items()}


def randomize(module, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.1)


def test_fid_variant_is_patched_and_labelled():
    model = inc.build_inception(fake_state_dict(aux_logits=False, num_classes=1008), "pt_inception.pth")
    assert model.info.fid_exact and model.fid_label == "FID"
    x = torch.randn(1, 192, 9, 9)
    block = model.net.Mixed_5b
    randomize(block)
    # with torchvision's pooling swapped back in, the patched forward equals torchvision's
    ref_pool = block._pool
    block._pool = lambda t: F.avg_pool2d(t, kernel_size=3, stride=1, padding=1)
    torchvision_out = type(block).forward(block, x)
    torch.testing.assert_close(block(x), torchvision_out)
    block._pool = ref_pool
    assert not torch.allclose(block(x), torchvision_out)  # TF pooling ignores the zero padding
    assert model.net.Mixed_7c._pool is inc._max_pool
    for name, cin in (("Mixed_6b", 768), ("Mixed_7b", 1280)):
        blk = getattr(model.net, name)
        randomize(blk)
        y = torch.randn(1, cin, 5, 5)
        blk._pool = lambda t: F.avg_pool2d(t, kernel_size=3, stride=1, padding=1)
        torch.testing.assert_close(blk(y), type(blk).forward(blk, y))


def test_torchvision_variant_features_and_logits():
    model = inc.build_inception(fake_state_dict(aux_logits=True), "inception_v3_google-0cc3c7bd.pth")
    assert not model.info.fid_exact and model.fid_label == "FID (torchvision Inception)"
    feats, logits = model(torch.rand(1, 3, 64, 64) * 2 - 1)  # resized to 299² inside
    assert feats.shape == (1, 2048) and logits.shape == (1, 1000)


def test_plain_weight_files_are_read_and_checked(tmp_path):
    path = tmp_path / "weights.pth"
    torch.save({"fc.weight": torch.zeros(3, 4)}, path)   # readable with weights_only=True
    with pytest.raises(NarError, match="does not match torchvision"):
        inc.load_inception(path)
    torch.save({"conv.weight": torch.zeros(3)}, path)
    with pytest.raises(NarError, match="not an Inception"):
        inc.load_inception(path)
