"""Dependencies that fit: a core install rates and trains; each job-specific package is an extra, and a missing one
is one line naming the `pip install` to run (exit code 2 from the command line)."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

from aesformer_hf.cli import main as cli_main
from aesformer_hf.utils.optional import OPTIONAL_PACKAGES, MissingOptionalDependency, require

tomllib = pytest.importorskip("tomllib")

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIR = ROOT / "aesformer_hf"
JOB_SPECIFIC = {
    "scikit-image",
    "openpyxl",
    "matplotlib",
    "pandas",
    "onnx",
    "onnxscript",
    "onnxruntime",
    "gradio",
}


def _name(requirement: str) -> str:
    """`"scikit-image>=0.22"` -> `"scikit-image"`; `"aesformer-hf[onnx]"` -> `"aesformer-hf"`."""
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower()


@pytest.fixture(scope="module")
def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _block(monkeypatch, *modules: str) -> None:
    """Make `modules` unimportable, as where they are not installed (`import x` raises ImportError)."""
    for module in modules:
        for loaded in [name for name in sys.modules if name == module or name.startswith(module + ".")]:
            monkeypatch.delitem(sys.modules, loaded)
        monkeypatch.setitem(sys.modules, module, None)


# --------------------------------------------------------------------------------------------------
# pyproject.toml and the README
# --------------------------------------------------------------------------------------------------
def test_core_install_pulls_no_job_specific_package(project):
    core = {_name(requirement) for requirement in project["dependencies"]}
    assert core.isdisjoint(JOB_SPECIFIC), sorted(core & JOB_SPECIFIC)
    # What rating and training import stays in the core.
    assert {"torch", "torchvision", "transformers", "timm", "datasets", "accelerate", "pillow"} <= core


def test_each_optional_package_is_in_its_extra_and_dev_pulls_every_extra(project):
    extras = project["optional-dependencies"]
    for module, (distribution, extra) in OPTIONAL_PACKAGES.items():
        assert distribution in {_name(r) for r in extras[extra]}, (module, distribution, extra)
    dev = extras["dev"]
    pulled = {
        extra
        for r in dev
        if _name(r) == "aesformer-hf"
        for extra in r[r.index("[") + 1 : r.index("]")].split(",")
    }
    assert pulled == set(extras) - {"dev"}
    assert "pandas" in {_name(r) for r in dev}  # the tests read CSVs with it


def test_readme_install_commands_install_what_they_run():
    commands = [
        line for line in (ROOT / "README.md").read_text().splitlines()[:12] if "pip install -e" in line
    ]
    demo = next(line for line in commands if "aesformer-hf demo" in line)
    tests = next(line for line in commands if "pytest" in line)
    assert "[demo]" in demo or "[dev]" in demo
    assert "[dev]" in tests
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'pip install -q -e ".[dev]"' in ci


# --------------------------------------------------------------------------------------------------
# The helper and the places that use it
# --------------------------------------------------------------------------------------------------
def test_require_names_the_pip_install_in_one_line(monkeypatch):
    _block(monkeypatch, "skimage")
    with pytest.raises(MissingOptionalDependency) as error:
        require("skimage", purpose="The demo")
    message = str(error.value)
    assert message == "The demo needs scikit-image, which is not installed: pip install 'aesformer-hf[demo]'"
    assert isinstance(error.value, ImportError) and error.value.name == "skimage"
    require("numpy", purpose="never raised")  # installed modules pass


def test_require_lists_every_missing_package_of_an_extra(monkeypatch):
    _block(monkeypatch, "onnx", "onnxruntime")
    with pytest.raises(
        MissingOptionalDependency, match=r"needs onnx, onnxruntime, which are not installed: "
    ):
        require("onnx", "onnxscript", "onnxruntime", purpose="ONNX export")


def _imports_of_optional_packages(tree: ast.AST):
    """(node, enclosing function or None) for every import of a top-level module listed in OPTIONAL_PACKAGES."""

    def visit(node, function):
        for child in ast.iter_child_nodes(node):
            scope = child if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else function
            if isinstance(child, ast.Import):
                names = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                names = [child.module]
            else:
                names = []
            if any(name.split(".")[0] in OPTIONAL_PACKAGES for name in names):
                yield child, function
            yield from visit(child, scope)

    yield from visit(tree, None)


def _checks_in(function) -> list[int]:
    """Lines of the `require(...)` / `require_onnx(...)` calls in `function` (none at module level)."""
    if function is None:
        return []
    return [
        call.lineno
        for call in ast.walk(function)
        if isinstance(call, ast.Call)
        and getattr(call.func, "id", getattr(call.func, "attr", None)) in ("require", "require_onnx")
    ]


def test_every_import_of_an_optional_package_is_checked_first():
    """Each `import <optional>` sits in a function that calls `require(...)` (or `require_onnx`) before it."""
    unchecked = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node, function in _imports_of_optional_packages(tree):
            if not any(line < node.lineno for line in _checks_in(function)):
                unchecked.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert unchecked == []


def test_synthetic_photos_and_jas_spreadsheet_name_their_extra(monkeypatch, tmp_path):
    from aesformer_hf.data.jas import read_jas_scores
    from aesformer_hf.data.report import BuildReport
    from aesformer_hf.data.synthetic import SOURCE_PHOTOS

    _block(monkeypatch, "skimage", "openpyxl")
    with pytest.raises(MissingOptionalDependency, match=r"pip install 'aesformer-hf\[demo\]'"):
        SOURCE_PHOTOS["astronaut"]()
    spreadsheet = tmp_path / "Subjective scores.xlsx"
    spreadsheet.write_bytes(b"not read: the check comes first")
    with pytest.raises(MissingOptionalDependency, match=r"Subjective scores.xlsx needs openpyxl.*\[data\]'$"):
        read_jas_scores(spreadsheet, BuildReport())


# --------------------------------------------------------------------------------------------------
# The command line: one line on stderr, exit code 2, nothing written
# --------------------------------------------------------------------------------------------------
def _one_line_exit_2(capsys, argv: list[str], extra: str) -> str:
    capsys.readouterr()
    assert cli_main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].endswith(f"pip install 'aesformer-hf[{extra}]'"), lines[0]
    return lines[0]


def test_demo_without_scikit_image(monkeypatch, capsys, tmp_path):
    _block(monkeypatch, "skimage")
    line = _one_line_exit_2(capsys, ["demo", "--quick", "--output", str(tmp_path / "demo")], "demo")
    assert line.startswith("aesformer-hf demo: ") and "scikit-image" in line
    assert not (tmp_path / "demo").exists()


def test_attention_without_matplotlib(monkeypatch, capsys, tmp_path):
    from PIL import Image

    Image.new("RGB", (32, 24), (200, 120, 40)).save(tmp_path / "photo.png")
    _block(monkeypatch, "matplotlib")
    argv = ["attention", str(tmp_path / "photo.png"), "--model", str(tmp_path / "no-model"), "--output"]
    line = _one_line_exit_2(capsys, [*argv, str(tmp_path / "out.png")], "viz")
    assert "matplotlib" in line  # named before the (missing) model is even looked at
    assert not (tmp_path / "out.png").exists()


def test_export_without_onnxscript(monkeypatch, capsys, tmp_path):
    _block(monkeypatch, "onnxscript")
    argv = ["export", "--model", str(tmp_path / "no-model"), "--output", str(tmp_path / "out")]
    line = _one_line_exit_2(capsys, argv, "onnx")
    assert "onnxscript" in line
    assert not (tmp_path / "out").exists()


def test_prepare_dataset_jas_spreadsheet_without_openpyxl(monkeypatch, capsys, tmp_path):
    from .data.test_jas import _write_synthetic_jas

    _write_synthetic_jas(tmp_path / "JAS")  # written with openpyxl, then read without it
    _block(monkeypatch, "openpyxl")
    argv = ["prepare-dataset", "jas", "--data-dir", str(tmp_path / "JAS"), "--output", str(tmp_path / "out")]
    line = _one_line_exit_2(capsys, [*argv, "--no-progress"], "data")
    assert line.startswith("aesformer-hf prepare-dataset: ") and "openpyxl" in line
    assert not (tmp_path / "out").exists()
