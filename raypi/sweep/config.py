"""Sweep specs to and from YAML: ``defaults`` shared by every block, then ``grids``.

```yaml
name: distill_grid
data:                        # dataset name -> tables and features (omit for the demo)
  inspect:
    root: "${RAYPI_DATA}/datasets/inspect"
    features: "${RAYPI_DATA}/features/inspect"
defaults: {encoders: [rad_dino, c2l], seeds: [0, 1, 2, 3, 4]}
grids:
  - {tasks: [readmission], size_picks: [0, -1]}
resource_overrides: {rad_dino: {needs_big_gpu: true}}
```

``${NAME}`` in a data path is replaced by the variable given on the command line
(``--data-store URI`` gives ``RAYPI_DATA``), else by the environment variable; one that is
neither is refused, naming it. ``--data NAME=ROOT,FEATURES`` replaces a dataset's entry.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, fields, replace

import yaml

from raypi import io
from raypi.heads import image_head
from raypi.sweep._cls import check_cls_heads
from raypi.sweep.grid import DataSource, Grid, SweepSpec

_TOP = ("name", "data", "defaults", "grids", "resource_overrides", "random_weights")


DATA_STORE_VARIABLE = "RAYPI_DATA"
"""The variable the study configs' data paths start with (``--data-store``)."""
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _expand(value, where: str, variables: dict[str, str]) -> str:
    """Replace ``${NAME}`` in a data path from ``variables``, else from the environment."""

    def value_of(match) -> str:
        name = match.group(1)
        found = variables.get(name) or os.environ.get(name)
        if not found:
            how = "--data-store URI" if name == DATA_STORE_VARIABLE else "the variable"
            raise ConfigError(
                f"{where}: ${{{name}}} is not set; give {how} or export {name}=URI "
                "(e.g. s3://your-bucket/raypi)"
            )
        return found.rstrip("/")

    if not isinstance(value, str):
        raise ConfigError(f"{where}: expected a path or s3:// URI, got {value!r}")
    return _VARIABLE.sub(value_of, value)


def _data(values: dict, variables: dict[str, str]) -> dict[str, DataSource]:
    data = {}
    for name, source in (values.get("data") or {}).items():
        if not isinstance(source, dict) or set(source) != {"root", "features"}:
            raise ConfigError(f"data.{name}: expected {{root: …, features: …}}, got {source!r}")
        root, features = (
            _absolute(_expand(source[key], f"data.{name}.{key}", variables))
            for key in ("root", "features")
        )
        data[name] = DataSource(root, features)
    return data


def with_data(spec: SweepSpec, overrides: dict[str, tuple[str, str]]) -> SweepSpec:
    """Return ``spec`` with the given datasets' roots and feature stores replaced.

    Args:
        spec: The sweep.
        overrides: Dataset name → ``(root, features)`` (``--data NAME=ROOT,FEATURES``).

    Returns:
        The spec with absolute local paths.
    """
    given = {name: DataSource(_absolute(r), _absolute(f)) for name, (r, f) in overrides.items()}
    return replace(spec, data={**spec.data, **given})


def _absolute(path: str) -> str:
    return str(path) if io.is_remote(path) else os.path.abspath(os.path.expanduser(str(path)))


class ConfigError(ValueError):
    """A sweep config that cannot run: names the file, the block, the field and what it wants."""


_LISTS = {"tasks": str, "encoders": str, "methods": str, "heads": str, "text_encoders": str,
          "seeds": int, "sizes": int, "size_picks": int, "lams": float, "taus": float}  # fmt: skip
_SCALARS = {"lr": float, "batch_size": int, "epochs": int, "views": int, "dtype": str,
            "size_mode": str, "teacher_selection": str, "selection_split": str,
            "inner_share": float, "self_distill_teacher": str,
            "validate_every": int}  # fmt: skip
_OPTIONAL = ("lr", "epochs", "views")
_RANGES = {"lams": (0.0, 1.0), "inner_share": (0.0, 1.0)}
_POSITIVE = ("taus", "lr", "batch_size", "epochs", "sizes", "validate_every")


def _typed(value, kind) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, (int, float)) if kind is float else isinstance(value, kind)


def _check_field(name: str, value, where: str):
    """Return the value as the Grid field wants it (scalars of list fields become lists)."""
    if name in _LISTS:
        items = value if isinstance(value, list) else [value]
        bad = [item for item in items if not _typed(item, _LISTS[name])]
        if bad:
            raise ConfigError(
                f"{where}.{name}: expected a list of {_LISTS[name].__name__}, got {bad}"
            )
        values = items
    else:
        if value is None and name in _OPTIONAL:
            return None
        if not _typed(value, _SCALARS[name]):
            raise ConfigError(f"{where}.{name}: expected {_SCALARS[name].__name__}, got {value!r}")
        values = [value]
    low_high = _RANGES.get(name)
    if low_high and any(not low_high[0] <= v <= low_high[1] for v in values):
        raise ConfigError(f"{where}.{name}: {value} outside [{low_high[0]}, {low_high[1]}]")
    if name in _POSITIVE and any(v <= 0 for v in values):
        raise ConfigError(f"{where}.{name}: {value} must be > 0")
    if name == "views" and values[0] < 0:
        raise ConfigError(f"{where}.views: {value} must be >= 0")
    return tuple(values) if name in _LISTS else value


