"""Each source's reader on small hand-written files in the source's real format, served by a real local HTTP
server and fetched by the real downloader; then the bad inputs, each a clear error naming file and line."""

from __future__ import annotations

import gzip
import io
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import polars as pl
import pytest
from http_fixtures import FileServer

from faerec.data.catalogue import ITEM_SCHEMA, RawCatalogue
from faerec.data.sources import SOURCES, resolve_source
from faerec.data.sources.lines import RawText
from faerec.data.sources.pyliteral import read_literal_metadata
from faerec.errors import FaerecError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sources"


@pytest.fixture
def mirror(server: FileServer, monkeypatch: pytest.MonkeyPatch) -> FileServer:
    """The fixture files at the paths the public mirrors use, gzip- or zip-compressed as they publish them."""
    a14, a18, a23 = FIXTURES / "amazon2014", FIXTURES / "amazon2018", FIXTURES / "amazon2023"
    for name in ("reviews_Beauty_5.json", "reviews_Beauty.json", "meta_Beauty.json"):
        server.add(f"/a14/{name}.gz", _gz(a14 / name))
    server.add("/a18/categoryFilesSmall/Industrial_and_Scientific_5.json.gz",
               _gz(a18 / "Industrial_and_Scientific_5.json"))
    server.add("/a18/categoryFiles/Industrial_and_Scientific.json.gz", _gz(a18 / "Industrial_and_Scientific.json"))
    server.add("/a18/metaFiles2/meta_Industrial_and_Scientific.json.gz",
               _gz(a18 / "meta_Industrial_and_Scientific.json"))
    server.add("/a23/review_categories/All_Beauty.jsonl.gz", _gz(a23 / "All_Beauty.jsonl"))
    server.add("/a23/meta_categories/meta_All_Beauty.jsonl.gz", _gz(a23 / "meta_All_Beauty.jsonl"))
    for release in ("ml-1m", "ml-20m"):
        server.add(f"/ml/{release}.zip", _zip(FIXTURES / "movielens" / release))
    for var, root in (("AMAZON2014", "a14"), ("AMAZON2018", "a18"), ("AMAZON2023", "a23"), ("MOVIELENS", "ml")):
        monkeypatch.setenv(f"FAEREC_{var}_BASE_URL", f"{server.base_url}/{root}/")
    return server


def _gz(path: Path) -> bytes:
    return gzip.compress(path.read_bytes(), mtime=0)


