"""Copy trained checkpoints into the package as the default models (fp16 weights + metadata).

    python scripts/ship_models.py runs/defaults

expects RUN/tokenizer/model.safetensors and RUN/{ar,maskgit,sundae}/model.safetensors.
The shipped tokenizer keeps the content hash of the weights it was trained as, so priors
trained on its token cache still match it; priors point at the shipped tokenizer.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

from nar.core.checkpoint import load_checkpoint, save_checkpoint
from nar.pipelines.models import MODELS_DIR, TOKENIZER_FILE
from nar.tokenizer.api import tokenizer_hash


def half(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.half() if v.is_floating_point() else v for k, v in tensors.items()}


def main(run: Path) -> None:
    MODELS_DIR.mkdir(parents=True, exist_ok=True)
    tok_src = run / "tokenizer" / "model.safetensors"
    tensors, meta = load_checkpoint(tok_src)
    meta = {**meta, "hash": tokenizer_hash(tok_src), "weights_dtype": "float16", "source_run": str(run)}
    save_checkpoint(MODELS_DIR / TOKENIZER_FILE, half(tensors), meta)
    print(f"tokenizer -> {MODELS_DIR / TOKENIZER_FILE}")
    for name in ("ar", "maskgit", "sundae"):
        src = run / name / "model.safetensors"
        if not src.exists():
            print(f"{name}: no checkpoint at {src}, skipped")
            continue
        tensors, meta = load_checkpoint(src)
        if meta.get("tokenizer_hash") != tokenizer_hash(tok_src):
            raise SystemExit(f"{src} was not trained on {tok_src}'s tokens")
        meta = {**meta, "tokenizer_path": None, "token_cache": None, "weights_dtype": "float16",
                "source_run": str(run / name)}
        save_checkpoint(MODELS_DIR / f"{name}.safetensors", half(tensors), meta)
        print(f"{name} (step {meta.get('step')}) -> {MODELS_DIR / (name + '.safetensors')}")



if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/defaults"))
