"""Helpers for the service tests (PNG bytes <-> arrays)."""
from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image


def png_array(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def b64_png(array: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()