def _zip(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{folder.name}/", "")
        for path in sorted(folder.iterdir()):
            archive.write(path, f"{folder.name}/{path.name}")
    return buffer.getvalue()


def _item(catalogue: RawCatalogue, item_id: str) -> dict:
    rows = catalogue.items.filter(pl.col("item_id") == item_id).to_dicts()
    assert len(rows) == 1, f"{item_id}: {len(rows)} rows"
    return rows[0]


def _load(spec: str, raw: Path) -> RawCatalogue:
    source = resolve_source(spec)
    return source.load(raw, progress=False)


# ---------------------------------------------------------------------------------------------- sources


def test_amazon2014_five_core_with_python_literal_metadata(mirror: FileServer, tmp_path: Path) -> None:
    source = resolve_source("amazon2014:beauty")
    assert (source.name, source.dataset_stem()) == ("amazon2014:Beauty", "amazon2014-Beauty")
    cat = source.load(tmp_path / "raw", progress=False)

    assert cat.domain == "beauty item" and cat.source == "amazon2014:Beauty"
    assert cat.interactions.schema == pl.Schema({"user_id": pl.Utf8, "item_id": pl.Utf8, "timestamp": pl.Int64})
    assert cat.interactions.height == 24
    assert cat.interactions.row(0) == ("A1YJEY40YUW4SE", "7806397051", 1391040000)
    assert cat.interactions.row(23) == ("A1PQFP6SAJ6D80", "B00004TUBV", 1386460800)  # file order kept
    assert cat.items.schema == pl.Schema(ITEM_SCHEMA)
    assert cat.items["item_id"].to_list() == ["7806397051", "9759091062", "9788072216", "B00004TMFE",
                                              "B00004TUBL"]
    assert cat.skipped == {"metadata_rows_not_reviewed": 1, "duplicate_metadata_rows": 0,
                           "reviewed_items_without_metadata": 1}

    palette = _item(cat, "7806397051")
    assert palette["categories"] == ["Beauty", "Makeup", "Face", "Concealers & Neutralizers", "Makeup Palettes"]
    assert (palette["price"], palette["brand"]) == ("5.50", "Beauty Treats")
    serum = _item(cat, "9759091062")
    assert serum["title"] == "L'Oreal Paris Revitalift Vitamin C Serum"
    assert "made in a Café kitchen" in serum["description"]  # Python-2 byte escapes repaired
    brush = _item(cat, "B00004TMFE")  # 'related' before 'asin': parsed the slow way, same result
    assert (brush["title"], brush["brand"], brush["price"]) == ("Kabuki Blending Brush", None, "7.99")
    assert _item(cat, "B00004TUBL")["description"] == "Tourmaline ceramic barrel\nfor smooth, shiny curls."
    polish = _item(cat, "9788072216")
    assert (polish["price"], polish["brand"], polish["description"]) == (None, None, None)

    assert sorted(p.name for p in (tmp_path / "raw").iterdir()) == ["meta_Beauty.json.gz",
                                                                    "reviews_Beauty_5.json.gz"]
    requests = len(mirror.hits)
    source.load(tmp_path / "raw", progress=False)
    assert len(mirror.hits) == requests, "raw files are downloaded once"


def test_amazon2014_full_reviews(mirror: FileServer, tmp_path: Path) -> None:
    cat = _load("amazon2014:Beauty:full", tmp_path / "raw")
    assert cat.source == "amazon2014:Beauty:full"
    assert resolve_source("amazon2014:Beauty:full").dataset_stem() == "amazon2014-Beauty-full"
    assert cat.interactions.height == 27
    assert _item(cat, "B00004U9V2")["title"] == "Crabtree &amp; Evelyn Rosewater Hand Therapy"
    assert cat.skipped["metadata_rows_not_reviewed"] == 0
    assert [h.path for h in mirror.hits] == ["/a14/reviews_Beauty.json.gz", "/a14/meta_Beauty.json.gz"]


def test_amazon2018_json_metadata(mirror: FileServer, tmp_path: Path) -> None:
    cat = _load("amazon2018:Industrial_and_Scientific", tmp_path / "raw")
    assert cat.domain == "product" and cat.interactions.height == 10
    assert cat.interactions.row(4) == ("A2FCLJG5GV8SD6", "B0000223SK", 1481932800)
    disc = _item(cat, "B0000223SI")
    assert disc["description"] == '3M 9" Sanding Disc. Open coat for fast cutting.'
    assert disc["categories"] == ["Industrial & Scientific", "Abrasive & Finishing Products", "Abrasive Discs"]
    assert (disc["brand"], disc["price"]) == ("3M", "$10.76")
    clamp = _item(cat, "B0000223SK")
    assert (clamp["brand"], clamp["price"], clamp["description"]) == (None, None, None)  # CSS is no price
    tape = _item(cat, "B00002N5VC")
    assert (tape["title"], tape["price"]) == ("Stanley 33-425 PowerLock 25-Foot Tape", "$9.99 - $15.49")
    gloves = _item(cat, "B00004Z5PY")
    assert (gloves["categories"], gloves["price"]) == (None, None)
    assert cat.skipped == {"metadata_rows_not_reviewed": 2, "unreadable_prices": 1, "duplicate_metadata_rows": 1,
                           "reviewed_items_without_metadata": 0}

    full = _load("amazon2018:Industrial_and_Scientific:full", tmp_path / "raw-full")
    assert full.interactions.height == 11 and full.skipped["metadata_rows_not_reviewed"] == 1


def test_amazon2023_keyed_by_parent_asin(mirror: FileServer, tmp_path: Path) -> None:
    cat = _load("amazon2023:All_Beauty", tmp_path / "raw")
    assert cat.domain == "beauty item"
    inter = cat.interactions
    assert inter.height == 7
    assert inter.filter(pl.col("item_id") == "B097R46CSY").height == 2  # two variants, one parent
    assert inter["timestamp"][0] == 1588687728923  # milliseconds, as given
    spray = _item(cat, "B00YQ6X8EO")
    assert spray["description"] == "Calming lavender scent Made with essential oils"  # features fallback
    assert (spray["categories"], spray["price"], spray["brand"]) == (["All Beauty"], "14.99", "Aromatherapy Co")
    deo = _item(cat, "B081TJ8YS3")
    assert (deo["price"], deo["brand"]) == (None, None)
    assert deo["categories"] == ["Beauty & Personal Care", "Personal Care", "Deodorants & Antiperspirants"]
    assert deo["description"] == "Aluminium free. Lasts 24 hours."
    nails = _item(cat, "B097R46CSY")
    assert (nails["categories"], nails["price"]) == (None, "9.5")
    assert _item(cat, "B09JS339BZ")["brand"] is None
    assert cat.skipped == {"metadata_rows_not_reviewed": 1, "duplicate_metadata_rows": 0,
                           "reviewed_items_without_metadata": 1}


def test_yelp_from_a_local_folder(tmp_path: Path) -> None:
    source = resolve_source(f"yelp:{FIXTURES / 'yelp'}")
    assert source.name == f"yelp:{(FIXTURES / 'yelp').resolve()}" and source.dataset_stem() == "yelp"
    cat = source.load(tmp_path / "unused", progress=False)
    assert cat.domain == "business" and cat.interactions.height == 7
    first = datetime(2018, 7, 7, 22, 9, 11, tzinfo=timezone.utc).timestamp()
    assert cat.interactions.row(0) == ("mh_-eMZ6K5RLWhZyISBhwA", "XQfwVwDr-v0ZS3_CbbE5Xw", int(first))
    assert cat.interactions.filter(pl.col("item_id") == "kxX2SOes4o-D3ZQBkiMRfA").height == 3  # repeat visits
    diner = _item(cat, "XQfwVwDr-v0ZS3_CbbE5Xw")
    assert (diner["title"], diner["description"], diner["price"]) == ("Turning Point of North Wales",
                                                                       "North Wales, PA", "$$")
    assert diner["categories"][:3] == ["Restaurants", "Breakfast & Brunch", "Food"]
    assert _item(cat, "kxX2SOes4o-D3ZQBkiMRfA")["price"] == "$$$"
    assert _item(cat, "YjUWPpI6HXG530lwP-fb2A")["price"] is None  # "None"
    melt = _item(cat, "e4Vwtrqf-wpJfwesgvdgxQ")
    assert (melt["categories"], melt["description"], melt["price"]) == (None, "New Orleans", None)
    assert _item(cat, "Pns2l4eNsfO8kk83dixA6A")["categories"][2] == "Naturopathic/Holistic"


def test_yelp_older_release_with_list_categories(tmp_path: Path) -> None:
    folder = tmp_path / "yelp_2017"
    folder.mkdir()
    (folder / "review.json").write_text('{"user_id": "u1", "business_id": "b1", "date": "2017-01-02 03:04:05"}\n')
    (folder / "business.json").write_text('{"business_id": "b1", "name": "Cafe", "city": "Las Vegas", '
                                          '"state": "NV", "categories": ["Cafes", "Coffee & Tea"]}\n')
    cat = _load(f"yelp:{folder}", tmp_path / "raw")
    assert _item(cat, "b1")["categories"] == ["Cafes", "Coffee & Tea"]
    assert resolve_source(f"yelp:{folder}").dataset_stem() == "yelp_2017"


def test_movielens_1m_dat_files_in_the_zip(mirror: FileServer, tmp_path: Path) -> None:
    source = resolve_source("movielens:1m")
    assert (source.name, source.dataset_stem()) == ("movielens:ml-1m", "ml-1m")
    cat = source.load(tmp_path / "raw", progress=False)
    assert cat.domain == "movie"
    assert cat.interactions.height == 12
    assert cat.interactions.row(0) == ("1", "1193", 978300760)
    assert _item(cat, "73")["title"] == "Misérables, Les (1995)"  # latin-1 decoded
    assert _item(cat, "2355")["categories"] == ["Animation", "Children's", "Comedy"]
    assert cat.items.height == 8 and cat.items["brand"].null_count() == 8
    assert [p.name for p in (tmp_path / "raw").iterdir()] == ["ml-1m.zip"]


def test_movielens_20m_csv_files_in_the_zip(mirror: FileServer, tmp_path: Path) -> None:
    cat = _load("movielens:ml-20m", tmp_path / "raw")
    assert cat.interactions.height == 8
    assert cat.interactions.row(7) == ("2", "131260", 1427760000)
    assert _item(cat, "11")["title"] == "American President, The (1995)"
    assert _item(cat, "29")["title"].startswith("City of Lost Children, The (Cité des enfants perdus")
    assert _item(cat, "131260")["categories"] is None  # "(no genres listed)"
    assert _item(cat, "1")["categories"] == ["Adventure", "Animation", "Children", "Comedy", "Fantasy"]


def test_registry_lists_every_source() -> None:
    assert set(SOURCES) == {"amazon2014", "amazon2018", "amazon2023", "yelp", "movielens"}


def test_local_folder_resolves_to_the_local_source(sample_dir: Path) -> None:
    source = resolve_source(str(sample_dir))
    assert type(source).__name__ == "LocalSource"


# ------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(("spec", "expected"), [
    ("amazon2014:Beautyy", "unknown amazon2014 category 'Beautyy'.*Grocery_and_Gourmet_Food"),
    ("amazon2018:Beauty", "unknown amazon2018 category.*All_Beauty"),
    ("amazon2014:Beauty:tiny", "unknown amazon2014 variant 'tiny'.*5core, full"),
    ("amazon2014", "missing amazon2014 category"),
    ("netflix:prize", "unknown source 'netflix'.*amazon2014:<Category>.*movielens:ml-1m"),
    ("movielens:ml-2m", "unknown MovieLens release 'ml-2m'.*ml-1m, ml-20m, ml-25m"),
    ("yelp:", "needs its folder"),
])
def test_unknown_source_or_category_lists_what_is_valid(spec: str, expected: str) -> None:
    with pytest.raises(FaerecError, match=expected):
        resolve_source(spec)


