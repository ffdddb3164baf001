"""`aesformer-hf --help` starts without torch or transformers; `import aesformer_hf` still registers everything;
the light parsers of `aesformer_hf.commands` keep the options of the libraries they front."""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "transformers", "datasets", "numpy", "PIL", "timm", "accelerate")


def _python(code: str) -> str:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip().splitlines()[-1]


def test_building_the_parser_imports_nothing_heavy():
    loaded = _python(
        "import sys, aesformer_hf.cli as cli\n"
        "cli.build_parser().parse_args(['score', 'x.jpg', '--model', 'm'])\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])"
    )
    assert loaded == "[]"


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["score", "--help"], ["prepare-dataset", "--help"], ["report", "--help"], ["app", "--help"]],
)
def test_help_takes_well_under_a_second_of_cpu(argv):
    """CPU time, not wall time: the machine may be busy. Before, `aesformer-hf --help` took 4-8 s."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = subprocess.run(
        [sys.executable, "-m", "aesformer_hf.cli", *argv],
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert result.returncode == 0 and "usage: aesformer-hf" in result.stdout
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert cpu < 1.0, f"{argv}: {cpu:.2f} s of CPU"


def test_import_registers_the_pipeline_and_auto_classes():
    registered = _python(
        "import json, aesformer_hf\n"
        "from transformers import AutoConfig\n"
        "from transformers.pipelines import PIPELINE_REGISTRY\n"
        "tasks = PIPELINE_REGISTRY.get_supported_tasks()\n"
        "print(json.dumps(['image-aesthetics' in tasks, type(AutoConfig.for_model('aesformer')).__name__]))"
    )
    assert json.loads(registered) == [True, "AesformerConfig"]


def test_the_command_line_module_registers_on_first_use():
    result = _python(
        "import sys, aesformer_hf.cli, aesformer_hf\n"
        "before = 'torch' in sys.modules\n"
        "config = aesformer_hf.AesformerConfig\n"
        "from transformers.pipelines import PIPELINE_REGISTRY\n"
        "print(before, aesformer_hf._registered, 'image-aesthetics' in PIPELINE_REGISTRY.get_supported_tasks())"
    )
    assert result == "False True True"


def _options(parser: argparse.ArgumentParser) -> list[tuple]:
    return [
        (
            tuple(a.option_strings),
            a.dest,
            a.default,
            a.choices,
            a.required,
            a.nargs,
            a.help,
            a.metavar,
            a.const,
        )
        for a in parser._actions
    ]


def _subparser(add, name: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aesformer-hf")
    subparsers = parser.add_subparsers(dest="command")
    add(subparsers)
    return subparsers.choices[name]


def test_light_parsers_keep_the_libraries_options():
    from aesformer_hf.commands import attention, convert_original, prepare_dataset, train
    from aesformer_hf.data import parquet, prepare
    from aesformer_hf.models.aesformer import convert_aesformer_original_to_hf as converter
    from aesformer_hf.training import demo
    from aesformer_hf.visualization import attention_maps

    # The command is defined once, outside the model folder that ships to the Hub.
    assert not hasattr(converter, "add_parser") and not hasattr(converter, "run_convert_original")
    assert "convert-original" in _subparser(convert_original.add_parser, "convert-original").prog
    assert list(prepare_dataset.DATASET_NAMES) == sorted(prepare.DATASET_READERS)
    assert prepare_dataset.DEFAULT_MAX_SHARD_BYTES == parquet.DEFAULT_MAX_SHARD_BYTES
    assert attention.METHODS == attention_maps.METHODS
    assert train.DEFAULT_DEMO_OUTPUT == demo.DEFAULT_OUTPUT
    # Each command is defined once, in its commands module; the libraries keep no command code of their own.
    for library, names in (
        (prepare, ("add_parser", "parse_size", "run_prepare_dataset", "main")),
        (attention_maps, ("add_parser", "run_attention_command", "_load_model_and_processor")),
        (demo, ("add_demo_parser", "main")),
    ):
        assert not [name for name in names if hasattr(library, name)], library.__name__


def test_version_is_the_installed_distributions(capsys):
    from importlib.metadata import version

    import pytest

    from aesformer_hf.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"aesformer-hf {version('aesformer-hf')}"
