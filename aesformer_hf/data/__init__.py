"""Dataset builders: a local copy of AVA, Photo.net or JAS -> Hub-ready Parquet.

``prepare_dataset("ava", data_dir, output_dir)`` parses the labels, checks every image, writes
``data/*.parquet`` + ``README.md`` + ``aesthetic_spec.json`` + ``build_report.csv``, and returns a
:class:`PreparedDataset` whose ``load()`` is the ``DatasetDict``. :func:`get_dataset_spec` tells
training the scale of any dataset built here, however it was loaded back.
"""

from aesformer_hf.data.ava import AVA_FEATURES, read_ava, read_ava_comments
from aesformer_hf.data.jas import JAS_FEATURES, read_jas
from aesformer_hf.data.photonet import PHOTONET_FEATURES, read_photonet
from aesformer_hf.data.prepare import PreparedDataset, build_dataset, prepare_dataset
from aesformer_hf.data.push import push_dataset_folder
from aesformer_hf.data.report import BuildReport, ReportEntry
from aesformer_hf.data.schema import (
    AVA_SPEC,
    DATASET_SPECS,
    JAS_SPEC,
    PHOTONET_SPEC,
    AestheticDatasetSpec,
    get_dataset_spec,
)
from aesformer_hf.data.source import DatasetSource, ImageRecord

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
