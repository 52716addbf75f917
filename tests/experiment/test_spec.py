"""Experiment specs: validation errors name the file and the key; presets; run ids per override."""

from __future__ import annotations

from pathlib import Path

import pytest

from faerec.errors import FaerecError
from faerec.experiment import runner, spec
from faerec.models import ModelConfig
from faerec.runs.config import TrainConfig
from faerec.runs.folder import config_hash


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exp.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(("text", "key", "words"), [
    ('datasets = ["d"]\nmodels = ["x"]\n', "models", "unknown key"),
    ('methods = ["base"]\n', "datasets", "missing"),
    ('datasets = ["d"]\nmethods = ["nope"]\n', "methods", "unknown method 'nope'"),
    ('datasets = ["d"]\nbackbones = ["sasrec", "sasrec"]\n', "backbones", "repeated"),
    ('datasets = ["d"]\nseeds = [1, "2"]\n', "seeds", "integers"),
    ('datasets = ["d"]\nepochs = 0\n', "epochs", "positive"),
    ('datasets = ["d"]\nreference = "faerec2"\n', "reference", "not one of the rows"),
    ('datasets = ["d"]\ntsne = ["lost"]\n', "tsne", "not one of the rows"),
    ('datasets = ["d"]\n[settings]\nalphaa = 0.1\n', "settings.alphaa", "no run has this setting"),
    ('datasets = ["d"]\n[settings]\nseed = 3\n', "settings.seed", "top-level key `seeds`"),
    ('datasets = ["d"]\n[settings]\nmethod = "base"\n', "settings.method", "a method is a row"),
    ('datasets = ["d"]\n[settings]\nalpha = "big"\n', "settings.alpha", "expected float"),
    ('datasets = ["d"]\n[variants]\n"w/o X" = { method = "faerec", gatee = false }\n', 'variants."w/o X".gatee',
     "unknown setting 'gatee'"),
    ('datasets = ["d"]\n[variants]\n"w/o X" = { method = "base", gate = false }\n', 'variants."w/o X".gate',
     "it is an option of method faerec"),
    ('datasets = ["d"]\n[variants]\n"w/o X" = { method = "zzz" }\n', 'variants."w/o X".method', "unknown method"),
    ('datasets = ["d"]\n[variants]\nbase = { hidden = 8 }\n', "variants.base", "name of a method row"),
    ('datasets = ["d"]\n[variants]\nv = { epochs = 3 }\n', "variants.v.epochs", "top-level key `epochs`"),
    ('datasets = ["d"]\n[sweep]\nalpha = []\n', "sweep.alpha", "non-empty list"),
    ('datasets = ["d"]\n[sweep]\ndevice = ["cpu", "cuda"]\n', "sweep.device", "not part of the run id"),
    ('datasets = ["d"]\n[sweep]\nbt_lambda = [0.1, "x"]\n', "sweep.bt_lambda", "expected float"),
])
def test_validation_errors_name_the_file_and_the_key(tmp_path, text, key, words):
    path = write(tmp_path, text)
    with pytest.raises(FaerecError) as caught:
        spec.load(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: {key}: "), message
    assert words in message


def test_bad_toml_and_missing_files_name_the_file(tmp_path):
    path = write(tmp_path, "datasets = [\n")
    with pytest.raises(FaerecError, match=r"exp\.toml: not valid TOML"):
        spec.load(path)
    with pytest.raises(FaerecError, match="no such spec file or preset .*ablations"):
        spec.load(tmp_path / "absent.toml")


def test_presets_load_by_name():
    assert {"ablations", "backbones", "comparison", "seeds", "sweeps"} <= set(spec.preset_names())
    seeds = spec.load("seeds")
    assert (seeds.name, seeds.methods, seeds.seeds, seeds.reference) == (
        "seeds", ["base", "faerec"], [2024, 2025, 2026], "base")
    with pytest.raises(FaerecError, match="datasets: missing"):
        spec.load("ablations")  # the dataset is the user's choice
    ablations = spec.load("ablations", datasets=["amazon2014:Beauty"], name="beauty-ablations")
    assert ablations.name == "beauty-ablations" and ablations.datasets == ["amazon2014:Beauty"]
    assert ablations.labels == ["faerec", "base", "w/o AGF", "w/o AGF (ID only)", "w/o ILA", "w/o FLA", "w/o CLS",
                                "w/o PG"]
    comparison = spec.load("comparison", datasets=["amazon2014:Beauty"])
    assert comparison.methods == ["base", "llminit", "rlmrec-con", "rlmrec-gen", "llmesr", "alphafuse", "faerec"]
    assert (comparison.epochs, comparison.patience, comparison.reference) == (100, 10, "base")
    backbones = spec.load("backbones", datasets=["amazon2014:Beauty"])
    assert [p.backbone for p in backbones.points()] == ["narm", "narm", "lightsans", "lightsans", "gmlp", "gmlp"]


def test_each_ablation_changes_one_option_of_the_full_model():
    ablations = spec.load("ablations", datasets=["d"])
    full = {p.label: p.config.model.flat() for p in ablations.points()}
    expected = {"w/o AGF": {"gate"}, "w/o AGF (ID only)": {"id_only"}, "w/o ILA": {"item_align"},
                "w/o FLA": {"feat_align"}, "w/o CLS": {"curriculum", "fixed_w_item"}, "w/o PG": {"pop_grouping"}}
    for label, changed in expected.items():
        assert {k for k, v in full[label].items() if v != full["faerec"][k]} == changed, label


def test_sweeps_are_one_field_at_a_time_and_skip_rows_without_the_field():
    sweeps = spec.load("sweeps")
    labels = [p.label for p in sweeps.points()]
    assert labels[0] == "base"  # base has neither alpha nor bt_lambda: one run at its own setting
    assert labels[1:] == [f"faerec [bt_lambda={v}]" for v in ("0.001", "0.005", "0.01", "0.1")] + [
        f"faerec [alpha={v}]" for v in ("0.05", "0.1", "0.2", "0.5")]
    # the defaults are in both lists: those two points are the default model, trained once
    jobs = runner.plan(sweeps, [{"dataset_id": "sample-u5i5", "path": "data/processed/sample-u5i5"}])
    assert len(jobs) == 9 and len(runner.distinct(jobs)) == 8
    default = TrainConfig(model=ModelConfig(method="faerec"), epochs=10, seed=2024)
    shared = [j.label for j in jobs if j.run_dir == runner.run_dir_for("sample-u5i5", default)]
    assert shared == ["faerec [bt_lambda=0.005]", "faerec [alpha=0.2]"]


def test_run_ids_are_unique_per_override_and_stable(tmp_path, monkeypatch):
    monkeypatch.setenv("FAEREC_RUNS_DIR", str(tmp_path / "runs"))
    datasets = [{"dataset_id": "beauty-u5i5", "path": "p"}]
    ablations = spec.load("ablations", datasets=["d"])
    dirs = [j.run_dir for j in runner.plan(ablations, datasets)]
    assert len(set(dirs)) == len(dirs) == 8
    assert dirs == [j.run_dir for j in runner.plan(spec.load("ablations", datasets=["d"]), datasets)]
    # the full model's id is the one `faerec train` / the pipeline give the same configuration (hash
    # ed2c40b8 is the default FAERec config's from before id_only existed), plus the budget suffix
    assert dirs[0] == tmp_path / "runs" / "beauty-u5i5-sasrec-faerec-s2024-ced2c40b8-e30p10"
    assert config_hash(TrainConfig(model=ModelConfig(method="faerec"))) == "ed2c40b8"
    assert config_hash(TrainConfig(model=ModelConfig(method="faerec")).replace(id_only=True)) != "ed2c40b8"
    # the budget is in the folder name, so a run with another budget never shares it
    other = runner.run_dir_for("beauty-u5i5", TrainConfig(model=ModelConfig(method="faerec"), epochs=31))
    assert other not in dirs


def test_an_integer_for_a_float_names_the_same_run(tmp_path):
    as_int = spec.load(write(tmp_path, 'datasets = ["d"]\nmethods = ["faerec"]\n[settings]\nalpha = 1\n'))
    as_float = spec.from_dict({"datasets": ["d"], "methods": ["faerec"], "settings": {"alpha": 1.0}})
    assert as_int.points()[0].config == as_float.points()[0].config
    assert as_int.points()[0].config.model.method_options.alpha == 1.0


def test_settings_apply_to_the_runs_that_have_them():
    s = spec.from_dict({"datasets": ["d"], "settings": {"alpha": 0.1, "hidden": 32}})
    configs = {p.label: p.config for p in s.points()}
    assert configs["faerec"].model.method_options.alpha == 0.1
    assert configs["base"].model.hidden == configs["faerec"].model.hidden == 32
