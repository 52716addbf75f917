import sys
import threading
import time

import numpy as np
import pyarrow.parquet as pq
import pytest

from faerec.errors import FaerecError
from faerec.text.cache import EmbeddingCache, prompt_keys
from faerec.text.locking import namespace_lock
from faerec.text.maintenance import cache_stats, compact_cache
from faerec.text.store import read_item_table, write_item_table


def _awkward_floats(rows: int, dim: int, seed: int = 0) -> np.ndarray:
    """Values a lossy path would change: subnormals, -0.0, extremes, NaN payload-free specials excluded."""
    rng = np.random.default_rng(seed)
    m = rng.standard_normal((rows, dim)).astype(np.float32)
    m[0, :4] = [np.float32(1e-45), np.float32(-0.0), np.finfo(np.float32).max, np.finfo(np.float32).tiny]
    return m


def test_part_round_trip_is_bit_exact(tmp_path):
    vectors = _awkward_floats(50, 7)
    keys = prompt_keys([f"prompt {i}" for i in range(50)])
    cache = EmbeddingCache(tmp_path, "fp")
    path = cache.append(keys, vectors)
    assert pq.read_schema(path).field("embedding").type.list_size == 7
    fresh = EmbeddingCache(tmp_path, "fp")  # reads from disk, not from memory
    got = fresh.gather(keys)
    assert got.dtype == np.float32
    assert got.tobytes() == vectors.tobytes()


def test_item_table_round_trip_is_bit_exact(tmp_path):
    vectors = _awkward_floats(30, 5, seed=1)
    path = tmp_path / "t.parquet"
    write_item_table(path, vectors, {"fingerprint": "x"})
    table = read_item_table(path)
    assert table.shape == (31, 5)
    assert not table[0].any()
    assert table[1:].tobytes() == vectors.tobytes()
    assert pq.read_schema(path).metadata[b"faerec.fingerprint"] == b"x"


def test_hit_and_miss_and_gather_order(tmp_path):
    cache = EmbeddingCache(tmp_path, "fp")
    keys = prompt_keys(["a", "b", "c"])
    cache.append(keys[:2], np.array([[1, 2], [3, 4]], dtype=np.float32))
    assert cache.contains(keys).tolist() == [True, True, False]
    cache.append(keys[2:], np.array([[5, 6]], dtype=np.float32))
    reopened = EmbeddingCache(tmp_path, "fp")
    assert len(reopened) == 3 and len(reopened.parts) == 2
    out = reopened.gather([keys[2], keys[0], keys[2]])
    assert out.tolist() == [[5, 6], [1, 2], [5, 6]]
    # another namespace (another encoder fingerprint) shares nothing
    assert not EmbeddingCache(tmp_path, "other").contains(keys).any()


def test_dimension_mismatch_is_an_error(tmp_path):
    cache = EmbeddingCache(tmp_path, "fp")
    cache.append(prompt_keys(["a"]), np.zeros((1, 3), np.float32))
    with pytest.raises(FaerecError, match="dimension"):
        cache.append(prompt_keys(["b"]), np.zeros((1, 4), np.float32))


def test_corrupt_part_names_the_file(tmp_path):
    cache = EmbeddingCache(tmp_path, "fp")
    path = cache.append(prompt_keys(["a"]), np.zeros((1, 3), np.float32))
    path.write_bytes(b"not parquet")
    with pytest.raises(FaerecError, match=path.name):
        EmbeddingCache(tmp_path, "fp")


def test_compaction_merges_parts_and_keeps_the_oldest_duplicate(tmp_path):
    cache = EmbeddingCache(tmp_path, "fp")
    keys = prompt_keys([str(i) for i in range(10)])
    vectors = np.arange(20, dtype=np.float32).reshape(10, 2)
    for start in range(0, 10, 3):
        cache.append(keys[start : start + 3], vectors[start : start + 3])
    cache.append(keys[:2], vectors[:2] + 100)  # a racing job stored two keys again
    before = cache_stats(tmp_path)
    assert before["parts"] == 5 and before["rows"] == 12

    summary = compact_cache(tmp_path)
    assert summary["parts_before"] == 5 and summary["parts_after"] == 1
    assert summary["rows"] == 10 and summary["duplicates_dropped"] == 2
    after = EmbeddingCache(tmp_path, "fp")
    assert len(after.parts) == 1
    assert after.gather(keys).tobytes() == vectors.tobytes()
    assert compact_cache(tmp_path)["parts_after"] == 1  # idempotent


def test_stats_and_compact_on_a_missing_cache_are_clear_errors(tmp_path):
    with pytest.raises(FaerecError, match="no embedding cache"):
        compact_cache(tmp_path / "absent")


@pytest.mark.skipif(sys.platform == "win32", reason="no flock on Windows")
def test_compaction_is_refused_while_an_embedding_job_holds_the_namespace(tmp_path):
    cache = EmbeddingCache(tmp_path, "fp")
    for i in range(3):
        cache.append(prompt_keys([str(i)]), np.full((1, 2), i, np.float32))
    with namespace_lock(tmp_path / "fp", exclusive=False):  # what `embed` holds while it works
        with pytest.raises(FaerecError, match="embedding job is using this cache namespace"):
            compact_cache(tmp_path)
        assert len(list((tmp_path / "fp").glob("part-*.parquet"))) == 3  # nothing deleted
    assert compact_cache(tmp_path)["parts_after"] == 1


@pytest.mark.skipif(sys.platform == "win32", reason="no flock on Windows")
def test_an_embedding_job_waits_for_a_running_compaction(tmp_path):
    release = threading.Event()
    acquired = threading.Event()

    def compaction() -> None:
        with namespace_lock(tmp_path / "fp", exclusive=True):
            acquired.set()
            release.wait(5)

    worker = threading.Thread(target=compaction)
    worker.start()
    assert acquired.wait(5)
    entered_at: list[float] = []
    embedder = threading.Thread(target=lambda: _enter_shared(tmp_path / "fp", entered_at))
    embedder.start()
    time.sleep(0.3)
    assert entered_at == []  # still waiting
    released_at = time.monotonic()
    release.set()
    worker.join(5)
    embedder.join(5)
    assert entered_at and entered_at[0] >= released_at


def _enter_shared(namespace, entered_at: list[float]) -> None:
    with namespace_lock(namespace, exclusive=False):
        entered_at.append(time.monotonic())
