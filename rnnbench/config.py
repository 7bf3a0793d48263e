"""The configuration layer's base: strict types, safe YAML loading, `--set` overrides, and the
one-line error format. A leaf: it imports no other rnnbench module.

Each concern owns its schema (training/schema.py, models/families.py, probes/schema.py,
speed/schema.py, study/schema.py, report/schema.py, one Config per task module) built from
StrictModel; rnnbench/params.py composes them into the typed Params of params.yaml. Raw dicts
live only at the YAML boundary (and in MLflow). Every failure is one line naming the file, the
key path and the bad value.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

PositiveInt = Annotated[int, Field(gt=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
NonNegInt = Annotated[int, Field(ge=0)]
Seed = Annotated[int, Field(ge=0, lt=2**32)]  # numpy's SeedSequence takes any size; torch's
#                                               manual_seed wraps above 2**64: one safe range
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")  # preset names become DVC stage names and paths
MAX_YAML_BYTES = 1 << 20  # a params file is a few KiB; larger ones are mistakes
MAX_YAML_NODES = 100_000  # bounds alias expansion ("billion laughs") and size alike
MAX_YAML_DEPTH = 32  # the deepest params path is five keys


class UserError(Exception):
    """A mistake in what the user asked for; str() is the one line shown, exit status 2."""


class ConfigError(UserError, ValueError):
    """A bad params file or override."""


class StrictModel(BaseModel):
    """Unknown keys are errors; no coercion (a boolean is not an integer, "3" is not 3);
    infinite and NaN floats are rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class ResultModel(BaseModel):
    """The schema of a result file (metrics.json, speed.json, a study's summary.json): its
    writer validates before writing and its readers on reading (rnnbench.io.write_result,
    read_result), so a field is declared here before either side uses it. Non-finite numbers
    are allowed: a diverged run's metrics are NaN."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=True,
                              protected_namespaces=())


# ---------------------------------------------------------------- YAML
# YAML 1.2 floats: PyYAML (YAML 1.1) reads 1e-3 as a string, which a strict float would reject.
_FLOAT_12 = re.compile(r"""^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$
                           |^[-+]?\.(?:inf|Inf|INF)$|^\.(?:nan|NaN|NAN)$""", re.X)


class _Loader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys and bounds nesting and the expanded node count."""

    def __init__(self, stream, source: str):
        super().__init__(stream)
        self.source, self.nodes, self.depth = source, 0, -1

    def compose_node(self, parent, index):
        # The composer recurses once per level: bound it here, before Python's own limit
        # (a 10 KB file of "[" would otherwise end in a RecursionError). _measure bounds the
        # depth again once aliases are expanded.
        self.depth += 1
        try:
            if self.depth > MAX_YAML_DEPTH:
                raise self._too_deep(self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_document(self, node):
        self._measure(node, 0, set())
        return super().construct_document(node)

    def _too_deep(self, mark) -> ConfigError:
        return ConfigError(f"{self.source}: line {mark.line + 1}: nested deeper than "
                           f"{MAX_YAML_DEPTH} levels")

    def _measure(self, node, depth: int, path: set[int]) -> None:
        self.nodes += 1
        if self.nodes > MAX_YAML_NODES:
            raise ConfigError(f"{self.source}: more than {MAX_YAML_NODES} YAML nodes once aliases "
                              "are expanded; refusing to load it")
        if depth > MAX_YAML_DEPTH:
            raise self._too_deep(node.start_mark)
        if isinstance(node, yaml.MappingNode):
            keys = set()
            for k, v in node.value:
                if isinstance(k, yaml.ScalarNode):
                    if k.value in keys:
                        raise ConfigError(f"{self.source}: line {k.start_mark.line + 1}: "
                                          f"duplicate key {k.value!r}")
                    keys.add(k.value)
                self._measure(k, depth + 1, path)
                self._measure(v, depth + 1, path)
        elif isinstance(node, yaml.SequenceNode):
            for v in node.value:
                self._measure(v, depth + 1, path)


# YAML 1.2 core schema for numbers and booleans throughout: YAML 1.1 would also read 1_0_ as
# 10, 010 as 8, 1:30 as 90 and yes/no/on/off as booleans, each a typo accepted without a word.
_INT_12 = re.compile(r"^[-+]?[0-9]+$|^0o[0-7]+$|^0x[0-9a-fA-F]+$")
_BOOL_12 = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag.rsplit(":", 1)[1] not in
            ("int", "float", "bool")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_Loader.add_implicit_resolver("tag:yaml.org,2002:int", _INT_12, list("-+0123456789"))  # first
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_12, list("-+0123456789."))
_Loader.add_implicit_resolver("tag:yaml.org,2002:bool", _BOOL_12, list("tTfF"))