def test_paths_that_do_not_exist(tmp_path: Path) -> None:
    with pytest.raises(FaerecError, match="catalogue folder does not exist") as err:
        resolve_source(str(tmp_path / "nowhere"))
    assert str(tmp_path / "nowhere") in str(err.value)
    with pytest.raises(FaerecError, match="Yelp folder does not exist") as err:
        resolve_source(f"yelp:{tmp_path / 'no-yelp'}")
    assert str(tmp_path / "no-yelp") in str(err.value)
    with pytest.raises(FaerecError, match="no yelp_academic_dataset_review.json or review.json"):
        _load(f"yelp:{tmp_path}", tmp_path)
    with pytest.raises(FaerecError, match="file does not exist"):
        list(RawText(tmp_path / "gone.json.gz").blocks())


REVIEW = ('{{"reviewerID": "{u}", "asin": "{i}", "overall": 5.0, "unixReviewTime": {t}}}')
GOOD_META = "{'asin': 'I1', 'title': 'Item one'}\n"


def _hand_placed_2014(raw: Path, reviews: bytes, meta: bytes = GOOD_META.encode(), *, compress: bool = True
                      ) -> RawCatalogue:
    """Put the files where a manual download goes, so nothing is fetched, and load them."""
    raw.mkdir(parents=True, exist_ok=True)
    (raw / "reviews_Beauty_5.json.gz").write_bytes(gzip.compress(reviews) if compress else reviews)
    (raw / "meta_Beauty.json.gz").write_bytes(gzip.compress(meta))
    return _load("amazon2014:Beauty", raw)


