"""`nar serve`: generation, decoding and 2x super-resolution as HTTP services (FastAPI), with
request batching, a bounded queue, and a web page for interactive refinement at ``/``.

    from nar.serve import ServeConfig, create_app

(Imported lazily, so that `nar --help` and `nar.serve.cli` do not load FastAPI or torch.)"""
from __future__ import annotations

__all__ = ["ServeConfig", "create_app", "Limits"]


def __getattr__(name: str):
    if name in ("ServeConfig", "create_app"):
        from nar.serve import app
        return getattr(app, name)
    if name == "Limits":
        from nar.serve.engine import Limits
        return Limits
    raise AttributeError(f"module 'nar.serve' has no attribute {name!r}")
