"""The library does not depend on the command line: the modules behind `aesformer-hf prepare-dataset`,
`attention` and `demo` import nothing from `aesformer_hf.commands` and no `argparse` of their own; the commands
(`aesformer_hf/commands/`) turn parsed arguments into calls of their plain functions."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
LIBRARY_MODULES = (
    "aesformer_hf.data.prepare",
    "aesformer_hf.visualization.attention_maps",
    "aesformer_hf.training.demo",
)


def _module_path(module: str) -> Path:
    return REPO_ROOT.joinpath(*module.split(".")).with_suffix(".py")


@pytest.mark.parametrize("module", LIBRARY_MODULES)
def test_importing_the_library_module_loads_no_command(module):
    # torch and transformers import argparse themselves, so sys.modules can only tell about the commands package;
    # the module's own source is checked for argparse below.
    code = (
        f"import json, sys, {module}\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('aesformer_hf.commands'))))"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


def _imported_modules(tree: ast.AST, package: str) -> set[str]:
    """Every module the source imports, at any depth (lazy imports inside functions included), made absolute."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            name = ".".join([*base, node.module] if node.module else base)
            found.add(name)
            found.update(f"{name}.{alias.name}" for alias in node.names)
    return found


@pytest.mark.parametrize("module", LIBRARY_MODULES)
def test_the_library_module_source_has_no_argparse_and_no_command_import(module):
    imported = _imported_modules(ast.parse(_module_path(module).read_text()), module.rsplit(".", 1)[0])
    assert "argparse" not in imported
    assert not [name for name in imported if name.split(".")[:2] == ["aesformer_hf", "commands"]]


def test_the_import_walk_resolves_relative_imports():
    tree = ast.parse("from ..commands.train import run_demo\nfrom . import demo\nimport argparse as a")
    imported = _imported_modules(tree, "aesformer_hf.training")
    assert {"aesformer_hf.commands.train", "aesformer_hf.training", "argparse"} <= imported
