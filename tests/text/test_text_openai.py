"""The real ``openai`` client against a local OpenAI-compatible server with injected faults."""

import json
import logging

import numpy as np
import pytest
from text_openai_server import OpenAIStub, vector_for

from faerec.errors import FaerecError
from faerec.text.embed import embed_dataset
from faerec.text.encoders import build_encoder, openai_api
from faerec.text.encoders.openai_api import plan_batches
from faerec.text.encoders.retry import Backoff, retry_after_seconds
from faerec.text.store import load_embeddings

KEY = "sk-test-DO-NOT-LEAK-4f9a2c"


@pytest.fixture
def stub(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with OpenAIStub(dim=16) as server:
        yield server


def _encoder(stub, **options):
    opts = {"base_url": stub.base_url, "backoff": "0.01", "timeout": "5", **options}
    query = "&".join(f"{k}={v}" for k, v in opts.items())
    return build_encoder(f"openai:text-embedding-3-small?{query}")


def _texts(n):
    return [f"item {i} " + "word " * (i % 7) for i in range(n)]


def _expected(texts, dim=16):
    return np.stack([vector_for(t, dim) for t in texts])


def test_every_input_comes_back_in_order_within_item_and_token_budgets(stub):
    texts = _texts(37)
    enc = _encoder(stub, batch_items=8, batch_tokens=40, concurrency=3)
    out = enc.encode(texts)
    np.testing.assert_array_equal(out, _expected(texts))
    counts = enc.counter.prepare(texts).tokens
    by_text = dict(zip(texts, counts, strict=True))
    assert sum(len(r.inputs) for r in stub.requests) == 37
    for request in stub.requests:
        assert len(request.inputs) <= 8
        assert sum(by_text[t] for t in request.inputs) <= 40 or len(request.inputs) == 1
    assert len(stub.requests) > 37 / 8  # the token budget forced extra requests


def test_plan_batches_respects_both_limits():
    assert plan_batches([5, 5, 5, 5, 5], max_items=2, max_tokens=100) == [(0, 2), (2, 4), (4, 5)]
    assert plan_batches([60, 50, 10, 90], max_items=10, max_tokens=100) == [(0, 1), (1, 3), (3, 4)]
    assert plan_batches([500], max_items=10, max_tokens=100) == [(0, 1)]  # one oversized input still goes
    assert plan_batches([], 4, 4) == []


def test_429_waits_at_least_retry_after(stub):
    stub.state.faults = [("429", 0.4)]
    texts = _texts(5)
    out = _encoder(stub, concurrency=1).encode(texts)
    np.testing.assert_array_equal(out, _expected(texts))
    first, second = stub.requests[:2]
    assert first.action == ("429", 0.4)
    assert second.at - first.at >= 0.4


def test_500_timeout_malformed_and_short_answers_are_retried_without_loss(stub, caplog):
    stub.state.faults = [("500",), ("slow", 1.5), ("malformed",), ("short",)]
    texts = _texts(12)
    with caplog.at_level(logging.WARNING, logger="faerec"):
        out = _encoder(stub, concurrency=1, batch_items=4, timeout="0.5").encode(texts)
    np.testing.assert_array_equal(out, _expected(texts))
    assert len(stub.requests) == 3 + 4
    log = caplog.text
    for reason in ("HTTP 500", "timeout", "malformed", "3 vectors for 4 inputs"):
        assert reason in log


def test_base64_and_float_answers_decode_identically(stub):
    texts = _texts(6)
    enc = _encoder(stub)
    out = enc.encode(texts)
    assert {r.encoding_format for r in stub.requests} == {"base64"}  # the client's default
    np.testing.assert_array_equal(out, _expected(texts))


def test_dimensions_are_sent_and_checked(stub):
    enc = build_encoder(
        f"openai:text-embedding-3-small?dimensions=8&base_url={stub.base_url}&backoff=0.01&attempts=2"
    )
    out = enc.encode(["a", "b"])
    assert out.shape == (2, 8) and stub.requests[0].dimensions == 8


def test_a_batch_that_keeps_failing_stops_the_job_and_a_rerun_embeds_only_the_rest(stub, make_dataset, tmp_path):
    dataset = make_dataset(30)
    spec = f"openai:text-embedding-3-small?base_url={stub.base_url}&backoff=0.01&attempts=3&batch_items=5&concurrency=1"
    stub.state.fail_after = 2  # two good requests (10 prompts), then the server fails for good
    with pytest.raises(FaerecError, match="gave up after 3 tries"):
        embed_dataset(dataset, spec, cache_dir=tmp_path / "cache", save_every=5, pca_dim=4, progress=False)
    stub.state.fail_after = None
    sent_before = sum(len(r.inputs) for r in stub.requests if r.action is None)
    assert sent_before == 10
    summary = embed_dataset(dataset, spec, cache_dir=tmp_path / "cache", pca_dim=4, progress=False)
    assert summary["embedded"] == 20 and summary["cached"] == 10
    table, _ = load_embeddings(dataset, spec)
    assert table.shape == (31, 16) and np.isfinite(table).all() and not table[0].any()  # row 0 = padding
    assert (np.abs(table[1:]).sum(axis=1) > 0).all()  # no item left as zeros


def test_bad_request_is_split_to_isolate_the_rejected_input(stub):
    stub.state.faults = [("400",), ("400",)]
    enc = _encoder(stub, concurrency=1, batch_items=4)
    # the whole batch and then its first half are rejected; the halves of that half pass
    out = enc.encode(_texts(4))
    np.testing.assert_array_equal(out, _expected(_texts(4)))
    assert [len(r.inputs) for r in stub.requests] == [4, 2, 1, 1, 2]


def test_key_never_reaches_logs_summary_fingerprint_or_files(stub, make_dataset, tmp_path, caplog, capsys):
    dataset = make_dataset(12)
    stub.state.faults = [("429", 0), ("500",), ("malformed",)]
    spec = f"openai:text-embedding-3-small?base_url={stub.base_url}&backoff=0.01"
    with caplog.at_level(logging.DEBUG):
        summary = embed_dataset(dataset, spec, cache_dir=tmp_path / "cache", pca_dim=4, progress=True)
    assert stub.requests[0].authorization == f"Bearer {KEY}"  # the key was used...
    captured = capsys.readouterr()
    assert KEY not in caplog.text and KEY not in captured.out and KEY not in captured.err  # ...and never shown
    assert KEY not in json.dumps(summary)
    for path in list((tmp_path / "cache").rglob("*")) + list((dataset / "embeddings").rglob("*")):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path


def test_cost_estimate_is_logged_and_max_cost_refuses_before_sending(stub, make_dataset, tmp_path, caplog):
    dataset = make_dataset(10)
    spec = f"openai:text-embedding-3-small?base_url={stub.base_url}&price_per_mtok=1000000"
    with caplog.at_level(logging.INFO, logger="faerec"), pytest.raises(FaerecError, match="exceeds --max-cost"):
        embed_dataset(dataset, spec, cache_dir=tmp_path / "c", max_cost=0.5, pca_dim=4, progress=False)
    assert stub.requests == []
    assert "(10 items) to embed" in caplog.text and "tokens" in caplog.text
    ok = embed_dataset(dataset, spec.replace("1000000", "0.02"), cache_dir=tmp_path / "c", max_cost=0.5,
                       pca_dim=4, progress=False)
    assert ok["embedded"] == 10 and ok["estimated_cost_usd"] < 0.5


def test_missing_key_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    enc = build_encoder("openai?base_url=http://127.0.0.1:9/v1")
    with pytest.raises(FaerecError, match="OPENAI_API_KEY"):
        enc.encode(["x"])


def test_prefect_secret_block_is_used_only_when_the_variable_is_unset(stub, monkeypatch):
    from prefect.blocks import system

    from flows.secrets import prefect_secret

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    loaded = []

    class FakeBlock:
        def get(self):
            return "sk-from-block"

    def fake_load(name, *args, **kwargs):
        loaded.append(name)
        return FakeBlock()

    monkeypatch.setattr(system.Secret, "load", fake_load)
    enc = _encoder(stub)
    with pytest.raises(FaerecError, match="OPENAI_API_KEY"):  # the library alone never asks Prefect
        enc.encode(["x"])
    assert loaded == []
    enc.secret_lookup = prefect_secret  # what flows.tasks.embed_task passes in
    enc.encode(["x"])
    assert loaded == ["openai-api-key"] and stub.requests[-1].authorization == "Bearer sk-from-block"
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    again = _encoder(stub)
    again.secret_lookup = prefect_secret
    again.encode(["y"])
    assert loaded == ["openai-api-key"] and stub.requests[-1].authorization == f"Bearer {KEY}"


def test_inputs_are_truncated_to_the_token_limit(stub):
    enc = _encoder(stub, max_tokens=20)
    long_text = "ünïcode " * 50
    enc.encode([long_text, "short"])
    sent = stub.requests[0].inputs
    assert sent[1] == "short"
    if enc.counter.exact:
        assert len(enc.counter.encoding.encode_ordinary(sent[0])) <= 20
    else:
        assert enc.counter.method == "utf8-bytes:20" and len(sent[0].encode()) <= 20
    assert long_text.startswith(sent[0])
    assert enc.fingerprint_fields()["truncation"].endswith(":20")


def test_retry_after_header_forms():
    assert retry_after_seconds({"retry-after": "2"}) == 2.0
    assert retry_after_seconds({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert retry_after_seconds({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, now=1445412470.0) == 10.0
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({}) is None


def test_backoff_grows_is_jittered_and_capped():
    backoff = Backoff(base_s=1.0, cap_s=8.0)
    waits = [[backoff.delay(a) for _ in range(200)] for a in range(6)]
    assert all(0 <= w <= min(8.0, 2**a) for a, ws in enumerate(waits) for w in ws)
    assert len({round(w, 6) for w in waits[3]}) > 100  # jittered, not lockstep
    assert np.mean(waits[3]) > np.mean(waits[0])
    assert backoff.delay(0, retry_after_s=5.0) >= 5.0


def test_endpoint_in_fingerprint_has_no_credentials():
    assert openai_api.public_endpoint("https://user:pw@example.com:8443/v1/?k=v") == "https://example.com:8443/v1"


def test_secret_looking_options_are_masked_in_the_spec_name():
    from faerec.text.encoders.base import EncoderSpec

    spec = EncoderSpec.parse(f"openai?api_key={KEY}&base_url=https://u:{KEY}@h.example/v1&batch_tokens=9")
    assert KEY not in spec.canonical()
    with pytest.raises(FaerecError) as err:
        build_encoder(spec)
    assert "unknown option" in str(err.value) and KEY not in str(err.value)


def test_openai_base_url_variable_points_the_client_at_a_compatible_server(stub, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", stub.base_url)
    enc = build_encoder("openai:text-embedding-3-small?backoff=0.01")
    np.testing.assert_array_equal(enc.encode(["a"]), _expected(["a"]))
    assert enc.fingerprint_fields()["endpoint"] == stub.base_url
