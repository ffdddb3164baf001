"""Dataset builders: a local copy of AVA, Photo.net or JAS -> Hub-ready Parquet.

``prepare_dataset("ava", data_dir, output_dir)`` parses the labels, checks every image, writes
``data/*.parquet`` + ``README.md`` + ``aesthetic_spec.json`` + ``build_report.csv``, and returns a
:class:`PreparedDataset` whose ``load()`` is the ``DatasetDict``. :func:`get_dataset_spec` tells
training the scale of any dataset built here, however it was loaded back.
"""

import importlib

# Public name -> the module defining it. Imported on first use, so that a module reading one fact
# (`aesformer_hf.data.schema`, e.g. the model cards) does not import every builder and `datasets`.
_EXPORTS = {
    "AVA_FEATURES": "ava",
    "read_ava": "ava",
    "read_ava_comments": "ava",
    "JAS_FEATURES": "jas",
    "read_jas": "jas",
    "PHOTONET_FEATURES": "photonet",
    "read_photonet": "photonet",
    "PreparedDataset": "prepare",
    "build_dataset": "prepare",
    "prepare_dataset": "prepare",
    "push_dataset_folder": "push",
    "BuildReport": "report",
    "ReportEntry": "report",
    "AVA_SPEC": "schema",
    "DATASET_SPECS": "schema",
    "JAS_SPEC": "schema",
    "PHOTONET_SPEC": "schema",
    "AestheticDatasetSpec": "schema",
    "get_dataset_spec": "schema",
    "DatasetSource": "source",
    "ImageRecord": "source",
}


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))


__all__ = [
    "AVA_FEATURES",
    "AVA_SPEC",
    "DATASET_SPECS",
    "JAS_FEATURES",
    "JAS_SPEC",
    "PHOTONET_FEATURES",
    "PHOTONET_SPEC",
    "AestheticDatasetSpec",
    "BuildReport",
    "DatasetSource",
    "ImageRecord",
    "PreparedDataset",
    "ReportEntry",
    "build_dataset",
    "get_dataset_spec",
    "prepare_dataset",
    "push_dataset_folder",
    "read_ava",
    "read_ava_comments",
    "read_jas",
    "read_photonet",
]
