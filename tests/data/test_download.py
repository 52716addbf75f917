"""The downloader against a real local HTTP server: resume, restart, size checks, offline messages."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from http_fixtures import FileServer

from faerec.data.download import DownloadOptions, download, part_path
from faerec.errors import DownloadError

FAST = DownloadOptions(timeout=5.0, attempts=1, retry_wait=0.0)
PAYLOAD = os.urandom(3 * (1 << 20) + 12345)  # > 3 blocks of the copy loop, not a multiple of one


def test_downloads_once_and_never_again(server: FileServer, tmp_path: Path) -> None:
    url = server.add("/files/data.bin", PAYLOAD)
    dest = tmp_path / "raw" / "data.bin"
    assert download(url, dest, progress=False, options=FAST) == dest
    assert dest.read_bytes() == PAYLOAD
    assert not part_path(dest).exists()
    assert [(h.range, h.status) for h in server.hits] == [(None, 200)]
    download(url, dest, progress=False, options=FAST)
    assert len(server.hits) == 1, "a complete file must not be fetched again"


def test_interrupted_download_resumes_with_a_range_request(server: FileServer, tmp_path: Path) -> None:
    url = server.add("/data.bin", PAYLOAD, drop_after=100_000)
    dest = tmp_path / "data.bin"
    with pytest.raises(DownloadError) as err:
        download(url, dest, progress=False, options=FAST)
    assert "partial download" in str(err.value) and str(dest.resolve()) in str(err.value)
    assert not dest.exists()
    assert part_path(dest).read_bytes() == PAYLOAD[:100_000]

    download(url, dest, progress=False, options=FAST)
    assert dest.read_bytes() == PAYLOAD
    assert [(h.range, h.status) for h in server.hits] == [(None, 200), ("bytes=100000-", 206)]
    download(url, dest, progress=False, options=FAST)
    assert len(server.hits) == 2


def test_retries_resume_within_one_call(server: FileServer, tmp_path: Path) -> None:
    url = server.add("/data.bin", PAYLOAD, drop_after=1234)
    dest = tmp_path / "data.bin"
    download(url, dest, progress=False, options=DownloadOptions(timeout=5.0, attempts=3, retry_wait=0.0))
    assert dest.read_bytes() == PAYLOAD
    assert [h.status for h in server.hits] == [200, 206]


def test_server_ignoring_range_restarts_cleanly(server: FileServer, tmp_path: Path) -> None:
    url = server.add("/data.bin", PAYLOAD, ignore_range=True)
    dest = tmp_path / "data.bin"
    part_path(dest).write_bytes(b"stale bytes from another file" * 10)
    download(url, dest, progress=False, options=FAST)
    assert dest.read_bytes() == PAYLOAD  # not the stale prefix followed by the whole body
    assert [(h.range is not None, h.status) for h in server.hits] == [(True, 200)]


def test_partial_file_longer_than_the_remote_one_restarts(server: FileServer, tmp_path: Path) -> None:
    data = PAYLOAD[:5000]
    url = server.add("/small.bin", data)
    dest = tmp_path / "small.bin"
    part_path(dest).write_bytes(b"x" * 6000)
    download(url, dest, progress=False, options=DownloadOptions(timeout=5.0, attempts=2, retry_wait=0.0))
    assert dest.read_bytes() == data
    assert [h.status for h in server.hits] == [416, 200]


def test_complete_part_file_is_just_renamed(server: FileServer, tmp_path: Path) -> None:
    data = PAYLOAD[:5000]
    url = server.add("/small.bin", data)
    dest = tmp_path / "small.bin"
    part_path(dest).write_bytes(data)  # killed between the last byte and the rename
    download(url, dest, progress=False, options=FAST)
    assert dest.read_bytes() == data
    assert [h.status for h in server.hits] == [416]


def test_body_without_content_length_is_accepted_when_the_server_closes(server: FileServer,
                                                                        tmp_path: Path) -> None:
    url = server.add("/data.bin", PAYLOAD[:70_000], send_length=False)
    dest = tmp_path / "data.bin"
    download(url, dest, progress=True, options=FAST)  # progress bar without a total must not break
    assert dest.read_bytes() == PAYLOAD[:70_000]


def test_file_put_there_by_hand_is_used(server: FileServer, tmp_path: Path) -> None:
    url = server.add("/data.bin", PAYLOAD)
    dest = tmp_path / "data.bin"
    dest.write_bytes(b"fetched by hand")
    download(url, dest, progress=False, options=FAST)
    assert dest.read_bytes() == b"fetched by hand" and server.hits == []


def test_offline_says_where_to_put_the_file(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/meta_Beauty.json.gz"
    dest = tmp_path / "raw" / "meta_Beauty.json.gz"
    with pytest.raises(DownloadError) as err:
        download(url, dest, progress=False, hint="or set FAEREC_X_BASE_URL to a mirror",
                 options=DownloadOptions(timeout=5.0, attempts=3, retry_wait=0.0))
    message = str(err.value)
    assert url in message
    assert f"put it at {dest.resolve()}" in message
    assert "FAEREC_X_BASE_URL" in message
    assert not dest.exists()


def test_missing_remote_file_is_a_clear_error(server: FileServer, tmp_path: Path) -> None:
    url = server.base_url + "/nowhere.bin"
    with pytest.raises(DownloadError, match="HTTP 404"):
        download(url, tmp_path / "nowhere.bin", progress=False, options=FAST)
    assert len(server.hits) == 1, "a 404 is not retried"


def test_server_errors_are_retried(server: FileServer, tmp_path: Path) -> None:
    url = server.add("/busy.bin", PAYLOAD[:10], status=503)
    with pytest.raises(DownloadError, match="HTTP 503"):
        download(url, tmp_path / "busy.bin", progress=False,
                 options=DownloadOptions(timeout=5.0, attempts=2, retry_wait=0.0))
    assert len(server.hits) == 2
