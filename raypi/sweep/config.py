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


def _grid(values: dict) -> Grid:
    known = {f.name for f in fields(Grid)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown grid fields {unknown}; known: {sorted(known)}")
    return Grid(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def spec_from_dict(values: dict) -> SweepSpec:
    """Build a sweep spec from its dict (YAML) form.

    Args:
        values: ``name``, ``grids`` and optionally ``defaults``, ``data``,
            ``resource_overrides``.

    Returns:
        The spec, with absolute local paths.
    """
    unknown = sorted(set(values) - set(_TOP))
    if unknown:
        raise ValueError(f"unknown sweep config keys {unknown}; known: {list(_TOP)}")
    if not values.get("name") or not values.get("grids"):
        raise ValueError("a sweep config needs a name and at least one entry under grids")
    defaults = dict(values.get("defaults") or {})
    data = {
        name: DataSource(_absolute(source["root"]), _absolute(source["features"]))
        for name, source in (values.get("data") or {}).items()
    }
    return SweepSpec(
        name=str(values["name"]),
        grids=tuple(_grid({**defaults, **block}) for block in values["grids"]),
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
    """
    return spec_from_dict(yaml.safe_load(io.read_bytes(path)))
