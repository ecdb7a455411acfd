"""The shared loop: loss goes down, resume equals an uninterrupted run, metrics are kept tidy."""
import json
import torch
from torch import nn

from nar.core.checkpoint import load_checkpoint
from nar.train.loop import TrainConfig, Trainer, lr_at


class RegressionTask:
    """y = A x with noise from the step generator; a GAN-like second optimizer checks multi-optimizer state."""

    def __init__(self):
        torch.manual_seed(0)
        self.model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.1), nn.Linear(8, 2))
        self.critic = nn.Linear(2, 1)
        self.A = torch.randn(4, 2)

    def optimizers(self):
        return {"gen": list(self.model.parameters()), "critic": list(self.critic.parameters())}

    def extra_modules(self):
        return {"critic": self.critic}

    def checkpoint_meta(self):
        return {"kind": "test", "name": "regression", "config": {"d": 4}}

    def train_step(self, step, generator, optimize):
        x = torch.randn(16, 4, generator=generator)
        loss = ((self.model(x) - x @ self.A) ** 2).mean()
        optimize("gen", loss)
        critic_loss = self.critic(self.model(x).detach()).pow(2).mean()
        optimize("critic", critic_loss)
        return {"loss": loss.item()}

    def snapshot(self, model, step, out_dir):
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / f"{step}.txt").write_text("ok")


CFG = TrainConfig(steps=40, batch_size=16, lr=1e-2, warmup_steps=5, log_every=5, ckpt_every=10,
                  snapshot_every=20, ema_decay=0.9, device="cpu")


def test_loss_goes_down_and_files_written(tmp_path):
    Trainer(RegressionTask(), CFG, tmp_path, progress=False).run()
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert lines[-1]["loss"] < 0.5 * lines[0]["loss"]
    assert [r["step"] for r in lines] == list(range(5, 41, 5))
    assert (tmp_path / "snapshots" / "40.txt").exists()
    _, meta = load_checkpoint(tmp_path / "model.safetensors")
    assert meta["step"] == 40 and meta["ema"] and meta["kind"] == "test"


def test_resume_equals_uninterrupted(tmp_path):
    full = Trainer(RegressionTask(), CFG, tmp_path / "full", progress=False)
    full.run()
    Trainer(RegressionTask(), CFG, tmp_path / "split", progress=False).run(until=17)
    # the second half is a fresh process-like start: new task object, same config, same run dir
    resumed = Trainer(RegressionTask(), CFG, tmp_path / "split", progress=False)
    resumed.run()
    for a, b in zip(full.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)
    for a, b in zip(full.ema.state_dict().values(), resumed.ema.state_dict().values()):
        assert torch.equal(a, b)
    assert torch.equal(full.extras["critic"].weight, resumed.extras["critic"].weight)
    steps = [json.loads(x)["step"] for x in (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps))  # no duplicated records after resume


def test_lr_schedule_warmup_and_cosine():
    cfg = TrainConfig(steps=100, lr=1.0, warmup_steps=10, min_lr_ratio=0.1)
    assert lr_at(0, cfg) == 0.1 and lr_at(9, cfg) == 1.0
    assert abs(lr_at(100, cfg) - 0.1) < 1e-9
    assert lr_at(50, cfg) < lr_at(20, cfg)


class CrashingTask(RegressionTask):
    def train_step(self, step, generator, optimize):
        if step == 7:
            raise RuntimeError("boom")
        return super().train_step(step, generator, optimize)


def test_metrics_file_is_closed_when_a_step_raises(tmp_path, monkeypatch):
    import builtins
    import pytest

    opened = []
    real_open = builtins.open

    def recording_open(file, *args, **kwargs):
        f = real_open(file, *args, **kwargs)
        if str(file).endswith("metrics.jsonl"):
            opened.append(f)
        return f

    monkeypatch.setattr(builtins, "open", recording_open)
    with pytest.raises(RuntimeError, match="boom") as excinfo:
        Trainer(CrashingTask(), CFG, tmp_path, progress=False).run()
    assert excinfo.traceback  # the traceback (and its frames) is still alive here
    assert opened and all(f.closed for f in opened)
    steps = [json.loads(x)["step"] for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert steps == [5]
