"""Command-line flags made from a frozen dataclass: one per field, its docstring as help.

A settings dataclass documents each field with a string literal under it (the house style);
those strings become the flags' help, the defaults and types come from the fields, and
``metadata={"choices": …}`` limits a flag's values. So a setting is written once, in the
library, and the command line cannot drift from it (``raypi extract`` from ``ExtractOptions``,
the sweep commands from ``LaunchOptions``).
"""

from __future__ import annotations

import argparse
import ast
import inspect
import textwrap
from dataclasses import MISSING, fields

_TYPES = {"int": int, "float": float, "str": str}


def field_docs(cls: type) -> dict[str, str]:
    """Return ``field name → docstring`` of a dataclass whose fields carry string literals.

    Args:
        cls: The dataclass.

    Returns:
        One entry per documented field.
    """
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body
    docs = {}
    for node, after in zip(body, body[1:]):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            if isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant):
                docs[node.target.id] = " ".join(str(after.value.value).split())
    return docs


def add_arguments(
    parser: argparse.ArgumentParser,
    cls: type,
    skip: tuple[str, ...] = (),
    overrides: dict[str, dict] | None = None,
) -> None:
    """Add a ``--field-name`` flag per field of ``cls`` (but ``skip``) to ``parser``.

    Args:
        parser: The command's parser.
        cls: A frozen settings dataclass: int, float and str fields take a value, False bools
            become ``--field-name`` and True bools ``--no-field-name`` switches.
        skip: Fields the command sets otherwise.
        overrides: Field → its flag's argparse settings, option strings under ``flags``, for
            fields whose flag is not the plain one (help: the field's docstring, unless given).

    Raises:
        TypeError: A field of another type has no override.
    """
    docs = field_docs(cls)
    for item in fields(cls):
        if item.name in skip:
            continue
        text = docs.get(item.name, "").replace("%", "%%")
        if overrides and item.name in overrides:
            settings = {"help": text, **overrides[item.name]}
        else:
            settings = _made_flag(item, text, cls.__name__)
        names = settings.pop("flags")
        parser.add_argument(*names, dest=item.name, **settings)


def _made_flag(item, text: str, owner: str) -> dict:
    """Return the flag of one field: option strings under ``flags``, then argparse settings."""
    flag = "--" + item.name.replace("_", "-")
    default = None if item.default is MISSING else item.default
    kind = str(item.type).split("|")[0].strip()
    if kind == "bool" and default is True:
        switch = "--no-" + item.name.replace("_", "-")
        help_text = f"turn this off (on by default): {text}"
        return {"flags": (switch,), "action": "store_false", "default": True, "help": help_text}
    if kind == "bool":
        return {"flags": (flag,), "action": "store_true", "default": default, "help": text}
    if kind not in _TYPES:
        raise TypeError(f"{owner}.{item.name}: no flag is made for type {item.type}; override it")
    return {
        "flags": (flag,),
        "type": _TYPES[kind],
        "default": default,
        "choices": item.metadata.get("choices"),
        "help": f"{text} (default: {default})",
    }


def values(args: argparse.Namespace, cls: type, skip: tuple[str, ...] = ()) -> dict:
    """Return the parsed values of ``cls``'s flags as keyword arguments.

    Args:
        args: Parsed arguments.
        cls: The dataclass the flags were made from.
        skip: Fields that had no flag.

    Returns:
        ``field name → value``.
    """
    return {item.name: getattr(args, item.name) for item in fields(cls) if item.name not in skip}


def add_address(parser: argparse.ArgumentParser, work: str) -> None:
    """Add ``--address``, read by ``raypi.cluster.connect`` (one meaning on every command).

    Args:
        parser: The command's parser.
        work: What runs on the cluster, for the help text (e.g. ``"the sweep"``).
    """
    parser.add_argument(
        "--address", default=None,
        help=f"Ray cluster that runs {work}: 'auto' (the one running on this machine), "
        "host:port or ray://host:port; default: a fresh local Ray (or RAY_ADDRESS, as set in a "
        "Ray Job)",
    )  # fmt: skip
