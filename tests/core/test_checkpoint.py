import pickle

import pytest
import torch

from nar.core.checkpoint import expect_kind, load_checkpoint, read_json, read_meta, save_checkpoint, tensors_hash
from nar.core.errors import NarError
from nar.core.registry import Registry


def test_round_trip_and_prefix(tmp_path):
    tensors = {"encoder.w": torch.randn(3, 4), "decoder.w": torch.randn(2), "decoder.b": torch.arange(3)}
    path = save_checkpoint(tmp_path / "m.safetensors", tensors, {"kind": "tokenizer", "step": 3})
    loaded, meta = load_checkpoint(path)
    assert meta == {"kind": "tokenizer", "step": 3}
    assert all(torch.equal(loaded[k], v) for k, v in tensors.items())
    dec, _ = load_checkpoint(path, prefix="decoder.")
    assert set(dec) == {"w", "b"}
    assert read_meta(path)["step"] == 3
    assert not list(tmp_path.glob(".*tmp"))  # atomic write leaves no temp file


def test_refuses_pickles_and_foreign_files(tmp_path):
    pt = tmp_path / "model.pt"
    pt.write_bytes(pickle.dumps({"w": 1}))
    with pytest.raises(NarError, match="pickle"):
        load_checkpoint(pt)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(NarError, match="not a nar safetensors checkpoint"):
        read_meta(junk)
    with pytest.raises(NarError, match="not found"):
        read_meta(tmp_path / "missing.safetensors")


def test_expect_kind_and_hash(tmp_path):
    with pytest.raises(NarError, match="expected a prior"):
        expect_kind({"kind": "tokenizer"}, "prior", "x")
    with pytest.raises(NarError, match="not 'ar'"):
        expect_kind({"kind": "prior", "name": "sundae"}, "prior", "x", "ar")
    a = {"w": torch.ones(2)}
    assert tensors_hash(a) == tensors_hash({"w": torch.ones(2)}) != tensors_hash({"w": torch.zeros(2)})


def test_registry_lists_known_names():
    reg = Registry("prior")
    reg.register("b")(object)
    reg.register("a")(object)
    assert reg.names() == ["a", "b"]
    with pytest.raises(NarError, match="registered: a, b"):
        reg.get("zzz")
    with pytest.raises(ValueError):
        reg.register("a")(object)


def test_read_json_names_a_corrupt_or_unreadable_file(tmp_path):
    good = tmp_path / "header.json"
    good.write_text('{"n": 3}')
    assert read_json(good) == {"n": 3}
    for name, data in (("cut.json", b'{"n": '), ("binary.json", b"\xff\xfe\x00")):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(NarError, match=f"{name} is corrupt"):
            read_json(tmp_path / name)
    with pytest.raises(NarError, match="cannot be read"):
        read_json(tmp_path)                     # a folder, not a file