def _int_12(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    text = loader.construct_scalar(node)
    if text.startswith(("0o", "0x")):
        return int(text[2:], 8 if text[1] == "o" else 16)
    return int(text, 10)


def _bool_12(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> bool:
    return loader.construct_scalar(node).lower() == "true"


_Loader.add_constructor("tag:yaml.org,2002:int", _int_12)
_Loader.add_constructor("tag:yaml.org,2002:bool", _bool_12)


def parse_yaml(text: str, source: str) -> Any:
    """YAML text -> Python data, safely, or ConfigError naming `source` and the line."""
    loader = _Loader(text, source)
    try:
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}:" if mark else ""
        why = getattr(exc, "problem", None) or exc
        raise ConfigError(f"{source}:{where} not valid YAML ({why})") from None
    finally:
        loader.dispose()


def read_yaml_file(path: Path) -> Any:
    """A params file's data; every way of failing to read it is one ConfigError line."""
    try:
        if path.is_dir():
            raise ConfigError(f"{path}: is a directory, not a params file")
        with path.open("rb") as f:  # a bounded read: a FIFO or /dev/zero has no size to check
            data = f.read(MAX_YAML_BYTES + 1)
        if len(data) > MAX_YAML_BYTES:
            raise ConfigError(f"{path}: larger than {MAX_YAML_BYTES} bytes; not a params file")
        text = data.decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror})") from None
    return parse_yaml(text, str(path))


# ---------------------------------------------------------------- overrides
def parse_override(text: str) -> tuple[list[str], Any]:
    """'train.lr=0.01' -> (['train', 'lr'], 0.01); the value is read as YAML."""
    key, sep, raw = text.partition("=")
    if not sep or not key or any(not p for p in key.split(".")):
        raise ConfigError(f"--set {text!r}: expected key.path=value")
    value = parse_yaml(raw, f"--set {text!r}") if raw else ""
    return key.split("."), value


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    for text in overrides:
        path, value = parse_override(text)
        node = raw
        for i, part in enumerate(path[:-1]):
            nxt = node.get(part) if isinstance(node, dict) else None
            if nxt is None:
                nxt = node[part] = {} if isinstance(node, dict) else None
            if not isinstance(nxt, dict):
                raise ConfigError(f"--set {text!r}: {'.'.join(path[: i + 1])} is not a section")
            node = nxt
        node[path[-1]] = value
    return raw


# ---------------------------------------------------------------- errors
def _fmt_value(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _user_path(loc: tuple, raw: Any) -> list[str]:
    """The error's location as the keys the user wrote: pydantic adds the tag of a
    discriminated union (and validator names) to the path, which are not keys of the input."""
    parts, node = [], raw
    for i, p in enumerate(loc):
        if isinstance(node, dict):
            if p not in node:
                if i == len(loc) - 1:  # a missing key
                    parts.append(str(p))
                continue  # a union tag or validator name
            parts.append(str(p))
            node = node[p]
        elif isinstance(node, list) and isinstance(p, int) and p < len(node):
            parts.append(str(p))
            node = node[p]
        else:
            parts.append(str(p))
            node = None
    return parts


def format_error(source: str, err: ValidationError, raw: Any) -> str:
    """The first error of a validation, as one line: 'source: key.path = value: why'."""
    e = err.errors()[0]
    loc = ".".join(_user_path(e["loc"], raw))
    msg = e["msg"].removeprefix("Value error, ")
    if e["type"] == "extra_forbidden":
        return f"{source}: {loc}: unknown key (value {_fmt_value(e['input'])})"
    if e["type"] == "missing":
        return f"{source}: {loc}: required key is missing"
    if e["type"] in ("union_tag_invalid", "union_tag_not_found"):
        key = f"{loc}.{e['ctx']['discriminator'].strip(chr(39))}"
        if e["type"] == "union_tag_not_found":
            return f"{source}: {key}: required key is missing"
        return (f"{source}: {key} = {_fmt_value(e['ctx']['tag'])}: unknown value "
                f"(expected {e['ctx']['expected_tags']})")
    if not loc:  # a check across sections: its message carries its own key path
        return f"{source}: {msg}"
    if isinstance(e["input"], dict) and re.match(r"^\w+ = ", msg):  # 'key = value: why'
        return f"{source}: {loc}.{msg}"
    return f"{source}: {loc} = {_fmt_value(e['input'])}: {msg}"


def validate(model: type[BaseModel], raw: Any, source: str) -> Any:
    """model.model_validate(raw), any failure as one ConfigError line naming `source`."""
    try:
        return model.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(format_error(source, err, raw)) from None
