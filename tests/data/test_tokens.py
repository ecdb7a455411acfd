import numpy as np
import pytest
import torch

from nar.core.errors import NarError
from nar.data.tokens import TokenCache, TokenCacheWriter, write_token_cache


def test_write_open_and_batch(tmp_path):
    tokens = np.random.default_rng(0).integers(0, 100, size=(10, 4, 6))
    labels = np.arange(10) % 3
    write_token_cache(tmp_path / "c", tokens, labels, {"codebook_size": 100, "tokenizer_hash": "abc",
                                                         "class_names": ["a", "b", "c"]})
    cache = TokenCache.open(tmp_path / "c", tokenizer_hash="abc")
    assert len(cache) == 10 and cache.grid == (4, 6) and cache.codebook_size == 100
    assert cache.tokens.dtype == np.int16
    np.testing.assert_array_equal(cache.tokens, tokens)
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    (t1, l1), (t2, _) = cache.batch(5, g1), cache.batch(5, g2)
    assert torch.equal(t1, t2) and t1.shape == (5, 4, 6) and t1.dtype == torch.long
    for row, lab in zip(t1, l1):  # each row is a stored grid with its own label
        idx = [i for i in range(10) if np.array_equal(tokens[i], row.numpy())]
        assert idx and labels[idx[0]] == lab


def test_refusals(tmp_path):
    with pytest.raises(NarError, match="not found"):
        TokenCache.open(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(NarError, match="not a nar token cache"):
        TokenCache.open(tmp_path / "empty")
    write_token_cache(tmp_path / "c", np.zeros((2, 2, 2)), None, {"codebook_size": 8, "tokenizer_hash": "abc"})
    with pytest.raises(NarError, match="tokenizer"):
        TokenCache.open(tmp_path / "c", tokenizer_hash="other")
    with pytest.raises(NarError, match="already holds"):
        TokenCacheWriter(tmp_path / "c", 2, (2, 2), {"codebook_size": 8})


def test_sharded_cache_reads_as_one(tmp_path):
    """Per-rank caches + index.json (what `torchrun ... nar tokenizer encode` writes) read as
    the single-file cache of the same images would; an unfinished one is refused."""
    from nar.data.tokens import check_new_cache, write_shard_index
    rng = np.random.default_rng(0)
    tokens, labels = rng.integers(0, 64, (10, 4, 4)), np.arange(10) % 3
    header = {"codebook_size": 64, "tokenizer_hash": "abc", "class_names": ["a", "b", "c"]}
    write_token_cache(tmp_path / "one", tokens, labels, header)
    write_token_cache(tmp_path / "sharded" / "rank-00000", tokens[:5], labels[:5], header)
    write_token_cache(tmp_path / "sharded" / "rank-00001", tokens[5:], labels[5:], header)
    with pytest.raises(NarError, match="no index.json"):
        TokenCache.open(tmp_path / "sharded")
    with pytest.raises(NarError, match="already holds"):
        check_new_cache(tmp_path / "sharded")
    write_shard_index(tmp_path / "sharded", ["rank-00000", "rank-00001"])
    one, sharded = TokenCache.open(tmp_path / "one"), TokenCache.open(tmp_path / "sharded", tokenizer_hash="abc")
    assert len(sharded) == 10 and sharded.grid == (4, 4) and sharded.class_names == ["a", "b", "c"]
    np.testing.assert_array_equal(np.asarray(sharded.tokens), tokens)
    np.testing.assert_array_equal(sharded.labels, labels)
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    (t1, l1), (t2, l2) = one.batch(8, g1), sharded.batch(8, g2)
    assert torch.equal(t1, t2) and torch.equal(l1, l2)
    g = torch.Generator().manual_seed(5)
    part, _ = sharded.batch(8, g, keep=slice(4, 8))      # a rank's half of the same draw
    assert torch.equal(part, t1[4:])
