"""Command-line flags made from a frozen dataclass: one per field, its docstring as help.

A settings dataclass documents each field with a string literal under it (the house style);
those strings become the flags' help, the defaults and types come from the fields, and
``metadata={"choices": …}`` limits a flag's values. So a setting is written once, in the
library, and the command line cannot drift from it.
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


def add_arguments(parser: argparse.ArgumentParser, cls: type, skip: tuple[str, ...] = ()) -> None:
    """Add a ``--field-name`` flag per field of ``cls`` (but ``skip``) to ``parser``.

    Args:
        parser: The command's parser.
        cls: A frozen settings dataclass (bool fields become ``store_true`` flags).
        skip: Fields the command sets otherwise.
    """
    docs = field_docs(cls)
    for item in fields(cls):
        if item.name in skip:
            continue
        flag = "--" + item.name.replace("_", "-")
        default = None if item.default is MISSING else item.default
        text = docs.get(item.name, "").replace("%", "%%")
        kind = str(item.type).split("|")[0].strip()
        if kind == "bool":
            parser.add_argument(flag, action="store_true", default=default, help=text)
            continue
        help_text = f"{text} (default: {default})"
        parser.add_argument(
            flag,
            type=_TYPES.get(kind, str),
            default=default,
            choices=item.metadata.get("choices"),
            help=help_text,
        )


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
