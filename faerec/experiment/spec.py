"""The experiment spec: a TOML file (or the same fields as a dict) naming the grid of runs behind a table.

    name = "seeds"                 # optional; default: the file's stem
    description = "..."            # optional, shown in the report
    datasets = ["data/sample"]     # what `faerec prepare` takes, or a prepared dataset folder (has stats.json)
    backbones = ["sasrec"]         # default ["sasrec"]
    methods = ["base", "faerec"]   # default ["base", "faerec"]; each is one row ("arm") of the tables
    seeds = [2024, 2025, 2026]     # default [2024]
    epochs = 10                    # default 20 (faerec.defaults.PIPELINE_EPOCHS)
    patience = 10                  # optional, default 10
    encoder = "minilm"             # optional, the text encoder of methods that read text
    reference = "base"             # optional: the row that Impr. rows and significance tests compare against
    tsne = ["faerec", "base"]      # optional: rows whose embeddings get a t-SNE figure

    [variants]                     # more rows: name = overrides (TrainConfig.replace names)
    "w/o ILA" = { method = "faerec", item_align = false }   # `method` defaults to the first entry of methods

    [sweep]                        # one run per value, one field at a time (not a cartesian product)
    alpha = [0.05, 0.1, 0.2, 0.5]

    [settings]                     # fixed overrides of every run that has the setting
    hidden = 64

Precedence: the row's method and backbone, then epochs / patience / seed / encoder, then [settings], then the
variant's overrides, then the swept value. A setting or swept field applies to each run whose training
config, model or chosen backbone / method has it (``alpha`` to faerec rows, not to base); naming one that no
run has is an error. Values are checked against the type of the setting they replace (an integer is accepted
for a float and stored as a float, so ``alpha = 1`` and ``alpha = 1.0`` name the same run). Every error names
the file and the key.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from faerec.defaults import PIPELINE_EPOCHS
from faerec.errors import FaerecError
from faerec.models import ModelConfig, backbone_names, backbone_spec, method_names, method_spec
from faerec.models.registry import option_names
from faerec.runs.config import RESUMABLE_CHANGES, TrainConfig

TOP_KEYS = ("name", "description", "datasets", "backbones", "methods", "seeds", "epochs", "patience", "encoder",
            "reference", "tsne", "variants", "sweep", "settings")
DEFAULT_REFERENCE = "base"
# chosen by their own top-level keys (or, for `method`, by a variant), so never by settings / variants / sweep
TOP_LEVEL_ONLY = {"seed": "seeds", "backbone": "backbones", "epochs": "epochs", "patience": "patience"}
PRESETS = "presets"
RESERVED_NAMES = {"report"}  # runs/report/ is the pipeline's report folder


@dataclass(frozen=True)
class Arm:
    """One row of the tables: a method as it is (label = method name) or a named variant of one."""

    label: str
    method: str
    overrides: dict[str, Any] = field(default_factory=dict)  # without "method"


@dataclass(frozen=True)
class Point:
    """One run's place in the grid (everything but the dataset)."""

    backbone: str
    arm: Arm
    seed: int
    sweep: tuple[str, Any] | None  # (field, value) or None
    config: TrainConfig

    @property
    def label(self) -> str:
        if self.sweep is None:
            return self.arm.label
        return f"{self.arm.label} [{self.sweep[0]}={format_value(self.sweep[1])}]"


