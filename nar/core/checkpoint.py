"""Checkpoint I/O: safetensors weights with JSON metadata inside the header.

Every nar checkpoint is one ``.safetensors`` file whose header metadata holds a JSON
document under the key ``"nar"`` (kind, config, step, provenance). Writes are atomic
(temp file in the same folder + ``os.replace``). Pickle formats are refused outright.
"""
from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors import safe_open
from safetensors.torch import save, save_file

from nar.core.errors import NarError

PICKLE_SUFFIXES = {".pt", ".pth", ".ckpt", ".bin", ".pkl", ".pickle"}
META_KEY = "nar"


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a written checkpoint/image is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def read_json(path: str | Path) -> Any:
    """A JSON file nar wrote (a header, an index); one that does not parse is a NarError."""
    try:
        return json.loads(Path(path).read_text())
    except ValueError:          # bad JSON, or bytes that are not text
        raise NarError(f"{path} is corrupt") from None
    except OSError as e:
        raise NarError(f"{path} cannot be read: {e.strerror or e}") from None


def tensors_hash(tensors: dict[str, torch.Tensor]) -> str:
    """Content hash of a set of tensors (names, dtypes, shapes, values), 16 hex chars."""
    blob = save({k: v.detach().contiguous().cpu() for k, v in sorted(tensors.items())})
    return hashlib.sha256(blob).hexdigest()[:16]


def save_checkpoint(path: str | Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> Path:
    """Atomically write ``tensors`` + JSON ``meta`` to ``path`` (a .safetensors file)."""
    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"checkpoint path must end in .safetensors: {path}")
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata={META_KEY: json.dumps(meta)})
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _check_path(path: Path) -> None:
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise NarError(f"{path}: pickle checkpoints ({path.suffix}) are refused; "
                       "nar only loads .safetensors files it wrote")
    if not path.exists():
        raise NarError(f"checkpoint not found: {path}")
    if not path.is_file():
        raise NarError(f"checkpoint is not a file: {path}")


def read_meta(path: str | Path) -> dict[str, Any]:
    """Read only the JSON metadata (cheap: no tensor data is loaded)."""
    path = Path(path)
    _check_path(path)
    try:
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            if n > 100_000_000:
                raise ValueError("header too large")
            header = json.loads(f.read(n))
        meta = header.get("__metadata__", {}).get(META_KEY)
        if meta is None:
            raise ValueError("no nar metadata")
        return json.loads(meta)
    except (ValueError, struct.error, UnicodeDecodeError, json.JSONDecodeError):
        raise NarError(f"{path} is not a nar safetensors checkpoint") from None


def load_checkpoint(path: str | Path, prefix: str | None = None,
                    device: str | torch.device = "cpu") -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Return (tensors, meta). With ``prefix``, only tensors whose name starts with it
    (prefix stripped) are read, e.g. ``prefix="decoder."`` for a decode-only load."""
    path = Path(path)
    meta = read_meta(path)
    tensors = {}
    try:
        with safe_open(str(path), framework="pt", device=str(device)) as f:
            for key in f.keys():
                if prefix is None:
                    tensors[key] = f.get_tensor(key)
                elif key.startswith(prefix):
                    tensors[key[len(prefix):]] = f.get_tensor(key)
    except Exception as e:  # safetensors raises its own error types
        raise NarError(f"{path} could not be read as safetensors: {e}") from None
    return tensors, meta


def expect_kind(meta: dict[str, Any], kind: str, path: str | Path, name: str | None = None) -> None:
    """Fail clearly when a checkpoint is of another kind (e.g. a tokenizer given as a prior)."""
    got = meta.get("kind")
    if got != kind:
        raise NarError(f"{path} is a {got or 'unknown'} checkpoint, expected a {kind} checkpoint")
    if name is not None and meta.get("name") != name:
        raise NarError(f"{path} is a checkpoint of {kind} {meta.get('name')!r}, not {name!r}")


def load_weights_into(module: torch.nn.Module, path: str | Path, kind: str, name: str | None = None,
                      allow_new: bool = False, keep_own: Callable[[str], bool] | None = None) -> None:
    """Copy a trained checkpoint's weights into ``module`` (a run that starts from a trained
    model). Every tensor of the checkpoint must be in ``module`` with the same shape; with
    ``allow_new``, tensors ``module`` has and the checkpoint lacks (blocks a config adds) keep
    their initialisation, otherwise they are an error too. Tensors whose name ``keep_own``
    accepts are neither copied nor required: they keep the module's own initialisation."""
    tensors, meta = load_checkpoint(path)
    expect_kind(meta, kind, path, name)
    skipped = keep_own or (lambda k: False)
    tensors = {k: v for k, v in tensors.items() if not skipped(k)}
    own = module.state_dict()
    unknown = sorted(k for k in tensors if k not in own)
    missing = [] if allow_new else sorted(k for k in own if k not in tensors and not skipped(k))
    wrong = sorted(k for k in tensors if k in own and tensors[k].shape != own[k].shape)
    if unknown or missing or wrong:
        raise NarError(f"{path} does not fit this {name or kind} config ({len(unknown)} tensors it does not "
                       f"have, {len(missing)} missing, {len(wrong)} of another shape, "
                       f"e.g. {(unknown + missing + wrong)[0]})")
    module.load_state_dict({k: v.to(own[k].dtype) for k, v in tensors.items()}, strict=not (allow_new or keep_own))
