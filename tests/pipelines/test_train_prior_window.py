"""Prior training on random windows of the token grids ([data] window; Taming's crops): the
prior learns the window, samples the data's grid by default (AR: with its sliding window)."""
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from nar.core.errors import NarError
from nar.data.tokens import TokenCache
from nar.pipelines.train_prior import prior_data_config, train_prior
from nar.train.prior_task import PriorTask

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
QUICK = {"train.steps": 2, "train.batch_size": 2, "train.snapshot_every": 0, "train.warmup_steps": 1,
         "train.device": "cpu"}


def test_windows_are_cut_from_the_drawn_grids(tiny_models):
    cache = TokenCache.open(tiny_models["tokens"])
    h, w = cache.grid
    task = PriorTask(SimpleNamespace(num_classes=0), cache, 4, window=(h // 2, w // 2))
    tokens, _ = cache.batch(4, torch.Generator().manual_seed(3))
    cut, top = task._windows(tokens, torch.Generator().manual_seed(5), 4, slice(0, 4))
    assert cut.shape == (4, h // 2, w // 2) and top.shape == (4,)
    for grid, window, t in zip(tokens, cut, top.tolist()):  # the window starts at its reported row
        assert any(torch.equal(grid[t:t + h // 2, s:s + w // 2], window) for s in range(w - w // 2 + 1))
    # a rank's part of the global batch is that part of the same windows
    half, half_top = task._windows(tokens[2:], torch.Generator().manual_seed(5), 4, slice(2, 4))
    assert torch.equal(half, cut[2:]) and torch.equal(half_top, top[2:])


def test_a_window_trained_ar_samples_the_data_grid_by_default(tiny_models, tmp_path):
    from nar.core.checkpoint import read_meta
    from nar.pipelines.pipeline import Pipeline
    cache = TokenCache.open(tiny_models["tokens"])
    h, w = cache.grid
    run = train_prior("ar", tiny_models["tokens"], CONFIGS / "priors" / "ar_tiny.toml",
                      {**QUICK, "data.window": [h // 2, w // 2]}, out=tmp_path / "ar", progress=False)
    meta = read_meta(run / "model.safetensors")
    assert meta["train_grid"] == [h // 2, w // 2] and meta["data_grid"] == [h, w]
    pipe = Pipeline.load(tokenizer=tiny_models["tokenizer"], priors={"ar": run / "model.safetensors"})
    assert pipe.resolve_grid("ar") == (h, w)
    out = pipe.prior("ar").sample(1, (h, w), generator=torch.Generator().manual_seed(0))
    assert out.tokens.shape == (1, h, w)


def test_absolute_rows_train_on_windows_and_need_the_grid_height(tiny_models, tmp_path):
    from nar.core.checkpoint import read_meta
    h, w = TokenCache.open(tiny_models["tokens"]).grid
    window = {**QUICK, "data.window": [h // 2, w]}
    run = train_prior("ar", tiny_models["tokens"], CONFIGS / "priors" / "ar_tiny.toml",
                      {**window, "model.grid_rows": h}, out=tmp_path / "rows", progress=False)
    meta = read_meta(run / "model.safetensors")
    assert meta["config"]["grid_rows"] == h and meta["train_grid"] == [h // 2, w]
    with pytest.raises(NarError, match=f"grid_rows = {h + 2}, but the training grids have {h} rows"):
        train_prior("ar", tiny_models["tokens"], CONFIGS / "priors" / "ar_tiny.toml",
                    {**window, "model.grid_rows": h + 2}, out=tmp_path / "tall", progress=False)
    # a parent without absolute rows is adopted: its row table stretched over the grid's rows
    child = train_prior("ar", tiny_models["tokens"], CONFIGS / "priors" / "ar_tiny.toml",
                        {**window, "model.grid_rows": h}, out=tmp_path / "child", progress=False,
                        init_from=train_prior("ar", tiny_models["tokens"], CONFIGS / "priors" / "ar_tiny.toml",
                                              window, out=tmp_path / "parent", progress=False) / "model.safetensors")
    assert read_meta(child / "model.safetensors")["config"]["grid_rows"] == h


def test_bad_windows_are_refused(tiny_models, tmp_path):
    h, w = TokenCache.open(tiny_models["tokens"]).grid
    with pytest.raises(NarError, match="larger than"):
        train_prior("ar", tiny_models["tokens"], CONFIGS / "priors" / "ar_tiny.toml",
                    {**QUICK, "data.window": [h + 1, w]}, out=tmp_path / "big", progress=False)
    with pytest.raises(NarError, match="window"):
        prior_data_config(None, {"data.window": [0, 4]})
    with pytest.raises(NarError, match="unknown field"):
        prior_data_config(None, {"data.crop": 4})
    assert prior_data_config(None, {"data.window": 6}) == {"window": (6, 6)}
