"""Packaged recipes (--config NAME, `nar configs`), the wheel's contents and --tensorboard."""
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from nar.core.config import load_toml
from nar.core.errors import ArgumentError
from nar.core.recipes import KINDS_PRIOR, KINDS_SR, KINDS_TOKENIZER, list_recipes, recipes_dir, resolve_config

ROOT = Path(__file__).resolve().parents[2]


def run_cli(monkeypatch, capsys, *args) -> tuple[int, str, str]:
    from nar.cli import main
    monkeypatch.setattr(sys, "argv", ["nar", *map(str, args)])
    with pytest.raises(SystemExit) as done:
        main()
    captured = capsys.readouterr()
    return done.value.code, captured.out, captured.err


def test_bare_names_resolve_to_packaged_recipes_and_paths_still_work(tmp_path):
    assert recipes_dir() == ROOT / "configs"   # a checkout reads configs/ (a wheel: nar/recipes/)
    assert resolve_config("f16_small", KINDS_TOKENIZER) == ROOT / "configs/tokenizer/f16_small.toml"
    assert resolve_config("tiny", KINDS_SR) == ROOT / "configs/sr/tiny.toml"        # same name, other kind
    assert resolve_config("sundae", KINDS_PRIOR) == ROOT / "configs/priors/sundae.toml"  # priors/ first
    assert resolve_config("defaults/sundae", KINDS_PRIOR) == ROOT / "configs/defaults/sundae.toml"
    own = tmp_path / "mine.toml"
    own.write_text("steps = 3\n")
    assert resolve_config(own, KINDS_TOKENIZER) == own and load_toml(own) == {"steps": 3}
    assert resolve_config("configs/tokenizer/tiny.toml") == Path("configs/tokenizer/tiny.toml")
    assert resolve_config(None) is None


def test_unknown_name_is_one_line_listing_the_recipes(monkeypatch, capsys, tmp_path):
    with pytest.raises(ArgumentError) as e:
        resolve_config("f16_smal", KINDS_TOKENIZER)
    listed = str(e.value).split("recipes: ")[1].split(" (")[0].split(", ")
    assert e.value.name == "config" and listed == [k.split("/", 1)[1] for k in list_recipes(KINDS_TOKENIZER)]  # every one
    assert {"f16_small", "f16_small_sharp", "f32_1024", "tiny"} <= set(listed)
    code, _, err = run_cli(monkeypatch, capsys, "tokenizer", "train", "--config", "f16_smal", "--out", tmp_path / "r")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--config" in err and "f16_small" in err
    assert not (tmp_path / "r").exists()


def test_nar_configs_lists_every_recipe_with_its_first_comment(monkeypatch, capsys):
    code, out, _ = run_cli(monkeypatch, capsys, "configs")
    assert code == 0
    recipes = list_recipes()
    assert {"tokenizer/f16_small", "priors/sundae_tiny", "defaults/ar", "sr/v1", "sr/v2"} <= set(recipes)
    lines = out.splitlines()
    for key in recipes:
        line = next(ln for ln in lines if ln.split()[:1] == [key])
        assert len(line.split()) > 2   # the recipe's description follows its name


def _events(run: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    files = list((run / "tensorboard").glob("events.out.tfevents.*"))
    assert files, "no TensorBoard events file"
    acc = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    return acc


def test_tokenizer_train_by_recipe_name_with_tensorboard(monkeypatch, capsys, tmp_path):
    run = tmp_path / "tok"
    code, _, err = run_cli(monkeypatch, capsys, "tokenizer", "train", "--config", "tiny", "--set", "train.steps=2",
                           "--set", "image_size=32", "--set", "train.log_every=1", "--set", "train.snapshot_every=2",
                           "--set", "train.batch_size=2", "--out", run, "--tensorboard")
    assert code == 0, err
    assert (run / "metrics.jsonl").exists() and (run / "model.safetensors").exists()
    acc = _events(run)
    tags = set(acc.Tags()["scalars"])
    assert {"train/loss", "train/usage", "lr", "throughput/samples_per_s", "throughput/steps_per_s"} <= tags
    assert [e.step for e in acc.Scalars("train/loss")] == [1, 2]
    assert "snapshot" in acc.Tags()["images"]
    # resumed: the run continues in the same log
    code, _, err = run_cli(monkeypatch, capsys, "tokenizer", "train", "--config", "tiny", "--set", "train.steps=3",
                           "--set", "image_size=32", "--set", "train.log_every=1", "--set", "train.snapshot_every=2",
                           "--set", "train.batch_size=2", "--out", run, "--tensorboard")
    assert code == 0, err
    assert [e.step for e in _events(run).Scalars("train/loss")] == [1, 2, 3]


def test_prior_train_with_tensorboard(tiny_models, monkeypatch, capsys, tmp_path):
    run = tmp_path / "mg"
    code, _, err = run_cli(monkeypatch, capsys, "train", "--prior", "maskgit", "--tokens", tiny_models["tokens"],
                           "--config", "maskgit_tiny", "--set", "train.steps=2", "--set", "train.batch_size=4",
                           "--set", "train.log_every=1", "--set", "train.snapshot_every=2",
                           "--set", "train.warmup_steps=1", "--set", "train.device=cpu", "--out", run, "--tensorboard")
    assert code == 0, err
    acc = _events(run)
    assert {"train/loss", "lr", "throughput/samples_per_s"} <= set(acc.Tags()["scalars"])
    assert "snapshot" in acc.Tags()["images"]


def test_without_the_flag_no_tensorboard_folder(tmp_path):
    from nar.pipelines.tokenizer_jobs import train_tokenizer
    train_tokenizer("tiny", {"train.steps": 1, "image_size": 32, "train.batch_size": 2, "train.snapshot_every": 0},
                    out=tmp_path / "tok", progress=False)
    assert not (tmp_path / "tok" / "tensorboard").exists()


def test_built_wheel_carries_the_recipes_and_the_shipped_models(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md"):
        shutil.copy(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "nar", src / "nar", ignore=ignore)
    shutil.copytree(ROOT / "configs", src / "configs", ignore=ignore)
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation",
                           "-w", str(tmp_path / "whl")], cwd=src, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    wheel, = (tmp_path / "whl").glob("nar-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    # compared with the copy built from (other work may add files to the checkout meanwhile)
    recipes = {f"nar/recipes/{p.relative_to(src / 'configs')}" for p in (src / "configs").glob("*/*.toml")}
    assert recipes and recipes <= names
    models = {f"nar/assets/models/{p.name}" for p in (src / "nar/assets/models").glob("*.safetensors")}
    assert {"nar/assets/models/tokenizer.safetensors", "nar/assets/models/sundae.safetensors"} <= models <= names
    # the installed package finds its recipes by name, away from the checkout
    target = tmp_path / "site"
    with zipfile.ZipFile(wheel) as z:
        z.extractall(target)
    probe = ("import nar.core.recipes as r; p = r.resolve_config('f16_small', r.KINDS_TOKENIZER); "
             "print(r.recipes_dir()); print(p)")
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True,
                          env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-2000:]
    where, path = done.stdout.split()
    assert Path(where) == target / "nar" / "recipes" and Path(path) == target / "nar/recipes/tokenizer/f16_small.toml"