def _check_names(grid: Grid, where: str) -> None:
    """Refuse heads, tasks, encoders and size picks the registries do not know."""
    from raypi.encoders import list_encoders
    from raypi.tasks import TASKS

    for head in grid.heads:
        try:
            image_head(head)
        except ValueError as error:
            raise ConfigError(f"{where}.heads: {error}") from None
    known = {spec.name: spec.kind for spec in list_encoders()}
    for task in grid.tasks:
        if task not in TASKS:
            raise ConfigError(f"{where}.tasks: unknown task {task!r}; known: {sorted(TASKS)}")
        picks = len(TASKS[task].sizes)
        bad = [pick for pick in grid.size_picks if not -picks <= pick < picks]
        if not grid.sizes and bad:
            raise ConfigError(
                f"{where}.size_picks: {bad} not among task {task!r}'s {picks} sizes "
                f"({', '.join(str(size.samples) for size in TASKS[task].sizes)})"
            )
    for field_name, kind in (("encoders", "image"), ("text_encoders", "text")):
        for name in getattr(grid, field_name):
            if known.get(name) != kind:
                names = sorted(n for n, k in known.items() if k == kind)
                raise ConfigError(
                    f"{where}.{field_name}: {name!r} is not a known {kind} encoder; known: {names}"
                )


def _grid(values: dict, where: str = "grids") -> Grid:
    known = {f.name for f in fields(Grid)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown grid fields {unknown}; known: {sorted(known)}")
    checked = {name: _check_field(name, value, where) for name, value in values.items()}
    try:
        grid = Grid(**checked)
    except ValueError as error:
        raise ConfigError(f"{where}: {error}") from None
    _check_names(grid, where)
    try:
        check_cls_heads(grid.heads, grid.encoders)
    except ValueError as error:
        raise ConfigError(f"{where}.heads: {error}") from None
    return grid


def _flag(values: dict, name: str) -> bool:
    value = values.get(name, False)
    if not isinstance(value, bool):
        raise ConfigError(f"{name}: expected true or false, got {value!r}")
    return value


def spec_from_dict(values: dict, variables: dict[str, str] | None = None) -> SweepSpec:
    """Build a sweep spec from its dict (YAML) form.

    Args:
        values: ``name``, ``grids`` and optionally ``defaults``, ``data``,
            ``resource_overrides``, ``random_weights``.
        variables: Values of ``${NAME}`` in data paths (before the environment's).

    Returns:
        The spec, with absolute local paths.
    """
    if not isinstance(values, dict):
        raise ConfigError(f"expected a mapping with {list(_TOP)}, got {type(values).__name__}")
    unknown = sorted(set(values) - set(_TOP))
    if unknown:
        raise ConfigError(f"unknown sweep config keys {unknown}; known: {list(_TOP)}")
    if not values.get("name") or not values.get("grids"):
        raise ConfigError("a sweep config needs a name and at least one entry under grids")
    if not isinstance(values["grids"], list) or not all(
        isinstance(block, dict) for block in values["grids"]
    ):
        raise ConfigError("grids: expected a list of mappings (one per grid block)")
    defaults = dict(values.get("defaults") or {})
    data = _data(values, variables or {})
    return SweepSpec(
        name=str(values["name"]),
        grids=tuple(
            _grid({**defaults, **block}, f"grids[{index}]")
            for index, block in enumerate(values["grids"])
        ),
        data=data,
        resource_overrides=dict(values.get("resource_overrides") or {}),
        random_weights=_flag(values, "random_weights"),
    )


def spec_to_dict(spec: SweepSpec) -> dict:
    """Return the resolved dict form of a spec (every grid field spelled out)."""

    def plain(value):
        return list(value) if isinstance(value, tuple) else value

    return {
        "name": spec.name,
        "data": {name: asdict(source) for name, source in spec.data.items()},
        "grids": [{k: plain(v) for k, v in asdict(grid).items()} for grid in spec.grids],
        "resource_overrides": spec.resource_overrides,
        "random_weights": spec.random_weights,
    }


def load_spec(path: str, variables: dict[str, str] | None = None) -> SweepSpec:
    """Read a sweep spec from a YAML file (local or ``s3://``).

    Args:
        path: The YAML file.
        variables: Values of ``${NAME}`` in its data paths (before the environment's).

    Returns:
        The spec.

    Raises:
        ConfigError: The file is not valid YAML or not a runnable sweep; the message starts
            with the file's path and names the block and field.
    """
    try:
        return spec_from_dict(yaml.safe_load(io.read_bytes(path)), variables)
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({error})") from None
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None
