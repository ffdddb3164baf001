"""`aesformer-hf score`: output files written as it goes, resume, datasets, workers, and clean one-line errors."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch
from transformers import pipeline

from aesformer_hf.cli import main as cli_main
from aesformer_hf.scoring import default_threads, load_comments, shard
from aesformer_hf.scoring_output import FILES_LAYOUT, read_rows

from .conftest import random_image

REPO_ROOT = Path(__file__).resolve().parents[1]
KILL_SCRIPT = Path(__file__).with_name("score_kill_script.py")
# Names the output must survive: a comma, quotes, a newline, non-ASCII.
AWKWARD_NAMES = ["plain.jpg", "with, comma.png", 'say "cheese".jpg', "two\nlines.png", "café.png"]


def _env(tmp_path: Path) -> dict:
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf-home"),
        "OMP_NUM_THREADS": "1",
        "CUDA_VISIBLE_DEVICES": "",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }


@pytest.fixture(scope="module")
def scorer(saved_model_dir):
    return pipeline("image-aesthetics", model=str(saved_model_dir))


@pytest.fixture()
def photos(tmp_path):
    """A folder with awkward names, a subfolder, and one file that is not an image."""
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    for seed, name in enumerate(AWKWARD_NAMES):
        random_image(seed).save(folder / name)
    for seed in range(5, 12):
        random_image(seed).save(folder / "sub" / f"img{seed:02d}.jpg")
    (folder / "broken.jpg").write_bytes(b"not a jpeg at all")
    return folder


def _expected_order(folder: Path) -> list[str]:
    return sorted(str(p) for p in folder.rglob("*") if p.is_file())


def _rows(path: Path) -> list[dict]:
    return list(read_rows(path, FILES_LAYOUT))


def _score(*argv) -> int:
    return cli_main(["score", *map(str, argv), "--no-progress"])


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_output_file_holds_every_input_in_order_with_distribution_and_errors(
    suffix, photos, saved_model_dir, scorer, tmp_path, capsys
):
    output = tmp_path / f"scores{suffix}"
    assert _score(photos, "--model", saved_model_dir, "--output", output, "--batch-size", 3) == 1
    err = capsys.readouterr().err
    assert "broken.jpg" in err and "unreadable image" in err
    rows = _rows(output)
    assert [row["path"] for row in rows] == _expected_order(photos)  # input order, nothing missing or twice
    by_path = {row["path"]: row for row in rows}
    broken = by_path[str(photos / "broken.jpg")]
    assert (
        broken["score"] is None and broken["distribution"] is None and "unreadable image" in broken["error"]
    )
    for name in AWKWARD_NAMES:
        row = by_path[str(photos / name)]
        expected = scorer(str(photos / name))
        assert row["error"] is None and row["mode"] == "vision" and row["label"] == expected["label"]
        assert row["score"] == pytest.approx(expected["score"], abs=1e-5)
        assert row["distribution"] == pytest.approx(expected["distribution"], abs=1e-5)
    assert not list(tmp_path.glob("scores*.part-*"))  # merged and removed
    if suffix == ".csv":  # a plain csv reader gets the same names back; distribution is a JSON list
        with open(output, newline="", encoding="utf-8") as handle:
            records = list(csv.DictReader(handle))
        assert [r["path"] for r in records] == _expected_order(photos)
        assert len(json.loads(records[1]["distribution"])) == 10
    if suffix == ".parquet":
        table = pq.read_table(output)
        assert str(table.schema.field("distribution").type) == "list<element: double>"


def test_killed_run_keeps_finished_batches_and_resume_completes_it(photos, saved_model_dir, tmp_path):
    reference = tmp_path / "reference.jsonl"
    assert _score(photos, "--model", saved_model_dir, "--output", reference, "--batch-size", 2) == 1
    output = tmp_path / "scores.jsonl"
    argv = [
        "score",
        str(photos),
        "--model",
        str(saved_model_dir),
        "--output",
        str(output),
        "--batch-size",
        "2",
    ]
    killed = subprocess.run(
        [sys.executable, str(KILL_SCRIPT), "0", "3", *argv, "--no-progress"],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert killed.returncode == -9, killed.stderr[-3000:]
    part = Path(f"{output}.part-0-of-1")
    assert not output.exists() and len(_rows(part)) == 3 * 2  # three batches written, the fourth lost
    # Without --resume an existing output is refused rather than overwritten.
    assert cli_main([*argv, "--no-progress"]) == 2
    # Parts of a run with another number of processes are picked up too.
    part = part.rename(Path(f"{output}.part-1-of-3"))
    assert _score(photos, "--model", saved_model_dir, "--output", output, "--batch-size", 2, "--resume") == 1
    assert _rows(output) == _rows(reference)
    assert not part.exists() and not list(tmp_path.glob("scores.jsonl.part-*"))


def test_resume_skips_what_the_file_holds(photos, saved_model_dir, tmp_path, monkeypatch):
    output = tmp_path / "scores.csv"
    some = [photos / "plain.jpg", photos / "sub"]
    assert _score(*some, "--model", saved_model_dir, "--output", output) == 0
    first = _rows(output)
    from aesformer_hf import scoring

    rated = []
    original = scoring.Rater.rate
    monkeypatch.setattr(
        scoring.Rater, "rate", lambda self, records: rated.extend(records) or original(self, records)
    )
    assert _score(photos, "--model", saved_model_dir, "--output", output, "--resume") == 1
    assert len(rated) == len(_expected_order(photos)) - len(first)
    rows = _rows(output)
    assert [row["path"] for row in rows] == _expected_order(photos)
    assert {row["path"]: row for row in rows}[first[0]["path"]] == first[0]


def test_overwrite_replaces_and_bad_output_names_are_usage_errors(photos, saved_model_dir, tmp_path, capsys):
    output = tmp_path / "scores.jsonl"
    output.write_text("old\n")
    assert _score(photos / "plain.jpg", "--model", saved_model_dir, "--output", output, "--overwrite") == 0
    assert [row["path"] for row in _rows(output)] == [str(photos / "plain.jpg")]
    capsys.readouterr()
    for bad in (["--output", tmp_path / "scores.txt"], ["--output", tmp_path / "no" / "x.csv"], ["--resume"]):
        assert _score(photos, "--model", saved_model_dir, *bad) == 2
        err = capsys.readouterr().err
        assert err.startswith("score: ") and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.skipif(sys.platform != "linux", reason="file names that are not UTF-8 need a Linux file system")
def test_non_utf8_file_names_are_written_with_escapes(saved_model_dir, tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    name = os.fsdecode(b"caf\xe9.png")  # Latin-1 bytes: a surrogate escape in Python
    random_image(0).save(os.path.join(folder, name))
    for suffix in (".jsonl", ".csv", ".parquet"):
        output = tmp_path / f"scores{suffix}"
        assert _score(folder, "--model", saved_model_dir, "--output", output) == 0
        (row,) = _rows(output)
        assert row["path"] == str(folder / "caf\\xe9.png") and row["error"] is None
        # --resume recognises the escaped name: nothing is rated twice.
        assert _score(folder, "--model", saved_model_dir, "--output", output, "--resume") == 0
        assert len(_rows(output)) == 1
    assert _score(folder, "--model", saved_model_dir, "--format", "csv") == 0
    assert "caf\\xe9.png" in capsys.readouterr().out


@pytest.mark.timeout(120)
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs and symlinks")
def test_fifos_and_symlink_loops_are_reported_not_hung(saved_model_dir, tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    random_image(0).save(folder / "good.jpg")
    os.mkfifo(folder / "pipe.jpg")
    os.symlink(folder, folder / "loop")  # a folder containing itself
    direct = tmp_path / "direct.png"
    os.mkfifo(direct)
    output = tmp_path / "scores.jsonl"
    assert _score(folder, direct, "--model", saved_model_dir, "--output", output) == 1
    err = capsys.readouterr().err
    errors = {row["path"]: row["error"] for row in _rows(output) if row["error"]}
    assert "not a regular file" in errors[str(folder / "pipe.jpg")]
    assert "not a regular file" in errors[str(direct)]
    assert "symbolic link loop" in errors[str(folder / "loop")]
    for path in errors:
        assert f"skipped {path}:" in err
    assert [row["path"] for row in _rows(output) if not row["error"]] == [str(folder / "good.jpg")]


def test_comments_route_images_and_accept_bom_and_utf16(photos, saved_model_dir, tmp_path, capsys):
    files = [photos / "plain.jpg", photos / "with, comma.png"]
    text = 'image,comment\nplain.jpg,"too blurry, and tilted"\nplain.jpg,lovely colours\n'
    for encoding in ("utf-8", "utf-8-sig", "utf-16"):
        comments = tmp_path / f"comments-{encoding}.csv"
        comments.write_bytes(text.encode(encoding))
        assert load_comments(comments) == {"plain.jpg": ["too blurry, and tilted", "lovely colours"]}
        assert _score(*files, "--model", saved_model_dir, "--comments", comments, "--format", "jsonl") == 0
        rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert [row["mode"] for row in rows] == ["multimodal", "vision"]


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("missing.json", None, "No such file"),
        ("broken.json", b'{"a.jpg": ["x"', "not valid JSON"),
        ("list.json", b'["a.jpg"]', "JSON object"),
        ("numbers.json", b'{"a.jpg": [1, 2]}', "string or a list of strings"),
        ("nested.json", b'{"a.jpg": {"text": "x"}}', "string or a list of strings"),
        ("columns.csv", b"file,text\na.jpg,x\n", "columns 'image' and 'comment'"),
        ("latin1.csv", "image,comment\na.jpg,très\n".encode("latin-1"), "not UTF-8"),
        ("folder.json", "dir", "not a regular file"),
    ],
)
def test_bad_comments_files_are_one_line_errors(
    name, content, message, photos, saved_model_dir, tmp_path, capsys
):
    path = tmp_path / name
    if content == "dir":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    assert _score(photos, "--model", saved_model_dir, "--comments", path) == 2
    err = capsys.readouterr().err
    assert err.startswith("score: --comments") and err.count("\n") == 1 and message in err


def test_model_errors_are_one_line(photos, tmp_path, capsys):
    other = tmp_path / "bert"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model_type": "bert"}))
    cases = {
        str(tmp_path / "no" / "such" / "model"): "no such folder",
        str(other): "model_type='bert'",
        "someone/not-in-the-cache": "no such folder, and no Hub repo",
    }
    for model, message in cases.items():
        assert _score(photos, "--model", model) == 2
        err = capsys.readouterr().err
        assert err.startswith("score: --model") and err.count("\n") == 1 and message in err, err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without a GPU")
def test_cuda_without_a_gpu_is_a_one_line_error(photos, saved_model_dir, capsys):
    assert _score(photos, "--model", saved_model_dir, "--device", "cuda") == 2
    err = capsys.readouterr().err
    assert err.startswith("score: --device cuda") and err.count("\n") == 1


def test_remote_code_never_runs_even_when_y_is_piped(photos, tmp_path):
    evil = tmp_path / "evil-model"
    evil.mkdir()
    marker = tmp_path / "remote-code-ran"
    (evil / "config.json").write_text(
        json.dumps(
            {
                "model_type": "evil-net",
                "auto_map": {
                    "AutoConfig": "configuration_evil.EvilConfig",
                    "AutoModelForImageClassification": "configuration_evil.EvilModel",
                },
            }
        )
    )
    (evil / "configuration_evil.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    script = Path(sys.executable).with_name("aesformer-hf")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "aesformer_hf.cli"]
    for extra in ([], ["--trust-remote-code"]):
        result = subprocess.run(
            [*command, "score", str(photos / "plain.jpg"), "--model", str(evil), *extra],
            input="y\n",
            env=_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 2, result.stderr[-2000:]
        assert not marker.exists()
        assert "Traceback" not in result.stderr and "score: --model" in result.stderr
        assert "[y/N]" not in result.stdout + result.stderr  # never asked


def _dataset_parquet(tmp_path: Path) -> Path:
    from datasets import Dataset, Features, Image, Value

    rows = []
    for i in range(9):
        buffer = io.BytesIO()
        random_image(20 + i).save(buffer, format="PNG")
        rows.append(
            {
                "image": {"bytes": b"broken" if i == 4 else buffer.getvalue(), "path": None},
                "image_id": f"photo-{i}",
                "comments": ["too blurry", "the horizon is tilted"] if i % 3 == 0 else [],
            }
        )
    features = Features({"image": Image(), "image_id": Value("string"), "comments": [Value("string")]})
    path = tmp_path / "rows.parquet"
    Dataset.from_list(rows, features=features).to_parquet(str(path))
    return path


def test_dataset_rows_keyed_by_image_id_streaming_and_workers_agree(saved_model_dir, scorer, tmp_path):
    data = _dataset_parquet(tmp_path)
    common = [
        "--dataset",
        data,
        "--model",
        saved_model_dir,
        "--comments-column",
        "comments",
        "--batch-size",
        2,
    ]
    common += ["--cache-dir", tmp_path / "cache"]
    outputs = {}
    for name, extra in {
        "plain": [],
        "streaming": ["--streaming", "--num-workers", "2"],
        "workers": ["--num-workers", "2"],
    }.items():
        outputs[name] = tmp_path / f"{name}.jsonl"
        assert _score(*common, "--output", outputs[name], *extra) == 1
    layout_rows = [json.loads(line) for line in outputs["plain"].read_text().splitlines()]
    assert [row["image_id"] for row in layout_rows] == [f"photo-{i}" for i in range(9)]
    assert [row["row"] for row in layout_rows] == list(range(9))
    assert [row["mode"] for row in layout_rows] == ["multimodal", "vision", "vision", "multimodal", None] + [
        "vision",
        "multimodal",
        "vision",
        "vision",
    ]
    assert "unreadable image" in layout_rows[4]["error"]
    expected = scorer(random_image(23), comments=["too blurry", "the horizon is tilted"])
    assert layout_rows[3]["score"] == pytest.approx(expected["score"], abs=1e-5)
    for name in ("streaming", "workers"):
        assert outputs[name].read_text() == outputs["plain"].read_text(), name
    # --resume on a dataset: keyed by image_id, nothing rated twice.
    assert _score(*common, "--output", outputs["plain"], "--resume") == 1
    assert outputs["plain"].read_text() == outputs["workers"].read_text()


def test_prepared_dataset_folder_needs_a_split(saved_model_dir, tmp_path, capsys):
    """A folder laid out as prepare-dataset writes it (data/<split>-XXXXX-of-YYYYY.parquet)."""
    data = _dataset_parquet(tmp_path)
    folder = tmp_path / "prepared"
    (folder / "data").mkdir(parents=True)
    table = pq.read_table(data)
    pq.write_table(table, folder / "data" / "train-00000-of-00001.parquet")
    pq.write_table(table.slice(0, 3), folder / "data" / "test-00000-of-00001.parquet")
    argv = ["--dataset", folder, "--model", saved_model_dir, "--cache-dir", tmp_path / "cache"]
    assert _score(*argv) == 2
    assert "choose one with --split" in capsys.readouterr().err
    assert _score(*argv, "--split", "test", "--format", "jsonl") == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["image_id"] for row in rows] == ["photo-0", "photo-1", "photo-2"]
    assert _score(*argv, "--split", "test", "--image-column", "picture") == 2
    assert "no column 'picture'" in capsys.readouterr().err
    assert _score(*argv, "--split", "validation") == 2
    assert "no split 'validation'" in capsys.readouterr().err


def test_stdout_formats_and_bfloat16(photos, saved_model_dir, scorer, capsys):
    files = [photos / "plain.jpg", photos / "with, comma.png"]
    assert _score(*files, "--model", saved_model_dir, "--format", "csv") == 0
    records = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["path"] for r in records] == list(map(str, files)) and len(
        json.loads(records[0]["distribution"])
    ) == 10
    assert _score(*files, "--model", saved_model_dir, "--format", "json", "--dtype", "bfloat16") == 0
    results = json.loads(capsys.readouterr().out)
    expected = scorer(str(files[0]))
    assert results[0]["score"] == pytest.approx(expected["score"], abs=5e-2)
    assert _score(*files, "--model", saved_model_dir) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["path", "score", "label", "mode"] and len(table) == 4


def test_default_threads_do_not_oversubscribe(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    monkeypatch.setattr(os, "getloadavg", lambda: (0.2, 0.0, 0.0))
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert default_threads(num_workers=0) == 4 and default_threads(num_workers=3) == 1
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "16")
    assert default_threads(num_workers=2) == 1
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "1")
    monkeypatch.setattr(os, "getloadavg", lambda: (5.6, 0.0, 0.0))  # six busy CPUs: two left
    assert default_threads(num_workers=0) == 2
    monkeypatch.setattr(os, "getloadavg", lambda: (12.0, 0.0, 0.0))
    assert default_threads(num_workers=0) == 1


def test_compile_option_compiles_the_model(photos, saved_model_dir, monkeypatch, capsys):
    compiled = []

    def fake_compile(model, **kwargs):
        compiled.append(kwargs)
        return model

    monkeypatch.setattr(torch, "compile", fake_compile)
    assert _score(photos / "plain.jpg", "--model", saved_model_dir, "--compile", "--format", "jsonl") == 0
    assert compiled == [{"dynamic": True}] and json.loads(capsys.readouterr().out)["mode"] == "vision"


def test_shards_cover_everything_once():
    items = list(range(11))
    shares = [shard(items, rank, 3) for rank in range(3)]
    assert sum(shares, []) == items and [len(s) for s in shares] == [4, 4, 3]


def test_fast_decode_matches_the_pipelines_fast_decode(saved_model_dir, scorer, tmp_path, capsys):
    path = tmp_path / "large.jpg"
    random_image(7, size=(700, 900)).resize((1800, 1400)).save(path, quality=90)
    assert _score(path, "--model", saved_model_dir, "--fast-decode", "--format", "jsonl") == 0
    fast = json.loads(capsys.readouterr().out)
    assert _score(path, "--model", saved_model_dir, "--format", "jsonl") == 0
    exact = json.loads(capsys.readouterr().out)
    assert fast["score"] == pytest.approx(scorer(str(path), fast_decode=True)["score"], abs=1e-6)
    assert exact["score"] == pytest.approx(scorer(str(path))["score"], abs=1e-6)
    assert fast["distribution"] != exact["distribution"]  # drafted: other pixels


def test_dataset_errors_are_one_line(photos, saved_model_dir, tmp_path, capsys):
    common = ["--model", saved_model_dir, "--cache-dir", tmp_path / "cache"]
    cases = [
        (["--dataset", tmp_path / "no" / "such"], "no such file or folder"),
        (["--dataset", "someone/not-in-the-cache"], "--dataset someone/not-in-the-cache: "),
        (["--dataset", tmp_path / "notes.txt"], "must be .parquet"),
        ([photos, "--dataset", "x"], "one of the two"),
        ([photos, "--split", "test"], "--split applies to --dataset only"),
    ]
    (tmp_path / "notes.txt").write_text("hello")
    for argv, message in cases:
        assert _score(*argv, *common) == 2
        err = capsys.readouterr().err
        assert err.startswith("score: ") and err.count("\n") == 1 and message in err, err


def test_integer_ids_keep_their_type_in_rows_that_fail_to_read(tmp_path):
    """A row that cannot be read at all is written with `record_keys`: its id must be the dataset's own value, as in
    the rows that were read, or an int64 id column would not merge into Parquet (pyarrow refuses a string there)."""
    from datasets import Dataset

    from aesformer_hf.scoring import DatasetInputs

    inputs = DatasetInputs(Dataset.from_dict({"image": [None, None], "image_id": [100, 101]}), "image")
    assert inputs.layout.id_type == "int64"
    assert inputs.record_keys(1) == inputs.record(1)[0] == {"image_id": 101, "row": 1}
    assert inputs.key(1) == "101"  # keys stay strings


def test_a_missing_folder_is_a_usage_error_before_the_model_loads(photos, tmp_path, capsys):
    typo = tmp_path / "photso"
    # A model that does not exist either: the inputs are checked first, so the message is about the folder.
    for name in (typo, f"{typo}/", tmp_path / "data.parquet"):
        assert _score(photos, name, "--model", tmp_path / "no-model") == 2
        err = capsys.readouterr().err
        assert err == f"score: {name}: no such file or folder.\n", err
    assert _score("--dataset", tmp_path / "nope.parquet", "--model", tmp_path / "no-model") == 2
    err = capsys.readouterr().err
    assert err == f"score: --dataset {tmp_path / 'nope.parquet'}: no such file or folder.\n", err


def test_a_missing_image_file_is_still_reported_and_skipped(photos, saved_model_dir, tmp_path, capsys):
    missing = tmp_path / "gone.jpg"
    output = tmp_path / "scores.jsonl"
    assert _score(photos / "plain.jpg", missing, "--model", saved_model_dir, "--output", output) == 1
    rows = _rows(output)
    assert [row["path"] for row in rows] == [str(photos / "plain.jpg"), str(missing)]
    assert rows[1]["error"] == "unreadable image: no such file" and "score" in rows[0]


def test_an_input_named_twice_is_rated_once_in_every_output(photos, saved_model_dir, tmp_path, capsys):
    one = photos / "plain.jpg"
    output = tmp_path / "scores.jsonl"
    assert _score(one, photos / "sub", one, "--model", saved_model_dir, "--output", output) == 0
    rows = _rows(output)
    expected = [str(one), *sorted(str(p) for p in (photos / "sub").iterdir())]
    assert [row["path"] for row in rows] == expected
    assert "1 input(s) named more than once" in capsys.readouterr().err
    assert _score(one, one, "--model", saved_model_dir, "--format", "jsonl") == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["path"] for row in printed] == [str(one)]
    assert printed[0]["score"] == pytest.approx(rows[0]["score"], abs=1e-5)


def test_comments_keys_that_name_no_image_are_reported(photos, saved_model_dir, tmp_path, capsys):
    comments = tmp_path / "comments.json"
    comments.write_text(json.dumps({"plain": ["sharp"], "plian.jpg": ["typo"], "with, comma.png": "ok"}))
    files = [photos / "plain.jpg", photos / "with, comma.png"]
    assert _score(*files, "--model", saved_model_dir, "--comments", comments, "--format", "jsonl") == 0
    captured = capsys.readouterr()
    assert [json.loads(line)["mode"] for line in captured.out.splitlines()] == ["multimodal", "multimodal"]
    assert "1 of 3 key(s) name no image to rate" in captured.err and "'plian.jpg'" in captured.err
    assert _score(files[0], "--model", saved_model_dir, "--comments", comments, "--format", "jsonl") == 0
    assert "2 of 3 key(s)" in capsys.readouterr().err


def test_the_table_stays_aligned_with_wide_and_combining_characters(saved_model_dir, tmp_path, capsys):
    from aesformer_hf.scoring_output import display_width

    assert (
        display_width("写真.png") == 8 and display_width("cafe\u0301.png") == 8 and display_width("ab") == 2
    )
    folder = tmp_path / "mixed"
    folder.mkdir()
    for seed, name in enumerate(["写真.png", "cafe\u0301.png", "plain.jpg", "ｆｕｌｌ.png"]):
        random_image(seed).save(folder / name)
    assert _score(folder, "--model", saved_model_dir) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = lines[2:]
    assert len(rows) == 4
    # Every row ends with the same columns ("vision"), so aligned rows take the same width on a terminal.
    assert len({display_width(line) for line in rows}) == 1, rows
    assert display_width(rows[0]) == display_width(lines[0]) - len("mode") + len("vision")
