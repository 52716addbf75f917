"""Cache upkeep: statistics, and compaction of each namespace's many parts into one.

Compaction writes the merged part atomically first and only then deletes the parts it merged, so a crash at
any point loses nothing (at worst a key is stored twice until the next compaction). Each namespace is
compacted under its exclusive lock (faerec/text/locking.py), so it is refused while an ``embed`` job uses it.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import time
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from faerec.errors import FaerecError
from faerec.text.cache import PART_GLOB, write_part_file
from faerec.text.locking import namespace_lock

log = logging.getLogger(__name__)

STALE_TEMP_S = 3600


def _namespaces(root: Path) -> list[Path]:
    if not root.is_dir():
        raise FaerecError("no embedding cache here (pass --cache-dir or set FAEREC_CACHE_DIR)", path=root)
    return sorted(p for p in root.iterdir() if p.is_dir() and (any(p.glob(PART_GLOB)) or (p / "meta.json").exists()))


def cache_stats(cache_dir: str | Path) -> dict:
    """Per namespace: parts, rows (vectors stored, duplicates included), dim, bytes; plus totals."""
    root = Path(cache_dir)
    namespaces = {}
    for ns in _namespaces(root):
        parts = sorted(ns.glob(PART_GLOB))
        rows = sum(pq.read_metadata(p).num_rows for p in parts)
        meta = {}
        if (ns / "meta.json").is_file():
            meta = json.loads((ns / "meta.json").read_text())
        namespaces[ns.name] = {
            "parts": len(parts),
            "rows": rows,
            "dim": meta.get("dim"),
            "model": meta.get("model"),
            "bytes": sum(p.stat().st_size for p in parts),
        }
    return {
        "cache_dir": str(root),
        "namespaces": len(namespaces),
        "parts": sum(n["parts"] for n in namespaces.values()),
        "rows": sum(n["rows"] for n in namespaces.values()),
        "bytes": sum(n["bytes"] for n in namespaces.values()),
        "by_namespace": namespaces,
    }


def compact_namespace(ns: Path) -> dict:
    with namespace_lock(ns, exclusive=True):
        return _compact_locked(ns)


def _compact_locked(ns: Path) -> dict:
    parts = sorted(ns.glob(PART_GLOB))
    removed_tmp = _remove_stale_temps(ns)
    if len(parts) <= 1:
        rows = pq.read_metadata(parts[0]).num_rows if parts else 0
        return {"parts_before": len(parts), "parts_after": len(parts), "rows": rows, "duplicates": 0,
                "temp_files_removed": removed_tmp}
    tables = []
    for path in parts:
        try:
            tables.append(pq.read_table(path))
        except (OSError, pa.ArrowException) as exc:
            raise FaerecError(f"unreadable cache part ({exc}); delete it and re-run", path=path) from None
    merged = pa.concat_tables(tables)
    keys = pl.Series(merged.column("key").cast(pa.binary()).combine_chunks(), dtype=pl.Binary)
    first = pl.DataFrame({"key": keys}).with_row_index("i").unique("key", keep="first", maintain_order=True)
    unique = merged.take(pa.array(first.get_column("i").to_numpy()))
    target = ns / f"part-{time.time_ns():020d}-{os.getpid()}-{secrets.token_hex(4)}-compact.parquet"
    write_part_file(target, unique.combine_chunks())
    for path in parts:
        path.unlink(missing_ok=True)
    return {"parts_before": len(parts), "parts_after": 1, "rows": unique.num_rows,
            "duplicates": merged.num_rows - unique.num_rows, "temp_files_removed": removed_tmp}


def compact_cache(cache_dir: str | Path) -> dict:
    started = time.perf_counter()
    root = Path(cache_dir)
    by_ns = {ns.name: compact_namespace(ns) for ns in _namespaces(root)}
    return {
        "cache_dir": str(root),
        "namespaces": len(by_ns),
        "parts_before": sum(v["parts_before"] for v in by_ns.values()),
        "parts_after": sum(v["parts_after"] for v in by_ns.values()),
        "rows": sum(v["rows"] for v in by_ns.values()),
        "duplicates_dropped": sum(v["duplicates"] for v in by_ns.values()),
        "temp_files_removed": sum(v["temp_files_removed"] for v in by_ns.values()),
        "seconds": round(time.perf_counter() - started, 3),
    }


def _remove_stale_temps(ns: Path) -> int:
    """Temp files of killed writers (never trusted by readers) once they are clearly abandoned."""
    removed = 0
    for tmp in ns.glob(".*.tmp"):
        try:
            if time.time() - tmp.stat().st_mtime > STALE_TEMP_S:
                tmp.unlink()
                removed += 1
        except FileNotFoundError:
            continue
    return removed
