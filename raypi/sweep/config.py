"""Sweep specs to and from YAML: ``defaults`` shared by every block, then ``grids``.

```yaml
name: distill_grid
data:                        # dataset name -> tables and features (omit for the demo)
  inspect: {root: s3://bucket/datasets/inspect, features: s3://bucket/features/inspect}
defaults: {encoders: [rad_dino, c2l], seeds: [0, 1, 2, 3, 4]}
grids:
  - {tasks: [readmission], size_picks: [0, -1]}
resource_overrides: {rad_dino: {needs_big_gpu: true}}
```
"""

from __future__ import annotations

import os
from dataclasses import asdict, fields

import yaml

from raypi import io
from raypi.sweep.grid import DataSource, Grid, SweepSpec

_TOP = ("name", "data", "defaults", "grids", "resource_overrides")


def _absolute(path: str) -> str:
    return str(path) if io.is_remote(path) else os.path.abspath(os.path.expanduser(str(path)))


class ConfigError(ValueError):
    """A sweep config that cannot run: names the file, the block, the field and what it wants."""


_LISTS = {"tasks": str, "encoders": str, "methods": str, "heads": str, "text_encoders": str,
          "seeds": int, "sizes": int, "size_picks": int, "lams": float, "taus": float}  # fmt: skip
_SCALARS = {"lr": float, "batch_size": int, "epochs": int, "views": int, "dtype": str,
            "size_mode": str, "teacher_selection": str, "selection_split": str,
            "inner_share": float, "validate_every": int}  # fmt: skip
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
    """Refuse tasks, encoders and size picks the registries do not know."""
    from raypi.encoders import list_encoders
    from raypi.tasks import TASKS

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
    return grid


def spec_from_dict(values: dict) -> SweepSpec:
    """Build a sweep spec from its dict (YAML) form.

    Args:
        values: ``name``, ``grids`` and optionally ``defaults``, ``data``,
            ``resource_overrides``.

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
    data = {
        name: DataSource(_absolute(source["root"]), _absolute(source["features"]))
        for name, source in (values.get("data") or {}).items()
    }
    return SweepSpec(
        name=str(values["name"]),
        grids=tuple(
            _grid({**defaults, **block}, f"grids[{index}]")
            for index, block in enumerate(values["grids"])
        ),
        data=data,
        resource_overrides=dict(values.get("resource_overrides") or {}),
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
    }


def load_spec(path: str) -> SweepSpec:
    """Read a sweep spec from a YAML file (local or ``s3://``).

    Args:
        path: The YAML file.

    Returns:
        The spec.

    Raises:
        ConfigError: The file is not valid YAML or not a runnable sweep; the message starts
            with the file's path and names the block and field.
    """
    try:
        return spec_from_dict(yaml.safe_load(io.read_bytes(path)))
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({error})") from None
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None