def _reviews(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode()


GOOD = [REVIEW.format(u="U1", i="I1", t=10), REVIEW.format(u="U2", i="I1", t=11)]


@pytest.mark.parametrize(("bad_line", "expected"), [
    ('{"reviewerID": "U3", "asin": "I1", "unixReviewTime": 12', "malformed JSON"),
    ('{"asin": "I1", "unixReviewTime": 12}', "missing required field 'reviewerID'"),
    ('{"reviewerID": "", "asin": "I1", "unixReviewTime": 12}', "missing required field 'reviewerID'"),
    ('{"reviewerID": "U3", "asin": "I1", "unixReviewTime": "yesterday"}',
     "field 'unixReviewTime' should be an integer, got str 'yesterday'"),
    ('["U3", "I1", 12]', "expected a JSON object"),
])
def test_bad_review_line_is_named(tmp_path: Path, bad_line: str, expected: str) -> None:
    with pytest.raises(FaerecError, match=expected) as err:
        _hand_placed_2014(tmp_path / "raw", _reviews(*GOOD, "", bad_line))
    assert err.value.line == 4
    assert str(err.value).startswith(f"{tmp_path / 'raw' / 'reviews_Beauty_5.json.gz'}, line 4: ")


def test_non_utf8_bytes_are_named(tmp_path: Path) -> None:
    data = _reviews(*GOOD) + b'{"reviewerID": "U\xff", "asin": "I1", "unixReviewTime": 12}\n'
    with pytest.raises(FaerecError, match=r"line 3: invalid UTF-8 byte b'\\xff'"):
        _hand_placed_2014(tmp_path / "raw", data)


def test_empty_and_truncated_files(tmp_path: Path) -> None:
    with pytest.raises(FaerecError, match="empty"):
        _hand_placed_2014(tmp_path / "a", b"", compress=False)
    with pytest.raises(FaerecError, match="empty"):
        _hand_placed_2014(tmp_path / "b", b"\n\n")  # a gzip of nothing but blank lines
    whole = gzip.compress(_reviews(*GOOD * 200))
    with pytest.raises(FaerecError, match="truncated gzip file.*download it afresh"):
        _hand_placed_2014(tmp_path / "c", whole[: len(whole) // 2], compress=False)


def test_small_blocks_keep_line_numbers(tmp_path: Path) -> None:
    """Errors deep in a big file name the right line, whichever block it falls in."""
    lines = [REVIEW.format(u=f"U{n}", i="I1", t=n) for n in range(1, 500)]
    lines[376] = lines[376].replace('"asin"', '"asn"')
    path = tmp_path / "reviews.json"
    path.write_bytes(_reviews(*lines))
    from faerec.data.sources.amazon import read_classic_reviews

    frame_lines = [b.first_line for b in RawText(path).blocks(block_bytes=1000)]
    assert len(frame_lines) > 20 and frame_lines[0] == 1
    with pytest.raises(FaerecError, match="line 377: missing required field 'asin'"):
        read_classic_reviews(RawText(path), progress=False)


@pytest.mark.parametrize(("meta_line", "expected"), [
    ("{'asin': 'I1', 'title': 'Unclosed}", "not a Python dict literal"),
    ("['I1', 'Item one']", "expected a dict literal, got list"),
    ("{'title': 'No id'}", "missing required field 'asin'"),
    ("{'asin': 'I1', 'title': __import__('os').system('touch HACKED')}", "not a Python dict literal"),
    ("{'asin': 'I1', 'categories': 'Beauty', 'title': {'nested': 1}}", "field 'title' should be text"),
])
def test_bad_python_literal_metadata_is_named(tmp_path: Path, meta_line: str, expected: str) -> None:
    meta = f"{GOOD_META}{meta_line}\n".encode()
    with pytest.raises(FaerecError, match=f"meta_Beauty.json.gz, line 2: {expected}"):
        _hand_placed_2014(tmp_path / "raw", _reviews(*GOOD), meta)
    assert not Path("HACKED").exists() and not (tmp_path / "HACKED").exists()


def test_literal_metadata_without_filter_reads_every_item(tmp_path: Path) -> None:
    path = FIXTURES / "amazon2014" / "meta_Beauty.json"
    items, skipped = read_literal_metadata(RawText(path), None)
    assert items.height == 6 and skipped == 0


def test_bad_movielens_rows_are_named(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    good = (FIXTURES / "movielens" / "ml-1m" / "ratings.dat").read_bytes()
    for bad, expected in ((b"4::1::5\n", "line 13: expected 4 fields separated by '::', found 3"),
                          (b"4::1::five::978300760\n", "line 13: field 'rating' should be a number, got 'five'")):
        (raw / "ml-1m.zip").write_bytes(_zip_with(good + bad))
        with pytest.raises(FaerecError, match=expected) as err:
            _load("movielens:ml-1m", raw)
        assert "ml-1m.zip/ml-1m/ratings.dat" in str(err.value)
    (raw / "ml-1m.zip").write_bytes(_zip_with(good)[:300])
    with pytest.raises(FaerecError, match="not a valid zip archive"):
        _load("movielens:ml-1m", raw)


def _zip_with(ratings: bytes) -> bytes:
    folder = FIXTURES / "movielens" / "ml-1m"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("ml-1m/ratings.dat", ratings)
        archive.write(folder / "movies.dat", "ml-1m/movies.dat")
    return buffer.getvalue()


def test_bad_csv_header_is_named(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("ml-20m/ratings.csv", "user,movie,rating,time\n1,2,3.5,1\n")
        archive.writestr("ml-20m/movies.csv", "movieId,title,genres\n2,Jumanji (1995),Adventure\n")
    (raw / "ml-20m.zip").write_bytes(buffer.getvalue())
    with pytest.raises(FaerecError, match=r"ratings.csv, line 1: unexpected header"):
        _load("movielens:ml-20m", raw)


def test_bad_yelp_date_is_named(tmp_path: Path) -> None:
    folder = tmp_path / "yelp"
    folder.mkdir()
    (folder / "yelp_academic_dataset_review.json").write_text(
        '{"user_id": "u1", "business_id": "b1", "date": "2017-01-02 03:04:05"}\n'
        '{"user_id": "u2", "business_id": "b1", "date": "last Tuesday"}\n')
    (folder / "yelp_academic_dataset_business.json").write_text('{"business_id": "b1", "name": "Cafe"}\n')
    with pytest.raises(FaerecError, match="review.json, line 2: field 'date' should look like"):
        _load(f"yelp:{folder}", tmp_path / "raw")


def test_offline_source_download_names_url_and_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("FAEREC_AMAZON2014_BASE_URL", f"http://127.0.0.1:{port}/files")
    with pytest.raises(FaerecError) as err:
        _load("amazon2014:Beauty", tmp_path / "raw")
    message = str(err.value)
    assert f"http://127.0.0.1:{port}/files/reviews_Beauty_5.json.gz" in message
    assert f"put it at {(tmp_path / 'raw' / 'reviews_Beauty_5.json.gz').resolve()}" in message
    assert "FAEREC_AMAZON2014_BASE_URL" in message


def test_cutting_related_ids_changes_nothing_else() -> None:
    import ast

    from faerec.data.sources.pyliteral import _parse

    path = FIXTURES / "amazon2014" / "meta_Beauty.json"
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        whole = ast.literal_eval(line)
        whole.pop("related", None)
        fast = _parse(line.encode(), RawText(path), number)
        fast.pop("related", None)
        assert fast == whole


def test_windows_line_ends_and_byte_order_mark(tmp_path: Path) -> None:
    from faerec.data.sources.amazon import read_classic_reviews

    path = tmp_path / "reviews.json"
    path.write_bytes(b"\xef\xbb\xbf" + _reviews(*GOOD).replace(b"\n", b"\r\n"))
    frame = read_classic_reviews(RawText(path), progress=False)
    assert frame.rows() == [("U1", "I1", 10), ("U2", "I1", 11)]
