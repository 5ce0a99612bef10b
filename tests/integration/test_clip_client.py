"""clip-retrieval's own ``ClipClient`` against a real ``mmsearch serve`` on a free local port.

The package is installed with ``--no-deps`` (its back end's dependencies are heavy); only
its ``clip_client.py`` module is loaded, by file path, since the package's ``__init__``
imports the back end.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mmsearch import Engine
from tests.support.served import sample_library, serving

pytestmark = [pytest.mark.subprocess, pytest.mark.slow]


def _clip_client() -> Any:
    spec = importlib.util.find_spec("clip_retrieval")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("needs clip-retrieval: pip install --no-deps clip-retrieval")
    path = Path(next(iter(spec.submodule_search_locations))) / "clip_client.py"
    loader = importlib.util.spec_from_file_location("clip_client_only", path)
    assert loader is not None and loader.loader is not None
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, Path]]:
    folder = tmp_path_factory.mktemp("clip")
    lib = sample_library(folder / "lib")
    with Engine.open(folder / "photos", model="hash") as engine:
        engine.index([lib])
    with serving(folder / "photos") as url:
        yield url, lib, folder / "photos"


def test_clip_client_text_image_and_vector(served: tuple[str, Path, Path]) -> None:
    url, lib, index = served
    clip = _clip_client()
    client = clip.ClipClient(url=url + "knn-service", indice_name="photos", num_images=5)
    by_text = client.query(text="a cat")
    assert 1 <= len(by_text) <= 5
    for hit in by_text:
        assert {"id", "similarity", "url", "caption", "image_path"} <= set(hit)
        assert hit["url"].startswith(url + "api/assets/")
        assert Path(hit["image_path"]).suffix in (".png", ".jpg", ".webm")
    by_image = client.query(image=str(lib / "photos" / "coffee.png"))
    assert by_image[0]["image_path"] == str(lib / "photos" / "coffee.png")
    # the hit's url serves the file itself
    import requests

    assert (
        requests.get(by_image[0]["url"], timeout=10).content
        == (lib / "photos" / "coffee.png").read_bytes()
    )
    with Engine.open(index, create=False) as engine:
        vector = engine.encode_query(image=lib / "photos" / "china.jpg").tolist()
    by_vector = client.query(embedding_input=vector)
    assert by_vector[0]["image_path"].endswith("china.jpg")
    texts = clip.ClipClient(
        url=url + "knn-service", indice_name="photos", modality=clip.Modality.TEXT
    ).query(text="tomatoes in the garden")
    assert {Path(h["image_path"]).name for h in texts} == {"garden.md", "fox.txt"}
    assert requests.get(url + "indices-list", timeout=10).json() == ["photos"]


def test_clip_client_errors_are_400s(served: tuple[str, Path, Path]) -> None:
    url, _lib, _index = served
    clip = _clip_client()
    wrong = clip.ClipClient(url=url + "knn-service", indice_name="laion5B")
    assert "unknown indice_name" in wrong.query(text="a cat")["error"]
    # an image URL is not fetched unless the server allows it
    fetching = clip.ClipClient(url=url + "knn-service", indice_name="photos")
    assert "--allow-url-fetch" in fetching.query(image="http://127.0.0.1:9/cat.jpg")["error"]


def test_serve_prints_its_url_and_exits_0_on_ctrl_c(served: tuple[str, Path, Path]) -> None:
    import signal
    import subprocess
    import sys

    import requests

    from tests.support.served import env

    _url, _lib, index = served
    cmd = [sys.executable, "-m", "mmsearch", "serve", "--index", str(index), "--port", "0"]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env()
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith(f"mmsearch: serving {index} at http://127.0.0.1:")
    url = line.split(" at ")[1].split()[0]
    assert requests.get(url + "api/health", timeout=10).json() == {"status": "ok"}
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "stopped" in out and "Traceback" not in err