@dataclass
class Spec:
    name: str
    source: str  # the file (or "inline") that error messages name
    datasets: list[str]
    backbones: list[str] = field(default_factory=lambda: ["sasrec"])
    methods: list[str] = field(default_factory=lambda: ["base", "faerec"])
    seeds: list[int] = field(default_factory=lambda: [2024])
    epochs: int = PIPELINE_EPOCHS
    patience: int = 10
    encoder: str = "minilm"
    reference: str | None = DEFAULT_REFERENCE
    tsne: list[str] = field(default_factory=list)
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)
    sweep: dict[str, list[Any]] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    @property
    def arms(self) -> list[Arm]:
        arms = [Arm(m, m) for m in self.methods]
        for name, table in self.variants.items():
            overrides = {k: v for k, v in table.items() if k != "method"}
            arms.append(Arm(name, str(table.get("method", self.methods[0])), overrides))
        return arms

    @property
    def labels(self) -> list[str]:
        return [arm.label for arm in self.arms]

    def points(self) -> list[Point]:
        """Every run of one dataset, in table order: backbone, row, sweep point, seed."""
        out = []
        for backbone in self.backbones:
            for arm in self.arms:
                swept = [(f, v) for f, values in self.sweep.items() if accepts(backbone, arm.method, f)
                         for v in values]
                for sweep in swept or [None]:
                    for seed in self.seeds:
                        out.append(Point(backbone, arm, seed, sweep, self.config(backbone, arm, seed, sweep)))
        return out

    def config(self, backbone: str, arm: Arm, seed: int, sweep: tuple[str, Any] | None = None) -> TrainConfig:
        cfg = TrainConfig(model=ModelConfig(backbone=backbone, method=arm.method), epochs=self.epochs,
                          patience=self.patience, seed=seed, encoder=self.encoder)
        steps = [("settings", k, v) for k, v in self.settings.items() if accepts(backbone, arm.method, k)]
        steps += [(f"variants.{_quoted(arm.label)}", k, v) for k, v in arm.overrides.items()]
        if sweep is not None:
            steps.append(("sweep", *sweep))
        for where, key, value in steps:
            cfg = self._apply(cfg, where, key, value)
        return cfg

    def _apply(self, cfg: TrainConfig, where: str, key: str, value: Any) -> TrainConfig:
        try:
            return cfg.replace(**{key: coerce(cfg, key, value)})
        except FaerecError as exc:
            raise FaerecError(f"{where}.{key}: {exc}", path=self.source) from None
        except (TypeError, ValueError) as exc:
            raise FaerecError(f"{where}.{key}: invalid value {value!r} ({exc})", path=self.source) from None

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out.pop("source")
        return out


