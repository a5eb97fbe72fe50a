"""The `OptimizationConfig` fields, defaults and attribute docstrings, read from engine/config.py's source.

The GUI thread must never import torch (importing `engine` does), so the optimization panel is built
from the dataclass's own source with `ast`: the docstrings written under each field become the
tooltips, and there is no second copy of them to drift. Qt-free.
"""

from __future__ import annotations

import ast
import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class FieldSpec:
    name: str
    kind: str
    """'bool', 'int', 'float' or 'choice'."""
    default: Any
    doc: str
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class ConfigSchema:
    fields: tuple[FieldSpec, ...]

    def field(self, name: str) -> FieldSpec:
        return next(f for f in self.fields if f.name == name)

    def defaults(self) -> dict[str, Any]:
        return {f.name: f.default for f in self.fields}


def engine_config_path() -> Path:
    """engine/config.py, located without executing engine/__init__.py (which imports torch)."""
    spec = importlib.util.find_spec("engine")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the 'engine' package is not importable")
    return Path(next(iter(spec.submodule_search_locations))) / "config.py"


@lru_cache(maxsize=4)
def load_schema(path: Path | None = None) -> ConfigSchema:
    tree = ast.parse((path or engine_config_path()).read_text(encoding="utf-8"))
    constants = _module_constants(tree)
    literals = _literal_aliases(tree)
    body = next(
        node.body for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "OptimizationConfig"
    )
    return ConfigSchema(tuple(_fields(body, constants, literals)))


def _fields(body: list[ast.stmt], constants: dict[str, Any], literals: dict[str, tuple]) -> list[FieldSpec]:
    specs = []
    for index, node in enumerate(body):
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value):
            continue
        annotation = ast.unparse(node.annotation)
        default = ast.literal_eval(node.value)
        choices = literals.get(annotation, ())
        kind = "choice" if choices else annotation if annotation in ("bool", "int", "float") else "str"
        specs.append(FieldSpec(node.target.id, kind, default, _docstring_after(body, index), choices))
    return specs


def _docstring_after(body: list[ast.stmt], index: int) -> str:
    if index + 1 < len(body):
        nxt = body[index + 1]
        if isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str):
            return " ".join(nxt.value.value.split())
    return ""


def _module_constants(tree: ast.Module) -> dict[str, Any]:
    values = {}
    for node in tree.body:
        target = node.target if isinstance(node, ast.AnnAssign) else None
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
        if isinstance(target, ast.Name) and node.value is not None:
            try:
                values[target.id] = ast.literal_eval(node.value)
            except ValueError:
                continue
    return values


def _literal_aliases(tree: ast.Module) -> dict[str, tuple]:
    """`CompileMode = Literal["default", ...]` → {'CompileMode': ('default', ...)}."""
    aliases = {}
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Subscript)
            and ast.unparse(node.value.value) == "Literal"
        ):
            items = node.value.slice
            elts = items.elts if isinstance(items, ast.Tuple) else [items]
            aliases[node.targets[0].id] = tuple(ast.literal_eval(e) for e in elts)
    return aliases
