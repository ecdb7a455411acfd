"""The Python API as users see it (issue 19): the README's example runs as written, `nar sample`
is a thin shell over `Pipeline.sample` (same pixels), callbacks reach every prior through the
pipeline, and the sampling progress bar."""
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nar import Pipeline
from nar.core.progress import StepProgress

ROOT = Path(__file__).resolve().parents[2]


def readme_python_example() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Python\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert blocks, "README's Python section has no python code block"
    return blocks[0]


def test_readme_python_example_runs_as_written(tmp_path, monkeypatch, capsys):
    code = readme_python_example()
    assert "from nar import Pipeline" in code and "Pipeline.load()" in code
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md#python", "exec"), {"__name__": "readme_example"})
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "torch.Size([2, 16, 16]) 8"                 # what the example's comment says
    assert printed[1:] == [f"step {i}/4" for i in range(1, 5)]        # the callback, once per step
    assert Image.open(tmp_path / "lake.png").size == (256, 256)


def run_cli(monkeypatch, capsys, *args):
    from nar.cli import main
    monkeypatch.setattr(sys, "argv", ["nar", *map(str, args)])
    with pytest.raises(SystemExit) as done:
        main()
    return done.value.code, capsys.readouterr().err


@pytest.fixture()
def pipe(tiny_models):
    return Pipeline.load(tokenizer=tiny_models["tokenizer"], priors=dict(tiny_models["priors"]), device="cpu")


@pytest.mark.parametrize("prior", ["ar", "maskgit", "sundae"])
def test_nar_sample_writes_the_pipelines_pixels(prior, pipe, tiny_models, tmp_path, monkeypatch, capsys):
    code, err = run_cli(monkeypatch, capsys, "sample", "--prior", prior, "--ckpt", tiny_models["priors"][prior],
                        "--tokenizer", tiny_models["tokenizer"], "--n", 2, "--steps", 3, "--seed", 5,
                        "--device", "cpu", "--out", tmp_path)
    assert code == 0, err
    out = pipe.sample(prior=prior, n=2, steps=3, seed=5)
    for i, image in enumerate(out.images):
        png = np.asarray(Image.open(tmp_path / f"{prior}_seed5_{i:03d}.png").convert("RGB"))
        assert np.array_equal(np.asarray(image), png)


def test_callbacks_through_the_pipeline(pipe):
    calls = {}
    for name in ("ar", "maskgit", "sundae"):
        seen = calls[name] = []
        out = pipe.sample(prior=name, n=2, steps=3, seed=0, callback=lambda s, t, x, seen=seen: seen.append((s, t, x.shape)))
        h = out.tokens.shape[1]
        expected = h if name == "ar" else out.steps_run        # ar: rows; the others: steps run
        assert [c[0] for c in seen] == list(range(expected)) and len(seen) == expected
        assert all(c[2] == out.tokens.shape for c in seen)
    assert all(t == 3 for _, t, _ in calls["maskgit"]) and all(t == 3 for _, t, _ in calls["sundae"])
    seen = []
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    mask = np.zeros((32, 32), bool)
    mask[8:24, 8:24] = True
    out = pipe.inpaint(image, mask, prior="maskgit", steps=2, seed=0, callback=lambda *a: seen.append(a[:2]))
    assert out.steps_run >= 1 and seen == [(i, out.steps_run) for i in range(out.steps_run)]


def test_step_progress_shows_only_after_its_delay():
    with StepProgress("ar", unit="rows", delay=3600) as quiet:
        for i in range(4):
            quiet(i, 4, None)
    assert quiet.calls == 4 and quiet.progress is None
    with StepProgress("ar", unit="rows", delay=0) as bar:
        bar(0, 4, None)
        bar(1, 4, None)
        assert bar.progress is not None and bar.progress.tasks[0].completed == 2
    assert bar.progress is None


def test_serve_engine_progress_hook(tiny_models):
    from nar.serve.engine import Engine, GenerateKey
    engine = Engine(role="generate", tokenizer=tiny_models["tokenizer"], priors=dict(tiny_models["priors"]),
                    device="cpu")
    key = GenerateKey(prior="maskgit", grid=(4, 4), size=None, steps=3, temperature=1.0, top_k=None, top_p=None,
                      class_name=None, cfg=1.0, decode=False)
    seen = []
    engine.step_callback = lambda k, step, total: seen.append((k, step, total))
    out = engine._sample_tokens(key, 2, seed=0)
    assert seen == [(key, i, 3) for i in range(out.steps_run)] and out.steps_run == 3
