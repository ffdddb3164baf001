"""Optional dependencies: the packages of the `[demo]`, `[data]`, `[viz]`, `[onnx]` and `[app]` extras.

A core install (`pip install aesformer-hf`) rates and trains. What only one job needs is an extra, imported only
where that job runs, after [`require`] has checked it: a missing package is then one line naming the `pip install`
that brings it (and `aesformer-hf` prints that line and exits with code 2), not a traceback.
"""

from __future__ import annotations

import importlib.util
import sys

PACKAGE = "aesformer-hf"

# Import name -> (distribution on PyPI, extra of pyproject.toml that installs it). A test keeps this table and
# pyproject.toml's extras in agreement.
OPTIONAL_PACKAGES: dict[str, tuple[str, str]] = {
    "skimage": ("scikit-image", "demo"),
    "openpyxl": ("openpyxl", "data"),
    "matplotlib": ("matplotlib", "viz"),
    "onnx": ("onnx", "onnx"),
    "onnxscript": ("onnxscript", "onnx"),
    "onnxruntime": ("onnxruntime", "onnx"),
    "gradio": ("gradio", "app"),
}


class MissingOptionalDependency(ImportError):
    """An optional package is not installed. The message is one line ending in the `pip install` to run."""


def is_available(module: str) -> bool:
    """True when `module` can be imported (checked without importing it)."""
    if module in sys.modules:
        return sys.modules[module] is not None
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def require(*modules: str, purpose: str) -> None:
    """Raise [`MissingOptionalDependency`] unless every one of `modules` (import names) can be imported.

    Args:
        modules: import names listed in `OPTIONAL_PACKAGES` (`"skimage"`, `"openpyxl"`, ...).
        purpose: what needs them, starting the message: `"aesformer-hf demo (its photos)"`.
    """
    missing = [module for module in modules if not is_available(module)]
    if not missing:
        return
    distributions = [OPTIONAL_PACKAGES[module][0] for module in missing]
    extras = sorted({OPTIONAL_PACKAGES[module][1] for module in missing})
    verb = "is" if len(missing) == 1 else "are"
    raise MissingOptionalDependency(
        f"{purpose} needs {', '.join(distributions)}, which {verb} not installed: "
        f"pip install '{PACKAGE}[{','.join(extras)}]'",
        name=missing[0],
    )


__all__ = ["OPTIONAL_PACKAGES", "MissingOptionalDependency", "is_available", "require"]
