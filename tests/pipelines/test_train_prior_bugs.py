"""Prior training bugs found in the floor-plan review: unlabelled images train as the null
class, and ar's codebook_init records the code width it was built with (resume works without
the tokenizer; a new run without it is a clear error, not a silent no-op)."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from nar.core.checkpoint import read_meta
from nar.core.errors import NarError
from nar.data.tokens import TokenCache, write_token_cache
from nar.pipelines.train_prior import load_prior_run_config, train_prior
from nar.train.prior_task import PriorTask

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
QUICK = {"train.batch_size": 2, "train.snapshot_every": 0, "train.warmup_steps": 1, "train.device": "cpu",
         "model.codebook_init": True, "model.code_dim": 0}


def test_unlabelled_images_train_as_the_null_class(tmp_path):
    labels = np.array([-1, 0, 1, -1, 1, 0, -1, -1])
    tokens = np.random.default_rng(0).integers(0, 16, size=(8, 2, 2))
    write_token_cache(tmp_path / "c", tokens, labels, {"codebook_size": 16, "tokenizer_hash": "x",
                                                       "class_names": ["a", "b"]})
    cache = TokenCache.open(tmp_path / "c")
    cls, model_cfg, _ = load_prior_run_config("ar", CONFIGS / "priors" / "ar_tiny.toml")
    prior = cls(model_cfg, 16, 2, (2, 2))
    seen = []

    def loss(tok, cond):
        seen.append((tok.clone(), cond.clone()))
        return {"loss": (prior.head.weight * 0).sum()}

    prior.loss = loss
    task = PriorTask(prior, cache, batch_size=8)
    task.train_step(0, torch.Generator().manual_seed(0), lambda name, value: None)
    (tok, cond), = seen
    by_tokens = {tuple(t.flatten().tolist()): int(lab) for t, lab in zip(torch.from_numpy(tokens), labels)}
    expected = [by_tokens[tuple(t.flatten().tolist())] for t in tok]
    assert [prior.null_class if e < 0 else e for e in expected] == cond.tolist()
    assert (cond == prior.null_class).any()  # the batch did draw unlabelled images


def _cache_without_its_tokenizer(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    header = json.loads((dst / "header.json").read_text())
    header["tokenizer_path"] = str(dst / "moved-away.safetensors")
    (dst / "header.json").write_text(json.dumps(header))
    return dst


def test_ar_codebook_init_resumes_without_the_tokenizer(tiny_models, tmp_path):
    run = tmp_path / "ar"
    train_prior("ar", tiny_models["tokens"], CONFIGS / "priors" / "ar_tiny.toml", {**QUICK, "train.steps": 1},
                out=run, progress=False)
    code_dim = read_meta(run / "model.safetensors")["config"]["code_dim"]
    assert code_dim > 0   # the width the table was built with is what the run records
    orphan = _cache_without_its_tokenizer(Path(tiny_models["tokens"]), tmp_path / "tokens")
    # a later run on a machine without the tokenizer: resume, do not refuse with "different config"
    train_prior("ar", orphan, CONFIGS / "priors" / "ar_tiny.toml", {**QUICK, "train.steps": 2},
                out=run, progress=False)
    meta = read_meta(run / "model.safetensors")
    assert meta["step"] == 2 and meta["config"]["code_dim"] == code_dim
    # a new run that asks for codebook_init without the tokenizer says so
    with pytest.raises(NarError, match="codebook_init is on"):
        train_prior("ar", orphan, CONFIGS / "priors" / "ar_tiny.toml", {**QUICK, "train.steps": 1},
                    out=tmp_path / "new", progress=False)


def test_init_from_codebook_leaves_the_callers_config_alone():
    cls, model_cfg, _ = load_prior_run_config("ar", CONFIGS / "priors" / "ar_tiny.toml",
                                              {"model.codebook_init": True})
    prior = cls(model_cfg, 16, 0, (2, 2))
    assert prior.init_from_codebook(torch.randn(16, 8))
    assert prior.cfg.code_dim == 8 and model_cfg.code_dim == 0
