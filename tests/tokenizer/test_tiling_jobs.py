"""Big images through the commands (issue 20): tiled reconstruct, the memory limit, and
out-of-memory as one line with exit 2 and no output file."""
from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from PIL import Image

from nar.core.memory import NarMemoryError
from nar.pipelines.tokenizer_jobs import reconstruct_image


@pytest.fixture()
def picture(tmp_path):
    y, x = np.mgrid[0:96, 0:120]
    rgb = np.stack([x * 2, y * 2, (x + y)], -1).astype(np.uint8)
    path = tmp_path / "in.png"
    Image.fromarray(rgb).save(path)
    return path


def run_cli(monkeypatch, capsys, *args) -> tuple[int, str]:
    from nar.cli import main
    monkeypatch.setattr(sys, "argv", ["nar", *map(str, args)])
    with pytest.raises(SystemExit) as info:
        main()
    return info.value.code, capsys.readouterr().err


def test_reconstruct_tiled_matches_untiled(trained_tiny, picture, tmp_path):
    whole = reconstruct_image(trained_tiny, picture, tmp_path / "whole.png", device="cpu", tile=False)
    tiled = reconstruct_image(trained_tiny, picture, tmp_path / "tiled.png", device="cpu", tile=True)
    assert tiled["tiled"] and not whole["tiled"]
    a = np.asarray(Image.open(tmp_path / "whole.png"), dtype=float)
    b = np.asarray(Image.open(tmp_path / "tiled.png"), dtype=float)
    assert a.shape == b.shape == (96, 120, 3)
    assert abs(tiled["psnr"] - whole["psnr"]) < 1.0 and np.abs(a - b).mean() < 4


def test_over_the_limit_is_one_line_before_any_work(trained_tiny, picture, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out.png"
    with pytest.raises(NarMemoryError, match=r"120x96 image: to reconstruct needs about .* over the memory limit of 1 MiB"):
        reconstruct_image(trained_tiny, picture, out, device="cpu", max_memory="1M")
    code, err = run_cli(monkeypatch, capsys, "tokenizer", "reconstruct", picture, "--out", out,
                        "--ckpt", trained_tiny, "--max-memory", "1M")
    assert code == 2 and err.count("\n") == 1 and "120x96 image" in err and "1 MiB" in err
    assert not out.exists()


def test_decompression_bomb_is_one_line(trained_tiny, picture, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)      # Pillow refuses > 2x this
    out = tmp_path / "out.png"
    code, err = run_cli(monkeypatch, capsys, "tokenizer", "reconstruct", picture, "--out", out,
                        "--ckpt", trained_tiny)
    assert code == 2 and err.count("\n") == 1 and "decompression bomb" in err
    assert not out.exists()


@pytest.mark.parametrize("tile", ["--tile", "--no-tile"])
def test_out_of_memory_is_one_line_and_no_file(trained_tiny, picture, tmp_path, monkeypatch, capsys, tile):
    from nar.tokenizer import tiling
    from nar.tokenizer.model import VQGAN

    def oom(*args, **kwargs):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate "
                           "memory: you tried to allocate 6400000000 bytes. Error code 12")
    monkeypatch.setattr(VQGAN, "decode_tokens", oom)
    monkeypatch.setattr(tiling, "tiled_decode", oom)
    out = tmp_path / "out.png"
    code, err = run_cli(monkeypatch, capsys, "tokenizer", "reconstruct", picture, "--out", out,
                        "--ckpt", trained_tiny, tile)
    assert code == 2 and err.count("\n") == 1
    assert "out of memory while decoding the 120x96 image" in err and "Traceback" not in err
    assert not out.exists() and list(tmp_path.glob(".out.png*")) == []


def test_out_of_memory_outside_a_guard_is_still_one_line(trained_tiny, picture, tmp_path, monkeypatch, capsys):
    import nar.pipelines.tokenizer_jobs as jobs

    def oom(*args, **kwargs):
        raise MemoryError()
    monkeypatch.setattr(jobs, "reconstruct_image", oom)
    code, err = run_cli(monkeypatch, capsys, "tokenizer", "reconstruct", picture, "--out", tmp_path / "o.png",
                        "--ckpt", trained_tiny)
    assert code == 2 and err.count("\n") == 1 and "out of memory while running `nar tokenizer reconstruct`" in err



def test_pipeline_decode_tiles_on_request(trained_tiny):
    from nar.pipelines.pipeline import Pipeline
    pipe = Pipeline.load(tokenizer=trained_tiny, device="cpu")
    tokens = torch.randint(0, 64, (1, 12, 12), generator=torch.Generator().manual_seed(0))
    whole = pipe.decode_tensor(tokens, tile=False)
    tiled = pipe.decode_tensor(tokens, tile=True)
    assert tiled.shape == whole.shape == (1, 3, 96, 96)
    with pytest.raises(NarMemoryError, match="96x96 image: to decode"):
        Pipeline.load(tokenizer=trained_tiny, device="cpu", max_memory="1M").decode_tensor(tokens)