# --- loading -----------------------------------------------------------------------------------------------
def preset_names() -> list[str]:
    folder = resources.files("faerec.experiment") / PRESETS
    return sorted(p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml"))


def resolve(spec: str | Path) -> Path:
    """A spec file's path: an existing file, or the name of a preset shipped in faerec/experiment/presets/."""
    path = Path(spec)
    if path.is_file():
        return path
    if path.suffix != ".toml" and len(path.parts) == 1:
        preset = resources.files("faerec.experiment") / PRESETS / f"{path.name}.toml"
        if preset.is_file():
            return Path(str(preset))
    raise FaerecError(f"no such spec file or preset (presets: {', '.join(preset_names())})", path=spec)


def read_file(spec: str | Path) -> tuple[dict[str, Any], Path]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        raise FaerecError("reading a TOML spec needs Python 3.11 or later (tomllib); on 3.10 pass the fields as "
                          "a dict (the Prefect flow's parameters)", path=spec) from None
    path = resolve(spec)
    try:
        return tomllib.loads(path.read_text()), path
    except tomllib.TOMLDecodeError as exc:
        raise FaerecError(f"not valid TOML: {exc}", path=path) from None
    except OSError as exc:
        raise FaerecError(f"cannot read the spec ({exc.strerror})", path=path) from None


def load(spec: str | Path, datasets: list[str] | None = None, name: str | None = None) -> Spec:
    """Read and validate a spec file or preset; ``datasets`` (--dataset) replaces its datasets, ``name``
    (--out) its name."""
    data, path = read_file(spec)
    if datasets:
        data["datasets"] = list(datasets)
    if name:
        data["name"] = name
    return from_dict(data, source=str(path), default_name=path.stem)


def from_dict(data: dict[str, Any], source: str = "inline spec", default_name: str = "experiment") -> Spec:
    """Validate the fields of a spec (a parsed TOML file or the flow's parameters)."""
    check = _Checker(source)
    unknown = sorted(set(data) - set(TOP_KEYS))
    if unknown:
        check.fail(unknown[0], f"unknown key (known: {', '.join(TOP_KEYS)})")
    name = check.string(data, "name", default_name)
    if not name or any(c in name for c in "/\\") or name.startswith(".") or name in RESERVED_NAMES:
        check.fail("name", f"{name!r} cannot name a folder under the runs folder")
    if "datasets" not in data:
        check.fail("datasets", "missing: list the sources to prepare, or pass --dataset SOURCE")
    backbones = check.names(data, "backbones", ["sasrec"], backbone_names())
    methods = check.names(data, "methods", ["base", "faerec"], method_names())
    spec = Spec(
        name=name, source=source, description=check.string(data, "description", ""),
        datasets=check.strings(data, "datasets"), backbones=backbones, methods=methods,
        seeds=check.integers(data, "seeds", [2024]), epochs=check.positive(data, "epochs", PIPELINE_EPOCHS),
        patience=check.positive(data, "patience", 10), encoder=check.string(data, "encoder", "minilm"),
        reference=None, tsne=check.strings(data, "tsne", []),
        variants=check.variants(data, methods), sweep=check.sweep(data), settings=check.table(data, "settings"),
    )
    for key in spec.settings:
        check.setting("settings", key, allow_method=False)
        if not any(accepts(b, arm.method, key) for b in backbones for arm in spec.arms):
            check.fail(f"settings.{key}", _nobody_has(key, backbones, spec.arms))
    for key in spec.sweep:
        if not any(accepts(b, arm.method, key) for b in backbones for arm in spec.arms):
            check.fail(f"sweep.{key}", _nobody_has(key, backbones, spec.arms))
    labels = spec.labels
    reference = data.get("reference", DEFAULT_REFERENCE)
    if not isinstance(reference, str):
        check.fail("reference", f"must be a row label (a method or a variant name), got {reference!r}")
    if reference in labels:
        spec.reference = reference
    elif "reference" in data:
        check.fail("reference", f"{reference!r} is not one of the rows {labels}")
    for label in spec.tsne:
        if label not in labels:
            check.fail("tsne", f"{label!r} is not one of the rows {labels}")
    spec.points()  # builds every configuration: a bad value fails here, naming its key
    return spec


# --- settings --------------------------------------------------------------------------------------------
TRAIN_FIELDS = {f.name for f in dataclasses.fields(TrainConfig)} - {"model"}
MODEL_FIELDS = {f.name for f in dataclasses.fields(ModelConfig)} - {"backbone", "method", "backbone_options",
                                                                     "method_options"}


def accepts(backbone: str, method: str, key: str) -> bool:
    """Whether a run of ``backbone`` x ``method`` has the setting ``key``."""
    return (key in TRAIN_FIELDS or key in MODEL_FIELDS or key in option_names(method_spec(method).options)
            or key in option_names(backbone_spec(backbone).options))


def current_value(cfg: TrainConfig, key: str) -> Any:
    for holder in (cfg, cfg.model, cfg.model.method_options, cfg.model.backbone_options):
        if key in {f.name for f in dataclasses.fields(holder)}:
            return getattr(holder, key)
    return None


def coerce(cfg: TrainConfig, key: str, value: Any) -> Any:
    """``value`` checked against the type of the setting it replaces; ints become floats for float settings."""
    current = current_value(cfg, key)
    if current is None:
        return value
    kind = type(current)
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind in (tuple, list):
        ok = isinstance(value, (list, tuple))
    else:
        ok = isinstance(value, kind)
    if not ok:
        raise FaerecError(f"expected {kind.__name__} like the default {current!r}, got {value!r}")
    return value


def format_value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _quoted(label: str) -> str:
    return label if label.replace("_", "").replace("-", "").isalnum() else f'"{label}"'


def _nobody_has(key: str, backbones: list[str], arms: list[Arm]) -> str:
    methods = sorted({a.method for a in arms})
    return (f"no run has this setting: it is not a training or model field, nor an option of the backbones "
            f"{backbones} or the methods {methods}")


class _Checker:
    """Type checks of the top-level keys; every failure names the file and the key."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, message: str):
        raise FaerecError(f"{key}: {message}", path=self.source)

    def string(self, data: dict, key: str, default: str) -> str:
        value = data.get(key, default)
        if not isinstance(value, str):
            self.fail(key, f"must be a string, got {value!r}")
        return value

    def strings(self, data: dict, key: str, default: list[str] | None = None) -> list[str]:
        value = data.get(key, default)
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            self.fail(key, f"must be a list of non-empty strings, got {value!r}")
        if not value and default is None:
            self.fail(key, "needs at least one entry")
        if len(set(value)) != len(value):
            self.fail(key, f"has repeated entries: {value}")
        return list(value)

    def names(self, data: dict, key: str, default: list[str], known: list[str]) -> list[str]:
        value = self.strings(data, key, default)
        if not value:
            self.fail(key, "needs at least one entry")
        for name in value:
            if name not in known:
                self.fail(key, f"unknown {key[:-1]} {name!r} (registered: {', '.join(known)})")
        return value

    def integers(self, data: dict, key: str, default: list[int]) -> list[int]:
        value = data.get(key, default)
        if (not isinstance(value, list) or not value
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
            self.fail(key, f"must be a non-empty list of integers, got {value!r}")
        if len(set(value)) != len(value):
            self.fail(key, f"has repeated entries: {value}")
        return list(value)

    def positive(self, data: dict, key: str, default: int) -> int:
        value = data.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            self.fail(key, f"must be a positive integer, got {value!r}")
        return value

    def table(self, data: dict, key: str) -> dict[str, Any]:
        value = data.get(key, {})
        if not isinstance(value, dict):
            self.fail(key, f"must be a table, got {value!r}")
        return dict(value)

    def setting(self, where: str, key: str, allow_method: bool) -> None:
        if key in TOP_LEVEL_ONLY:
            self.fail(f"{where}.{key}", f"set it with the top-level key `{TOP_LEVEL_ONLY[key]}`")
        if key == "method" and not allow_method:
            self.fail(f"{where}.{key}", "a method is a row: list it in `methods` or give a variant its method")
        if key == "encoder" and where == "settings":
            self.fail(f"{where}.{key}", "set it with the top-level key `encoder`")
        if key in RESUMABLE_CHANGES and where != "settings":
            self.fail(f"{where}.{key}", "does not change the result's meaning (it is not part of the run id)")

    def variants(self, data: dict, methods: list[str]) -> dict[str, dict[str, Any]]:
        variants = self.table(data, "variants")
        for label, table in variants.items():
            where = f"variants.{_quoted(label)}"
            if not label.strip():
                self.fail("variants", "a variant needs a name")
            if label in methods:
                self.fail(where, "a variant cannot have the name of a method row")
            if not isinstance(table, dict):
                self.fail(where, f"must be a table of overrides, got {table!r}")
            for key in table:
                self.setting(where, key, allow_method=True)
            method = table.get("method", methods[0])
            if method not in method_names():
                self.fail(f"{where}.method", f"unknown method {method!r} (registered: {', '.join(method_names())})")
        return {label: dict(table) for label, table in variants.items()}

    def sweep(self, data: dict) -> dict[str, list[Any]]:
        sweep = self.table(data, "sweep")
        for key, values in sweep.items():
            self.setting("sweep", key, allow_method=False)
            if not isinstance(values, list) or not values:
                self.fail(f"sweep.{key}", f"must be a non-empty list of values, got {values!r}")
            if len({repr(v) for v in values}) != len(values):
                self.fail(f"sweep.{key}", f"has repeated values: {values}")
        return {key: list(values) for key, values in sweep.items()}
