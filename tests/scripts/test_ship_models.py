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
