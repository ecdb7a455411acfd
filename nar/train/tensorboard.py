"""TensorBoard logging for the training loop (``--tensorboard``): rank 0 writes event files
into ``<run>/tensorboard/``, beside ``metrics.jsonl``.

Tags: ``train/<metric>`` for every metric a task reports (losses, ``usage`` = codebook usage,
PSNR, ...), ``lr``, ``grad_norm/<optimizer>``, ``throughput/samples_per_s`` and
``throughput/steps_per_s`` (global batch, since the previous log line), and ``snapshot``: the
sample / reconstruction grid the task writes to ``snapshots/step_XXXXXXX.png``.
A resumed run drops the events logged after the step it resumes from (``purge_step``), so
an interrupted and resumed run reads as one.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from nar.core.errors import NarError

TB_DIR = "tensorboard"


class TensorBoardLog:
    def __init__(self, run_dir: str | Path, start_step: int = 0):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # torch.utils.tensorboard needs the tensorboard package
            raise NarError("--tensorboard needs the tensorboard package: pip install tensorboard") from None
        self.dir = Path(run_dir) / TB_DIR
        # resumed at start_step: events logged past it (before an interruption) are stale
        self.writer = SummaryWriter(str(self.dir), purge_step=start_step + 1 if start_step else None)

    def scalars(self, step: int, record: dict[str, Any], samples_per_s: float | None = None,
                steps_per_s: float | None = None) -> None:
        for key, value in record.items():
            if key in ("step", "time") or not isinstance(value, (int, float)):
                continue
            if key == "lr":
                tag = "lr"
            elif key.startswith("grad_norm_"):
                tag = "grad_norm/" + key[len("grad_norm_"):]
            else:
                tag = "train/" + key
            self.writer.add_scalar(tag, float(value), step)
        if samples_per_s is not None:
            self.writer.add_scalar("throughput/samples_per_s", samples_per_s, step)
        if steps_per_s is not None:
            self.writer.add_scalar("throughput/steps_per_s", steps_per_s, step)
        self.writer.flush()

    def image(self, step: int, path: str | Path, tag: str = "snapshot") -> None:
        path = Path(path)
        if not path.is_file():
            return
        with Image.open(path) as im:
            pixels = np.asarray(im.convert("RGB"))
        self.writer.add_image(tag, pixels, step, dataformats="HWC")
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
