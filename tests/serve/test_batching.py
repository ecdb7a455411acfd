"""The batching queue: gathers same-key requests up to N or T ms, keeps keys apart, refuses
work beyond its bound (503), and keeps every request's seed (same tokens as the CLI)."""
from __future__ import annotations

import threading
import time

import pytest
import torch

from nar.serve.batching import BatchQueue, QueueFull


def recording_queue(**kw):
    batches = []

    def run(key, payloads, infos):
        batches.append((key, list(payloads), [i.size for i in infos]))
        return [p * 10 for p in payloads]

    return BatchQueue(run, **kw), batches


def test_gathers_up_to_max_batch_and_keeps_keys_apart():
    q, batches = recording_queue(max_batch=3, max_wait_ms=300, max_queue=16)
    try:
        futures = [q.submit("a" if i % 2 == 0 else "b", i) for i in range(8)]
        results = [f.result(timeout=10) for f in futures]
    finally:
        q.stop()
    assert [r for r, _ in results] == [i * 10 for i in range(8)]
    assert [b[0] for b in batches] == ["a", "b", "a", "b"]          # oldest request's key first
    assert [b[1] for b in batches] == [[0, 2, 4], [1, 3, 5], [6], [7]]
    assert [info.size for _, info in results] == [3, 3, 3, 3, 3, 3, 1, 1]


def test_a_lone_request_waits_at_most_max_wait():
    q, batches = recording_queue(max_batch=8, max_wait_ms=50, max_queue=4)
    try:
        t0 = time.perf_counter()
        result, info = q.submit("k", 1).result(timeout=10)
        elapsed = time.perf_counter() - t0
    finally:
        q.stop()
    assert result == 10 and info.size == 1 and 0.04 <= elapsed < 2.0


def test_full_queue_refuses_and_recovers():
    gate = threading.Event()

    def run(key, payloads, infos):
        gate.wait(10)
        return payloads

    q = BatchQueue(run, max_batch=1, max_wait_ms=0, max_queue=2)
    try:
        first = q.submit("k", 0)
        deadline = time.monotonic() + 5
        while not q.busy and time.monotonic() < deadline:   # the worker holds request 0
            time.sleep(0.005)
        waiting = [q.submit("k", 1), q.submit("k", 2)]
        with pytest.raises(QueueFull, match="full"):
            q.submit("k", 3)
        gate.set()
        assert [f.result(timeout=10)[0] for f in [first, *waiting]] == [0, 1, 2]
        assert q.submit("k", 4).result(timeout=10)[0] == 4
    finally:
        gate.set()
        q.stop()


def test_a_failing_batch_fails_only_its_requests():
    def run(key, payloads, infos):
        if key == "bad":
            raise ValueError("boom")
        return payloads

    q = BatchQueue(run, max_batch=4, max_wait_ms=1, max_queue=8)
    try:
        bad, good = q.submit("bad", 1), q.submit("good", 2)
        with pytest.raises(ValueError, match="boom"):
            bad.result(timeout=10)
        assert good.result(timeout=10)[0] == 2
    finally:
        q.stop()


# ---- through HTTP, on the shipped sundae ------------------------------------------------------------
REQ = {"prior": "sundae", "size": 256, "steps": 2}


@pytest.fixture(scope="module")
def batching_server():
    from nar.serve import ServeConfig, create_app
    from nar.serve.server import running
    app = create_app(ServeConfig(role="all", device="cpu", max_batch=8, max_wait_ms=1000, max_queue=16,
                                 preload=("sundae",)))
    with running(app) as url:
        yield app, url


def post_all(url, bodies):
    import httpx
    out = [None] * len(bodies)

    def one(i):
        out[i] = httpx.post(url + "/generate", json=bodies[i], timeout=60)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return out


def test_batched_requests_keep_their_seeds(batching_server):
    app, url = batching_server
    seeds = [11, 12, 13]
    replies = post_all(url, [{**REQ, "seed": s} for s in seeds] + [dict(REQ) for _ in range(3)])
    assert all(r.status_code == 200 for r in replies), [r.text for r in replies]
    bodies = [r.json() for r in replies]
    pipe = app.state.engine.pipeline
    for s, body in zip(seeds, bodies[:3]):   # seeded: drawn alone -> exactly the CLI's n=1 tokens
        expected = pipe.sample(prior="sundae", n=1, size=256, steps=2, seed=s).tokens[0]
        assert torch.equal(torch.tensor(body["tokens"]), expected)
        assert body["settings"]["n"] == 1 and body["settings"]["batch_size"] >= 2
    free = [b["settings"] for b in bodies[3:]]   # no seed: one batched call, reproducible with --n k
    assert len({s["seed"] for s in free}) == 1 and all(s["n"] == 3 for s in free)
    assert sorted(s["index"] for s in free) == [0, 1, 2]
    again = pipe.sample(prior="sundae", n=3, size=256, steps=2, seed=free[0]["seed"]).tokens
    for body in bodies[3:]:
        assert torch.equal(torch.tensor(body["tokens"]), again[body["settings"]["index"]])
        assert f"--seed {free[0]['seed']} --n 3 --size 256 --steps 2" in body["settings"]["cli"]
    assert app.state.queue.largest_batch >= 3


def test_http_503_when_the_queue_is_full(batching_server, monkeypatch):
    app, url = batching_server
    engine, queue = app.state.engine, app.state.queue
    gate = threading.Event()
    real = engine.run_batch

    def slow(key, jobs, infos):
        gate.wait(20)
        return real(key, jobs, infos)

    monkeypatch.setattr(queue, "run_batch", slow)
    monkeypatch.setattr(queue, "max_queue", 2)
    monkeypatch.setattr(queue, "max_batch", 1)
    results = {}

    def go(i):
        import httpx
        results[i] = httpx.post(url + "/generate", json={**REQ, "seed": i}, timeout=60)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
        time.sleep(0.05)
    deadline = time.monotonic() + 10
    while sum(1 for r in results.values() if r.status_code == 503) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    gate.set()
    for t in threads:
        t.join(60)
    codes = sorted(r.status_code for r in results.values())
    assert codes == [200, 200, 200, 503, 503, 503], codes
    full = next(r for r in results.values() if r.status_code == 503)
    assert "queue is full" in full.json()["detail"] and full.headers["retry-after"] == "1"
    import httpx
    assert httpx.get(url + "/health", timeout=10).json()["status"] == "ok"
