"""scripts/ship_models.py: the training record a shipped model carries (`nar models`, MODEL_CARD)."""
import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ship_models():
    spec = importlib.util.spec_from_file_location("ship_models", ROOT / "scripts" / "ship_models.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fresh_run(run: Path, folder: Path) -> None:
    run.mkdir(parents=True)
    (run / "fresh_schedule.json").write_text(json.dumps(
        {"folder": str(folder), "size": 1024, "seed": 1, "initial": 900, "per_step": 0.5, "window": 0}))
    # two resumed stages: the loop's clock restarts at the second
    (run / "metrics.jsonl").write_text("\n".join(json.dumps({"step": s, "time": t})
                                                 for s, t in [(10, 1800.0), (20, 3600.0), (30, 1800.0)]))


def test_record_names_a_shared_pool(ship_models, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _fresh_run(tmp_path / "run", tmp_path / "other" / "fresh_tokens")
    record = ship_models.training_record(tmp_path / "run", 600)
    assert record["steps"] == 600 and record["wall_hours"] == 1.5
    assert "shared pool other/fresh_tokens" in record["data"]
    assert "seed 1: 1200 grids by step 600" in record["data"]


def test_record_of_a_run_that_made_its_grids(ship_models, tmp_path):
    _fresh_run(tmp_path / "run", tmp_path / "run" / "fresh_tokens")
    record = ship_models.training_record(tmp_path / "run", 100)
    assert "encoded while it trained" in record["data"] and "pool" not in record["data"]


def test_a_later_step_of_the_shipped_run_keeps_the_shipped_parent(ship_models, tmp_path, monkeypatch):
    import torch
    from nar.core.checkpoint import read_meta, save_checkpoint
    monkeypatch.setattr(ship_models, "MODELS_DIR", tmp_path / "models")
    run = tmp_path / "run"
    _fresh_run(run, run / "fresh_tokens")
    grandparent = {"prior": "maskgit", "step": 3000, "source_run": "runs/parent", "training": {"steps": 3000}}
    weights = {"w": torch.ones(2)}
    save_checkpoint(tmp_path / "models" / "maskgit.safetensors", weights,
                    {"kind": "prior", "name": "maskgit", "tokenizer_hash": "t", "tokenizer_factor": 16, "step": 20,
                     "source_run": str(run), "training": {"steps": 20, "fine_tuned_from": grandparent}})
    save_checkpoint(run / "model.safetensors", weights,
                    {"kind": "prior", "name": "maskgit", "tokenizer_hash": "t", "step": 30})
    ship_models.ship_finetune("maskgit", run)
    record = read_meta(tmp_path / "models" / "maskgit.safetensors")["training"]
    assert record["steps"] == 30 and record["wall_hours"] == 1.5      # the whole run, counted once
    assert record["fine_tuned_from"] == grandparent
    # a child of another run records the shipped model as its parent
    other = tmp_path / "other"
    _fresh_run(other, other / "fresh_tokens")
    save_checkpoint(other / "model.safetensors", weights, {"kind": "prior", "name": "sundae", "tokenizer_hash": "t",
                                                            "step": 10})
    ship_models.ship_finetune("sundae", other, "maskgit")
    child = read_meta(tmp_path / "models" / "sundae.safetensors")["training"]["fine_tuned_from"]
    assert child["prior"] == "maskgit" and child["step"] == 30 and child["training"]["fine_tuned_from"] == grandparent


def test_new_sampling_defaults_keep_the_weights_and_record_the_change(ship_models, tmp_path, monkeypatch):
    import torch
    from nar.core.checkpoint import load_checkpoint, read_meta, save_checkpoint
    from nar.core.config import to_dict
    from nar.priors.maskgit import MaskGITConfig
    monkeypatch.setattr(ship_models, "MODELS_DIR", tmp_path)
    weights = {"w": torch.arange(4, dtype=torch.float16)}
    save_checkpoint(tmp_path / "maskgit.safetensors", weights,
                    {"kind": "prior", "name": "maskgit", "step": 2500, "config": to_dict(MaskGITConfig())})
    ship_models.ship_sampling("maskgit", {"choice_temperature": 7, "steps": 16}, note="sharper")
    tensors, meta = load_checkpoint(tmp_path / "maskgit.safetensors")
    assert torch.equal(tensors["w"], weights["w"])
    assert meta["config"]["choice_temperature"] == 7.0 and isinstance(meta["config"]["choice_temperature"], float)
    assert meta["config"]["steps"] == 16 and meta["step"] == 2500
    assert meta["sampling_changes"] == [{"step": 2500, "note": "sharper", "changes": [
        {"key": "choice_temperature", "from": 4.5, "to": 7.0}, {"key": "steps", "from": 12, "to": 16}]}]
    # the network's shape is not a sampling default, and the file stays as it was
    with pytest.raises(SystemExit, match="not a sampling default"):
        ship_models.ship_sampling("maskgit", {"dim": 64})
    assert read_meta(tmp_path / "maskgit.safetensors")["config"]["dim"] == MaskGITConfig().dim
    # a sampling field the config gained after the file was written starts from its default
    config = to_dict(MaskGITConfig())
    del config["schedule"]
    save_checkpoint(tmp_path / "maskgit.safetensors", weights, {"kind": "prior", "name": "maskgit", "config": config})
    ship_models.ship_sampling("maskgit", {"schedule": "linear"})
    meta = read_meta(tmp_path / "maskgit.safetensors")
    assert meta["config"]["schedule"] == "linear"
    assert meta["sampling_changes"][-1]["changes"] == [{"key": "schedule", "from": MaskGITConfig().schedule,
                                                        "to": "linear"}]


def test_the_command_line_answers_mistakes_in_one_line(ship_models, tmp_path, monkeypatch, capsys):
    """--help prints the usage; a flag without its arguments or a missing run is one message."""
    monkeypatch.setattr("sys.argv", ["ship_models.py", "--help"])
    ship_models.cli()
    assert "python scripts/ship_models.py --prior ar" in capsys.readouterr().out
    for argv, message in ((["--prior"], "--prior needs its arguments"),
                          (["--sampling", "maskgit", "steps=20", "--note"], "--note needs its text")):
        monkeypatch.setattr("sys.argv", ["ship_models.py", *argv])
        with pytest.raises(SystemExit, match=message):
            ship_models.cli()
    monkeypatch.setattr("sys.argv", ["ship_models.py", str(tmp_path / "none")])
    with pytest.raises(ship_models.NarError, match="checkpoint not found"):
        ship_models.cli()        # the script's entry point turns this into "ship_models: ..." and exit 1


def test_ar_ships_a_nucleus_filter_as_a_sampling_default(ship_models, tmp_path, monkeypatch):
    import torch
    from nar.core.checkpoint import read_meta, save_checkpoint
    from nar.core.config import to_dict
    from nar.priors.ar import ARConfig
    monkeypatch.setattr(ship_models, "MODELS_DIR", tmp_path)
    save_checkpoint(tmp_path / "ar.safetensors", {"w": torch.zeros(2)},
                    {"kind": "prior", "name": "ar", "step": 500, "config": to_dict(ARConfig())})
    ship_models.ship_sampling("ar", {"top_p": 0.95})
    meta = read_meta(tmp_path / "ar.safetensors")
    assert meta["config"]["top_p"] == 0.95
    assert meta["sampling_changes"][-1]["changes"] == [{"key": "top_p", "from": 1.0, "to": 0.95}]
    with pytest.raises(SystemExit, match="valid config"):
        ship_models.ship_sampling("ar", {"top_p": 2})
    ship_models.ship_sampling("ar", {"temperature": 1.1})   # a draw a little warmer than 1
    meta = read_meta(tmp_path / "ar.safetensors")
    assert meta["config"]["temperature"] == 1.1 and meta["config"]["top_p"] == 0.95
    assert meta["sampling_changes"][-1]["changes"] == [{"key": "temperature", "from": 1.0, "to": 1.1}]
    with pytest.raises(SystemExit, match="valid config"):
        ship_models.ship_sampling("ar", {"temperature": 0})
