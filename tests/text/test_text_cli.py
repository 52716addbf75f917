"""``faerec embed`` and ``faerec cache`` through the real CLI entry point."""

import json

import pytest

from faerec.cli import main
from faerec.text.store import load_embeddings


def _last_json(capsys):
    out = capsys.readouterr().out.strip().splitlines()
    return json.loads(out[-1])


def test_embed_prints_the_contract_summary_and_writes_outputs(tiny_llama, make_dataset, tmp_path, capsys, monkeypatch):
    dataset = make_dataset(15)
    monkeypatch.setenv("FAEREC_CACHE_DIR", str(tmp_path / "env-cache"))
    spec = f"hf:{tiny_llama}?max_tokens=32"
    assert main(["embed", str(dataset), "--encoder", spec, "--pca-dim", "4", "--no-progress"]) == 0
    summary = _last_json(capsys)
    for key in ("items", "embedded", "cached", "dim", "seconds", "fingerprint", "path", "pca_path"):
        assert key in summary
    assert summary["items"] == 15 and summary["embedded"] == 15 and summary["dim"] == 32
    assert (tmp_path / "env-cache" / summary["fingerprint"]).is_dir()  # $FAEREC_CACHE_DIR is the default
    assert load_embeddings(dataset, spec)[0].shape == (16, 32)

    assert main(["cache", "stats"]) == 0
    stats = _last_json(capsys)
    assert stats["namespaces"] == 1 and stats["rows"] == summary["prompts_encoded"]
    assert main(["cache", "compact"]) == 0
    assert _last_json(capsys)["parts_after"] == 1
    assert main(["embed", str(dataset), "--encoder", spec, "--pca-dim", "4", "--no-progress"]) == 0
    assert _last_json(capsys)["embedded"] == 0  # nothing lost in compaction


def test_template_file_changes_prompts_and_fingerprint(tiny_llama, make_dataset, tmp_path, capsys):
    dataset = make_dataset(6)
    spec = f"hf:{tiny_llama}"
    common = ["embed", str(dataset), "--encoder", spec, "--cache-dir", str(tmp_path / "c"), "--pca-dim", "0",
              "--no-progress"]
    assert main(common) == 0
    default = _last_json(capsys)
    template = tmp_path / "t.txt"
    template.write_text("{title} by {brand}\n")
    assert main([*common, "--template-file", str(template)]) == 0
    custom = _last_json(capsys)
    assert custom["fingerprint"] != default["fingerprint"] and custom["embedded"] == 6
    assert custom["pca_path"] is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["embed", "{missing}"], "no items.parquet"),
        (["embed", "{dataset}", "--encoder", "nope:x"], "unknown encoder"),
        (["embed", "{dataset}", "--template", "{titel}"], "placeholder {titel}"),
        (["embed", "{dataset}", "--pca-dim", "999", "--encoder", "hf:{llama}"], "PCA dimension"),
        (["cache", "compact", "--cache-dir", "{missing}"], "no embedding cache"),
    ],
)
def test_user_errors_exit_2_with_one_clear_line(args, message, tiny_llama, make_dataset, tmp_path, capsys):
    dataset = make_dataset(5)
    fill = {"missing": str(tmp_path / "absent"), "dataset": str(dataset), "llama": str(tiny_llama)}
    argv = [a.format(**fill) if "{" in a and "{titel}" not in a else a for a in args]
    argv += ["--cache-dir", str(tmp_path / "c")] if argv[0] == "embed" else []
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1] and err[-1].startswith(f"faerec {argv[0]}: error:")
