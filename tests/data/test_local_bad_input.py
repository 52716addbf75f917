"""Bad input in a local catalogue: a clear error naming the file and line, or a counted skip."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys

import pytest

from faerec.data.prepare import prepare
from faerec.errors import FaerecError

GOOD_ITEMS = "\n".join(json.dumps({"item_id": f"i{k}", "title": f"t{k}"}) for k in range(3)) + "\n"
GOOD_LOG = "user_id,item_id,timestamp\n" + "".join(f"u{u},i{k},{k}\n" for u in range(3) for k in range(3))


def make(tmp_path, log: str | bytes = GOOD_LOG, items: str | bytes = GOOD_ITEMS, gz: bool = False):
    folder = tmp_path / "cat"
    folder.mkdir(exist_ok=True)
    suffix = ".gz" if gz else ""
    for name, content in (("interactions.csv", log), ("items.jsonl", items)):
        data = content.encode() if isinstance(content, str) else content
        (folder / (name + suffix)).write_bytes(gzip.compress(data) if gz else data)
    return folder


def run(folder, tmp_path, **kw):
    return prepare(str(folder), tmp_path / "out", min_user=1, min_item=1, progress=False, **kw)


def expect(folder, tmp_path, *fragments):
    with pytest.raises(FaerecError) as info:
        run(folder, tmp_path)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    assert not (tmp_path / "out" / "stats.json").exists()
    return message


def test_good_catalogue(tmp_path):
    assert run(make(tmp_path), tmp_path)["interactions"] == 9


def test_malformed_json_line(tmp_path):
    folder = make(tmp_path, items=GOOD_ITEMS + '{"item_id": "i9", "title": \n')
    expect(folder, tmp_path, "items.jsonl, line 4", "malformed JSON")


def test_missing_column(tmp_path):
    folder = make(tmp_path, log="user_id,item\nu,i\n")
    expect(folder, tmp_path, "interactions.csv, line 1", "timestamp")


def test_missing_item_id_field(tmp_path):
    folder = make(tmp_path, items=GOOD_ITEMS + '{"title": "no id"}\n')
    expect(folder, tmp_path, "items.jsonl, line 4", "item_id")


def test_non_numeric_timestamp(tmp_path):
    folder = make(tmp_path, log=GOOD_LOG + "u1,i2,yesterday\n")
    expect(folder, tmp_path, "interactions.csv, line 11", "timestamp", "yesterday")


def test_wrong_field_type_in_items(tmp_path):
    folder = make(tmp_path, items=GOOD_ITEMS + '{"item_id": "i5", "title": {"nested": 1}}\n')
    expect(folder, tmp_path, "items.jsonl, line 4", "title")


def test_non_utf8_bytes(tmp_path):
    folder = make(tmp_path, log=GOOD_LOG.encode() + b"u1,\xff\xfe,3\n")
    expect(folder, tmp_path, "interactions.csv, line 11", "UTF-8")


def test_empty_file(tmp_path):
    folder = make(tmp_path, items="")
    expect(folder, tmp_path, "items.jsonl", "empty")


def test_truncated_gzip(tmp_path):
    folder = make(tmp_path, gz=True)
    path = folder / "interactions.csv.gz"
    path.write_bytes(path.read_bytes()[:-12])
    expect(folder, tmp_path, "interactions.csv.gz", "truncated")


def test_path_does_not_exist(tmp_path):
    with pytest.raises(FaerecError, match="does not exist"):
        prepare(str(tmp_path / "nowhere"), tmp_path / "out", progress=False)


def test_missing_items_file(tmp_path):
    folder = make(tmp_path)
    (folder / "items.jsonl").unlink()
    expect(folder, tmp_path, "items.jsonl")


def test_exact_duplicates_dropped_and_repeats_kept(tmp_path):
    log = GOOD_LOG + "u0,i0,0\nu0,i0,7\n"  # an exact duplicate, then a repeat visit
    summary = run(make(tmp_path, log=log), tmp_path)
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats["duplicates_dropped"] == 1
    assert stats["repeated_user_item_pairs_kept"] == 1
    assert summary["interactions"] == 10


def test_items_without_metadata_and_metadata_without_items(tmp_path):
    items = "\n".join(json.dumps({"item_id": i, "title": i}) for i in ("i0", "i1", "ghost")) + "\n"
    run(make(tmp_path, items=items), tmp_path)
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats["items_without_metadata"] == 1  # i2 is kept, with empty text
    assert stats["metadata_without_interactions"] == 1  # ghost never trains: it is a candidate-only item
    import polars as pl

    table = pl.read_parquet(tmp_path / "out" / "items.parquet")
    trained = table.filter(~pl.col("candidate"))
    assert trained.height == 3 and trained.filter(pl.col("item_id") == "i2")["title"].item() is None
    assert table.filter(pl.col("candidate"))["item_id"].to_list() == ["ghost"]


def test_cli_error_is_one_clear_line(tmp_path):
    folder = make(tmp_path, log=GOOD_LOG + "u1,i2,soon\n")
    proc = subprocess.run([sys.executable, "-m", "faerec.cli", "prepare", str(folder), "--out",
                           str(tmp_path / "out")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "line 11" in proc.stderr


# Empty results: a header-only log, or a k-core that removes everything, is an error and writes nothing.

HEADER_ONLY = "user_id,item_id,timestamp\n"


def header_only(tmp_path, form: str):
    """A catalogue whose interactions file has the columns and no rows, as .csv, .csv.gz or .parquet."""
    if form != "parquet":
        return make(tmp_path, log=HEADER_ONLY, gz=form == "csv.gz"), f"interactions.{form}"
    import polars as pl

    folder = make(tmp_path)
    (folder / "interactions.csv").unlink()
    pl.DataFrame(schema={"user_id": pl.Utf8, "item_id": pl.Utf8, "timestamp": pl.Int64}).write_parquet(
        folder / "interactions.parquet")
    return folder, "interactions.parquet"


def cli(capsys, *args):
    """``faerec prepare ...`` through the real entry point; returns (exit status, standard error)."""
    from faerec.cli import main

    status = main(["prepare", *map(str, args), "--quiet"])
    return status, capsys.readouterr().err


@pytest.mark.parametrize("form", ["csv", "csv.gz", "parquet"])
def test_header_only_interactions(tmp_path, capsys, form):
    folder, name = header_only(tmp_path, form)
    expect(folder, tmp_path, f"{name}: no interactions")
    status, err = cli(capsys, folder, "--out", tmp_path / "out")
    assert status == 2
    assert err.strip().count("\n") == 0 and f"{name}: no interactions" in err, err
    assert not (tmp_path / "out").exists()


def test_parquet_interactions_are_read(tmp_path):
    import polars as pl

    folder = make(tmp_path)
    pl.read_csv((folder / "interactions.csv").read_bytes()).write_parquet(folder / "interactions.parquet")
    (folder / "interactions.csv").unlink()
    assert run(folder, tmp_path)["interactions"] == 9


def test_kcore_that_removes_everything(tmp_path, capsys, sample_dir):
    out = tmp_path / "out"
    status, err = cli(capsys, sample_dir, "--min-user-interactions", 50, "--min-item-interactions", 50, "--out", out)
    assert status == 2
    assert err.strip().count("\n") == 0, err
    assert ("k-core with --min-user-interactions 50 --min-item-interactions 50 left 0 users and 0 items "
            "of 8,317 users / 4,344 items (") in err, err
    assert "lower the thresholds" in err
    assert not out.exists()


def test_failed_kcore_leaves_an_earlier_good_output_untouched(tmp_path, capsys):
    folder = make(tmp_path)
    run(folder, tmp_path)
    out = tmp_path / "out"
    before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in out.iterdir()}
    status, err = cli(capsys, folder, "--min-user-interactions", 4, "--min-item-interactions", 1, "--out", out)
    assert status == 2 and "left 0 users and 0 items of 3 users / 3 items (1 round)" in err, err
    assert {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in out.iterdir()} == before


def test_empty_items_parquet_is_allowed(tmp_path):
    """Items without text are allowed, so an items table with no rows is too (counted in stats.json)."""
    import polars as pl

    folder = make(tmp_path)
    (folder / "items.jsonl").unlink()
    pl.DataFrame(schema={"item_id": pl.Utf8, "title": pl.Utf8}).write_parquet(folder / "items.parquet")
    run(folder, tmp_path)
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats["items_without_metadata"] == stats["items"] == 3
