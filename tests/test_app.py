"""`aesformer-hf app`: the comments box, rating equal to the pipeline's, one line without the extra, and the real
thing: the command serving on a free local port, photos rated through `gradio_client`, the page in headless
Chromium."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from PIL import Image
from transformers import pipeline

from aesformer_hf.cli import main as cli_main

from . import browser
from .conftest import random_image

REPO_ROOT = Path(__file__).resolve().parents[1]
STARTUP_SECONDS = 180


def _block(monkeypatch, *modules: str) -> None:
    for module in modules:
        for loaded in [name for name in sys.modules if name == module or name.startswith(module + ".")]:
            monkeypatch.delitem(sys.modules, loaded)
        monkeypatch.setitem(sys.modules, module, None)


@pytest.fixture(scope="module")
def scorer(saved_model_dir):
    return pipeline("image-aesthetics", model=str(saved_model_dir))


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("app-photos")
    for seed, name in enumerate(["beach.jpg", "forest.png", "city.jpg"]):
        random_image(seed + 20, size=(72 + 8 * seed, 96)).save(folder / name)
    (folder / "broken.jpg").write_bytes(b"not an image")
    return folder


# -- the library, without a server ------------------------------------------------------------------------------
def test_comments_box_lines_follow_the_photos_or_name_them():
    from aesformer_hf.app import parse_comments

    names = ["a.jpg", "b.jpg", "c.jpg"]
    assert parse_comments("", names) == [None, None, None]
    assert parse_comments("lovely | too dark\n\nsharp", names) == [["lovely", "too dark"], None, ["sharp"]]
    assert parse_comments("c.jpg: tilted\nb.jpg:  soft ", names) == [None, ["soft"], ["tilted"]]
    # A colon that is not after a photo's name is part of the comment; extra lines are ignored.
    assert parse_comments("note: nice\nx\ny\nz", names) == [["note: nice"], ["x"], ["y"]]


def test_photos_of_the_same_name_get_names_of_their_own(saved_model_dir, photos, tmp_path):
    from aesformer_hf.app import load_app_model, rate_photos

    (tmp_path / "other").mkdir()
    random_image(77).save(tmp_path / "other" / "beach.jpg")
    rows = rate_photos(
        load_app_model(str(saved_model_dir)),
        [str(photos / "beach.jpg"), str(tmp_path / "other" / "beach.jpg")],
    )
    assert sorted(row["name"] for row in rows) == ["beach.jpg", "beach.jpg (2)"]


def test_rating_equals_the_pipeline_and_ranks_best_first(saved_model_dir, scorer, photos):
    from aesformer_hf.app import load_app_model, rate_photos, table_rows

    app_model = load_app_model(str(saved_model_dir))
    paths = [str(photos / name) for name in ("beach.jpg", "forest.png", "broken.jpg", "city.jpg")]
    rows = rate_photos(app_model, paths, "forest.png: lovely sharp colours | the horizon is tilted")
    assert [row["rank"] for row in rows] == [1, 2, 3, None] and rows[-1]["name"] == "broken.jpg"
    assert rows[-1]["error"] == "not an image file PIL can read (unknown or corrupt format)"
    assert [r["score"] for r in rows[:3]] == sorted((r["score"] for r in rows[:3]), reverse=True)
    for row in rows[:3]:
        comments = ["lovely sharp colours", "the horizon is tilted"] if row["name"] == "forest.png" else None
        expected = scorer(row["path"], comments=comments)
        assert row["mode"] == expected["mode"] == ("multimodal" if comments else "vision")
        assert row["score"] == pytest.approx(expected["score"], abs=1e-5)
        assert row["distribution"] == pytest.approx(expected["distribution"], abs=1e-5)
    table = table_rows(rows)
    assert [line[1] for line in table] == [row["name"] for row in rows] and len(table[0][5].split()) == 10


def test_app_without_gradio_is_one_line_naming_the_extra(monkeypatch, capsys, tmp_path):
    _block(monkeypatch, "gradio")
    capsys.readouterr()
    assert cli_main(["app", "--model", str(tmp_path / "no-model")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("aesformer-hf app: ") and "gradio" in lines[0]
    assert lines[0].endswith("pip install 'aesformer-hf[app]'")


def test_app_with_a_missing_model_or_photo_is_one_line(capsys, tmp_path, saved_model_dir):
    pytest.importorskip("gradio", reason="the [app] extra (gradio) is not installed")
    for argv, expected in (
        (["app", "--model", str(tmp_path / "no-model"), "--port", "0"], "no-model"),
        (["app", str(tmp_path / "gone.jpg"), "--model", str(saved_model_dir)], "gone.jpg"),
    ):
        capsys.readouterr()
        assert cli_main(argv) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("app: ") and expected in lines[0], lines


# -- the command, serving ---------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def served_app(saved_model_dir, photos, tmp_path_factory):
    """`aesformer-hf app` in a subprocess on a free port of 127.0.0.1, with beach.jpg rated on load; its URL."""
    pytest.importorskip("gradio", reason="the [app] extra (gradio) is not installed")
    pytest.importorskip("gradio_client", reason="gradio_client (installed with gradio) is missing")
    scratch = tmp_path_factory.mktemp("app-server")
    port = _free_port()
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(scratch / "hf-home"),
        "GRADIO_TEMP_DIR": str(scratch / "gradio"),  # uploads land here, removed with the test's folder
        "MPLCONFIGDIR": str(scratch / "matplotlib"),
        "OMP_NUM_THREADS": "1",
        "CUDA_VISIBLE_DEVICES": "",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }
    command = [sys.executable, "-m", "aesformer_hf.cli", "app", str(photos / "beach.jpg")]
    command += ["--model", str(saved_model_dir), "--host", "127.0.0.1", "--port", str(port)]
    log = open(scratch / "server.log", "w+b")  # noqa: SIM115 - closed below
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=scratch)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                pytest.fail(f"the app did not start (exit {server.poll()}):\n{log.read().decode()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=30)
        log.close()


def test_served_app_rates_photos_as_the_pipeline_does(served_app, photos, scorer, tmp_path, monkeypatch):
    from gradio_client import Client, handle_file

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the client downloads through folders made there
    client = Client(served_app, verbose=False, download_files=str(tmp_path / "downloads"))
    assert set(client.view_api(print_info=False, return_format="dict")["named_endpoints"]) == {
        "/rate",
        "/attention",
    }
    uploads = [handle_file(str(photos / "forest.png")), handle_file(str(photos / "city.jpg"))]
    comments = "city.jpg: lovely sharp colours | the horizon is tilted"
    ranked_html, table, chooser, message = client.predict(uploads, comments, api_name="/rate")
    assert message.startswith("Rated 2 photo(s)")
    assert table["headers"] == ["rank", "photo", "score", "label", "mode", "distribution"]
    rows = {line[1]: line for line in table["data"]}
    assert set(rows) == {"forest.png", "city.jpg"}
    for name, comment_list in (("forest.png", None), ("city.jpg", comments.split(": ", 1)[1].split(" | "))):
        expected = scorer(str(photos / name), comments=comment_list)
        rank, _, score, label, mode, distribution = rows[name]
        assert score == pytest.approx(expected["score"], abs=1e-5)
        assert (label, mode) == (expected["label"], expected["mode"])
        assert [float(p) for p in distribution.split()] == pytest.approx(expected["distribution"], abs=0.006)
    assert [line[0] for line in table["data"]] == [1, 2] and table["data"][0][2] >= table["data"][1][2]
    assert 'data-name="forest.png"' in ranked_html and 'data-name="city.jpg"' in ranked_html
    assert chooser["value"] == table["data"][0][1]

    heatmap, details = client.predict("city.jpg", "rollout", api_name="/attention")
    with Image.open(heatmap) as overlay:
        assert overlay.size == Image.open(photos / "city.jpg").size
    assert "MIAA" in details and "Most attended comment words" in details


def test_served_page_in_a_browser(served_app, tmp_path):
    """The page as a person sees it: built by gradio's scripts from the server, the photo given on the command line
    rated on opening and its heatmap drawn; nothing requested from anywhere but the app."""
    browser.require_chromium()
    with browser.DevTools() as chromium:
        dom = chromium.open(
            served_app,
            until="document.body.innerText.includes('Rated 1 photo') && !!document.querySelector('#heatmap img')",
        )
        chromium.screenshot(tmp_path / "app.png")
        requested = list(chromium.requested)
    assert "<title>AesFormer: rate your photos</title>" in dom
    for component in ("photos", "comments", "rate", "ranked", "scores", "choice", "heatmap"):
        assert f'id="{component}"' in dom, component
    assert "Where the model looks" in dom and 'data-name="beach.jpg"' in dom
    assert requested and all(url.startswith((served_app, "data:", "blob:")) for url in requested), requested
    with Image.open(tmp_path / "app.png") as picture:
        assert picture.size == (1280, 900)
