"""Where checkpoints come from: a user's --ckpt, or the default models shipped in the package."""
from __future__ import annotations

from pathlib import Path

from nar.core.checkpoint import read_meta
from nar.core.errors import NarError

MODELS_DIR = Path(__file__).resolve().parent.parent / "assets" / "models"
TOKENIZER_FILE = "tokenizer.safetensors"


def default_prior_path(name: str) -> Path:
    return MODELS_DIR / f"{name}.safetensors"


def default_tokenizer_path() -> Path:
    return MODELS_DIR / TOKENIZER_FILE


def prior_in_folder(name: str, folder: str | Path) -> Path | None:
    """``folder/<name>.safetensors`` or a run folder's ``folder/<name>/model.safetensors``."""
    folder = Path(folder)
    for path in (folder / f"{name}.safetensors", folder / name / "model.safetensors"):
        if path.is_file():
            return path
    return None


def resolve_prior_ckpt(name: str, ckpt: str | Path | None) -> Path:
    if ckpt is not None:
        return Path(ckpt)
    path = default_prior_path(name)
    if not path.exists():
        raise NarError(f"no default {name!r} model is installed (looked for {path}); "
                       "give the path of a trained checkpoint (a training run's model.safetensors)")
    return path


def resolve_tokenizer_ckpt(tokenizer: str | Path | None, prior_meta: dict | None = None) -> Path:
    """The given tokenizer; else the tokenizer the prior was trained with, when it is still
    where it was; else the shipped default."""
    if tokenizer is not None:
        return Path(tokenizer)
    if prior_meta and prior_meta.get("tokenizer_path"):
        path = Path(prior_meta["tokenizer_path"])
        if path.exists():
            return path
    path = default_tokenizer_path()
    if not path.exists():
        raise NarError(f"no tokenizer given and none installed at {path}; give a tokenizer checkpoint")
    return path


def installed_models() -> list[dict]:
    """One row per shipped checkpoint: file, kind, name, size, training details."""
    rows = []
    for path in sorted(MODELS_DIR.glob("*.safetensors")):
        try:
            meta = read_meta(path)
        except NarError:
            continue
        rows.append({"file": path.name, "path": str(path), "kind": meta.get("kind"),
                     "name": meta.get("name"), "size_mb": path.stat().st_size / 2**20,
                     "step": meta.get("step"), "meta": meta})
    return rows
