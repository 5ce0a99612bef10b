"""``mmsearch serve``: every endpoint, status and error of the API, through FastAPI's client.

One hash-embedder index of real photos, notes and a generated video is built per module;
tests that write (tags, re-indexing, symlinks) build their own.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from PIL import Image

from mmsearch import Engine
from mmsearch.cli import cli
from mmsearch.server import ServerConfig, create_app
from mmsearch.server.results import seconds
from tests.support.deps import need
from tests.support.served import env, sample_library

pytestmark = pytest.mark.subprocess
BASE = "http://127.0.0.1:8765"


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sample_library(tmp_path_factory.mktemp("served") / "lib")


@pytest.fixture(scope="module")
def index(sample: Path) -> Path:
    folder = sample.parent / "idx"
    with Engine.open(folder, model="hash") as engine:
        report = engine.index([sample])
        assert report.added == 9 and not report.skipped
    return folder


@pytest.fixture(scope="module")
def engine(index: Path) -> Iterator[Engine]:
    with Engine.open(index, create=False) as e:
        yield e


@pytest.fixture(scope="module")
def client(engine: Engine) -> TestClient:
    return TestClient(create_app(engine, ServerConfig()), base_url=BASE)


def _ids(engine: Engine) -> dict[str, int]:
    """Asset id by file name."""
    out = {}
    for root in engine.roots():
        for dirpath, _dirs, files in os.walk(root["path"]):
            for name in files:
                out[name] = engine.show(os.path.join(dirpath, name))["asset_id"]
    return out


def _error(response: Any, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and "\n" not in body["error"] and "Traceback" not in body["error"]
    return str(body["error"])


# -- reading ---------------------------------------------------------------------


def test_health_and_info(client: TestClient) -> None:
    assert client.get("/api/health").json() == {"status": "ok"}
    info = client.get("/api/info").json()
    assert info["assets"] == 9 and info["by_modality"] == {"image": 6, "text": 2, "video": 1}
    assert info["server"]["allow_writes"] is False and info["server"]["token"] is False
    schema = client.get("/openapi.json").json()
    assert {"/api/search", "/api/assets/{asset_id}/file", "/knn-service"} <= set(schema["paths"])
    assert client.get("/docs").status_code == 200


def test_search_get_is_the_cli_json_with_urls(client: TestClient, index: Path) -> None:
    body = client.get("/api/search", params={"q": "a cat", "all": "true", "k": 20}).json()
    cli_out = CliRunner().invoke(
        cli, ["search", "a cat", "--index", str(index), "--all", "-k", "20", "--json"]
    )
    expected = json.loads(cli_out.output)
    assert [h["path"] for h in body["results"]] == [h["path"] for h in expected["results"]]
    assert body["total"] == expected["total"] == 9 and body["fusion"] == "vector"
    for hit in body["results"]:
        base = f"/api/assets/{hit['asset_id']}"
        if hit["modality"] == "image":
            assert (hit["thumbnail_url"], hit["file_url"]) == (f"{base}/thumbnail", f"{base}/file")
        elif hit["modality"] == "text":
            assert hit["thumbnail_url"] is None and hit["snippet"]
        else:
            assert hit["file_url"] == f"{base}/file#t={seconds(hit['start'])}"
            assert hit["thumbnail_url"] == f"{base}/thumbnail?t={seconds(hit['best_time'])}"
    assert (seconds(3.0), seconds(12.5), seconds(3725.125), seconds(1e6)) == (
        "3",
        "12.5",
        "3725.125",
        "1000000",
    )


def test_paging_filters_and_sort(client: TestClient, sample: Path) -> None:
    every = client.get("/api/search", params={"q": "photo", "all": 1, "k": 9}).json()["results"]
    page2 = client.get("/api/search", params={"q": "photo", "all": 1, "k": 3, "offset": 3}).json()
    assert [h["path"] for h in page2["results"]] == [h["path"] for h in every[3:6]]
    only = client.get("/api/search", params=[("q", "x"), ("all", 1), ("type", "text")]).json()
    assert {h["modality"] for h in only["results"]} == {"text"} and only["total"] == 2
    under = client.get(
        "/api/search", params={"q": "x", "all": 1, "path": str(sample / "photos")}
    ).json()
    assert under["total"] == 6
    newest = client.get("/api/search", params={"q": "x", "all": 1, "sort": "time"}).json()
    times = [h["time"] for h in newest["results"]]
    assert times == sorted(times, reverse=True)
    none = client.get("/api/search", params={"q": "x", "after": "2999-01-01"}).json()
    assert none == {"results": [], "total": 0, "fusion": "vector"}


def test_search_by_colour_and_colour_words(client: TestClient) -> None:
    got = client.get("/api/search", params={"color": "orange", "type": "image", "all": "true"})
    hits = got.json()["results"]
    assert got.status_code == 200 and hits and all(h["modality"] == "image" for h in hits)
    assert [p["part"] for p in hits[0]["explain"]["parts"]] == ["color:orange"]
    assert hits[0]["path"].endswith(("coffee.png", "chelsea.png"))  # the orange pictures
    words = client.get("/api/search", params={"q": "a red fox"}).json()["results"][0]
    assert "color:red (from 'a red fox')" in [p["part"] for p in words["explain"]["parts"]]
    off = client.get("/api/search", params={"q": "a red fox", "color_words": "false"})
    assert [p["part"] for p in off.json()["results"][0]["explain"]["parts"]] == ["query"]
    assert "unknown colour 'reddish'" in _error(
        client.get("/api/search", params={"color": "reddish"}), 400
    )


def test_search_get_errors_are_one_line_4xx(client: TestClient) -> None:
    assert "give q" in _error(client.get("/api/search"), 400)
    assert "type" in _error(client.get("/api/search", params={"q": "x", "type": "sound"}), 400)
    assert "k" in _error(client.get("/api/search", params={"q": "x", "k": 0}), 400)
    _error(client.get("/api/search", params={"q": "x", "k": "many"}), 400)
    _error(client.get("/api/search", params={"q": "x", "offset": -1}), 400)
    assert "key=value" in _error(client.get("/api/search", params={"q": "x", "where": "k"}), 400)
    assert "ISO date" in _error(client.get("/api/search", params={"q": "x", "after": "soon"}), 400)
    assert "not an indexed file" in _error(client.get("/api/search", params={"more": 99999}), 400)
    _error(client.get("/api/search", params={"q": "x", "sort": "size"}), 400)


def test_more_like_and_like_by_asset_id(client: TestClient, engine: Engine) -> None:
    ids = _ids(engine)
    like = client.get("/api/search", params={"like": ids["chelsea.png"], "k": 3}).json()
    assert like["results"][0]["path"].endswith("chelsea.png")
    params = {"q": "a photo", "all": 1, "k": 9, "type": "image"}
    more = client.get("/api/search", params={**params, "more": ids["rocket.jpg"]}).json()
    less = client.get("/api/search", params={**params, "less": ids["rocket.jpg"]}).json()
    assert more["results"][0]["asset_id"] == ids["rocket.jpg"]
    assert less["results"][0]["asset_id"] != ids["rocket.jpg"]


def test_search_post_json_is_query_to_dict(client: TestClient) -> None:
    from mmsearch.search.query import Query

    query = Query().text("a cat").where(modality="image").options(cutoff=False, limit=4)
    body = client.post("/api/search", json=query.to_dict()).json()
    get = client.get("/api/search", params={"q": "a cat", "type": "image", "all": 1, "k": 4}).json()
    assert body == get and len(body["results"]) == 4


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"parts": [{"kind": "text", "value": "x"}], "limit": NaN}', "not valid JSON"),
        (b'{"parts": [{"kind": "text", "value": "x"}], "min_score": 1e999}', "not valid JSON"),
        (b'{"parts": [{"kind": "image", "value": "/etc/passwd"}]}', "can't name a file"),
        (b'{"parts": [{"kind": "video", "value": "../../x.mp4"}]}', "can't name a file"),
        (b'{"parts": [{"kind": "asset", "value": "/etc/passwd"}]}', "asset id"),
        (b'{"parts": [{"kind": "text", "value": 5}]}', "bad query"),
        (b'{"parts": [{"kind": "text", "value": "x"}], "fusion": "best"}', "bad query"),
        (b'{"parts": [{"kind": "text", "value": "x"}], "colour": 1}', "unknown query field"),
        (b'{"parts": [], "filters": {"colour": 1}}', "unknown query field"),
        (b'{"parts": [{"kind": "text", "value": "x", "w": 1}]}', "unknown query field"),
        (b'{"parts": []}', "positive part"),
        (b'{"parts": [{"kind": "text", "value": "x"}], "limit": 100000}', "limit"),
        (b'{"parts": [{"kind": "text", "value": "x"}], "filters": {"modalities": 5}}', "bad"),
    ],
)
def test_search_post_refuses_bad_queries(client: TestClient, payload: bytes, message: str) -> None:
    response = client.post(
        "/api/search", content=payload, headers={"content-type": "application/json"}
    )
    assert message in _error(response, 400)


def _names(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return sorted({os.path.basename(h["path"]) for h in response.json()["results"]})


def _between(values: list[float]) -> float:
    """A threshold between the two middle distinct values, so no file sits on it."""
    distinct = sorted(set(values))
    middle = len(distinct) // 2
    return (distinct[middle - 1] + distinct[middle]) / 2


def test_every_filter_is_a_search_parameter(client: TestClient) -> None:
    from mmsearch.search.query import Filters
    from mmsearch.server.query_params import param_name

    schema = client.get("/openapi.json").json()["paths"]["/api/search"]
    for method in ("get", "post"):
        names = {p["name"] for p in schema[method]["parameters"]}
        for fld in dataclasses.fields(Filters):
            assert param_name(fld) in names, (method, fld.name)
    assert {"glob", "min_size", "max_width", "min_duration", "taken_after"} <= names


def test_glob_size_width_and_duration_filters_over_http(client: TestClient, engine: Engine) -> None:
    facts = {name: engine.show_asset(i) for name, i in _ids(engine).items()}
    size = int(_between([f["size"] for f in facts.values()]))
    width = int(_between([f["width"] for f in facts.values() if f.get("width")]))
    cases = [
        ({"glob": "*.png"}, {n for n in facts if n.endswith(".png")}),
        ({"min_size": size}, {n for n, f in facts.items() if f["size"] >= size}),
        ({"max_size": size}, {n for n, f in facts.items() if f["size"] <= size}),
        ({"min_width": width}, {n for n, f in facts.items() if (f.get("width") or 0) >= width}),
        ({"max_width": width}, {n for n, f in facts.items() if 0 < (f.get("width") or 0) <= width}),
        ({"min_duration": 1.0}, {"scenes.webm"}),
        ({"max_duration": 1.0}, set()),
    ]
    for params, expected in cases:
        assert expected or params == {"max_duration": 1.0}
        got = client.get("/api/search", params={"q": "a photo", "all": 1, "k": 50, **params})
        assert set(_names(got)) == expected, params
        name, value = next(iter(params.items()))
        field = {"glob": "globs"}.get(name, name)
        filters = {field: [value] if field == "globs" else value}
        body = {"parts": [{"kind": "text", "value": "a photo"}], "filters": filters}
        posted = client.post("/api/search", json={**body, "cutoff": False, "limit": 50})
        assert set(_names(posted)) == expected, params


def test_an_upload_takes_the_query_from_the_url_as_the_page_sends_it(
    client: TestClient, sample: Path
) -> None:
    photo = {"image": ("cat.png", (sample / "photos" / "chelsea.png").read_bytes())}
    params = {"all": 1, "k": 50, "glob": "*.jpg", "type": "image", "taken_after": "1900-01-01"}
    got = _names(client.post("/api/search", params={**params, "taken_after": ""}, files=photo))
    assert got and all(n.endswith(".jpg") for n in got)
    assert _names(client.post("/api/search", params=params, files=photo)) == []  # no EXIF times
    bad_colour = client.post("/api/search", params={"color": "reddish", "k": 3}, files=photo)
    assert "reddish" in _error(bad_colour, 400)
    both = client.post("/api/search", params={"k": 3}, files=photo, data={"query": "{}"})
    assert "not both" in _error(both, 400)
    body = {"parts": [{"kind": "text", "value": "x"}]}
    assert "not both" in _error(client.post("/api/search", params={"k": 3}, json=body), 400)


def test_upload_an_image_as_the_query(client: TestClient, sample: Path) -> None:
    photo = (sample / "photos" / "chelsea.png").read_bytes()
    files = {"image": ("cat.png", photo, "image/png")}
    body = client.post("/api/search", files=files).json()
    assert body["results"][0]["path"].endswith("chelsea.png")
    with_json = client.post(
        "/api/search",
        files=files,
        data={"query": json.dumps({"filters": {"modalities": ["video"]}, "cutoff": False})},
    ).json()
    assert {h["modality"] for h in with_json["results"]} == {"video"}, with_json
    assert with_json["results"][0]["start"] >= 2.0  # the cat half of the clip


def test_upload_errors(client: TestClient, tmp_path: Path) -> None:
    not_image = client.post("/api/search", files={"image": ("x.png", b"hello", "image/png")})
    message = _error(not_image, 400)
    assert "uploaded file" in message and "mmsearch-upload" not in message
    assert "unknown form field" in _error(
        client.post("/api/search", files={"other": ("x.png", b"x", "image/png")}), 400
    )
    # a decompression bomb: a small PNG that would decode to 1.6 billion pixels
    bomb = io.BytesIO()
    Image.new("1", (40_000, 40_000)).save(bomb, "PNG")
    assert len(bomb.getvalue()) < 1_000_000
    message = _error(client.post("/api/search", files={"image": ("b.png", bomb.getvalue())}), 400)
    assert "pixels" in message or "bomb" in message
    assert "positive part" in _error(
        client.post("/api/search", files={"not_image": ("x.png", b"x")}), 400
    )


def test_uploads_take_the_extensions_mmsearch_reads(client: TestClient, sample: Path) -> None:
    from mmsearch.media.formats import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS
    from mmsearch.server.uploads import suffix_of

    photo = (sample / "photos" / "rocket.jpg").read_bytes()
    jpe = client.post("/api/search", files={"image": ("rocket.JPE", photo)})
    assert "rocket.jpg" in _names(jpe)
    assert "rocket.jpg" in _names(client.post("/api/search", files={"image": ("r.avif", photo)}))
    assert ".jxl" in _error(client.post("/api/search", files={"image": ("r.jxl", photo)}), 400)
    assert ".mp4" in _error(client.post("/api/search", files={"image": ("r.mp4", photo)}), 400)
    assert ".png" in _error(client.post("/api/search", files={"video": ("v.png", photo)}), 400)
    assert all(suffix_of(f"x{s.upper()}", "image") == s for s in IMAGE_EXTENSIONS)
    assert all(suffix_of(f"x{s}", "video") == s for s in VIDEO_EXTENSIONS)
    assert suffix_of("pasted", "image") == ".jpg" and suffix_of("clip", "video") == ""


def test_server_defaults_are_the_settings_table_s() -> None:
    from mmsearch.settings import setting

    config = ServerConfig()
    for fld in dataclasses.fields(ServerConfig):
        assert getattr(config, fld.name) == setting(fld.name).default, fld.name


def test_bodies_over_the_limit_are_refused_before_being_read(engine: Engine) -> None:
    small = TestClient(create_app(engine, ServerConfig(max_upload_mb=0.01)), base_url=BASE)
    big = b"x" * 20_000
    message = _error(small.post("/api/search", files={"image": ("x.png", big)}), 413)
    assert "0.01 MB" in message

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        for _ in range(10):
            yield b"y" * 4_000

    _error(small.post("/knn-service", content=chunks()), 413)
    assert small.post("/knn-service", content=b'{"text": "cat"}').status_code == 200


def test_assets_facts_thumbnails_and_files(
    client: TestClient, engine: Engine, sample: Path
) -> None:
    ids = _ids(engine)
    facts = client.get(f"/api/assets/{ids['coffee.png']}").json()
    assert facts["path"] == str(sample / "photos" / "coffee.png") and facts["modality"] == "image"
    assert facts == {**engine.show(facts["path"]), "file_url": facts["file_url"],
                     "thumbnail_url": facts["thumbnail_url"]}  # fmt: skip
    thumb = client.get(facts["thumbnail_url"])
    assert thumb.headers["content-type"] == "image/jpeg"
    assert max(Image.open(io.BytesIO(thumb.content)).size) <= 640
    raw = client.get(facts["file_url"])
    assert raw.content == (sample / "photos" / "coffee.png").read_bytes()
    assert raw.headers["content-type"] == "image/png"
    # a video: frames at a time, and Range requests for seeking
    video = ids["scenes.webm"]
    early, late = (client.get(f"/api/assets/{video}/thumbnail", params={"t": t}) for t in (1, 4))
    assert early.status_code == late.status_code == 200 and early.content != late.content
    data = (sample / "videos" / "scenes.webm").read_bytes()
    part = client.get(f"/api/assets/{video}/file", headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == data[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(data)}"
    assert part.headers["content-type"] == "video/webm"
    # a text file is served as plain text in a sandbox, and has no thumbnail
    note = client.get(f"/api/assets/{ids['fox.txt']}/file")
    assert note.headers["content-type"].startswith("text/plain")
    assert "sandbox" in note.headers["content-security-policy"]
    assert "no thumbnail" in _error(client.get(f"/api/assets/{ids['fox.txt']}/thumbnail"), 400)


def test_asset_errors(client: TestClient) -> None:
    for url in ("/api/assets/99999", "/api/assets/99999/file", "/api/assets/0/thumbnail"):
        assert "asset id" in _error(client.get(url), 404)
    _error(client.get("/api/assets/-1/file"), 404)
    _error(client.get("/api/assets/abc"), 400)
    _error(client.get("/api/assets/1/thumbnail", params={"t": -2}), 400)
    _error(client.get("/api/assets/1/thumbnail", params={"t": "nan"}), 400)
    _error(client.get("/nowhere"), 404)


@pytest.mark.parametrize(
    "url",
    [
        "/api/assets/../../../../etc/passwd",
        "/api/assets/%2e%2e%2f%2e%2e%2fetc%2fpasswd/file",
        "/api/assets/..%2F..%2Fetc%2Fpasswd/file",
        "/api/assets//etc/passwd/file",
        "/api/assets/%2Fetc%2Fpasswd/file",
        "/api/assets/1%2F..%2F..%2Fetc%2Fpasswd/file",
        "/static/..%2F..%2Fapp.py",
        "/static/../app.py",
        "/static/%2e%2e/app.py",
        "/static/api.py",
        "/static/%2Fetc%2Fpasswd",
        "/etc/passwd",
    ],
)
def test_no_path_from_a_request_reaches_the_filesystem(client: TestClient, url: str) -> None:
    response = client.get(url)
    assert response.status_code in (400, 404), url
    assert b"root:" not in response.content and b"import" not in response.content
    assert set(response.json()) == {"error"}


def test_a_symlink_planted_inside_a_root_is_not_followed_out(tmp_path: Path) -> None:
    lib, outside = tmp_path / "lib", tmp_path / "outside"
    lib.mkdir()
    outside.mkdir()
    Image.new("RGB", (64, 64), (200, 10, 10)).save(lib / "victim.png")
    (outside / "secret.txt").write_text("the secret", encoding="utf-8")
    with Engine.open(tmp_path / "idx", model="hash") as engine:
        engine.index([lib])
        asset = engine.show(str(lib / "victim.png"))["asset_id"]
        client = TestClient(create_app(engine), base_url=BASE)
        assert client.get(f"/api/assets/{asset}/file").status_code == 200
        (lib / "victim.png").unlink()
        (lib / "victim.png").symlink_to(outside / "secret.txt")
        for url in (f"/api/assets/{asset}/file", f"/api/assets/{asset}/thumbnail"):
            response = client.get(url)
            assert "outside its library folder" in _error(response, 404)
            assert b"the secret" not in response.content
        # a folder inside the root replaced by a link out of it
        (lib / "sub").mkdir()
        Image.new("RGB", (64, 64)).save(lib / "sub" / "inner.png")
        engine.index([lib])
        inner = engine.show(str(lib / "sub" / "inner.png"))["asset_id"]
        shutil.rmtree(lib / "sub")
        (outside / "inner.png").write_bytes(b"not yours")
        (lib / "sub").symlink_to(outside)
        assert b"not yours" not in client.get(f"/api/assets/{inner}/file").content
        _error(client.get(f"/api/assets/{inner}/file"), 404)


# -- who may ask -----------------------------------------------------------------


def test_token_header_cookie_or_query(engine: Engine) -> None:
    app = create_app(engine, ServerConfig(token="s3cret"))
    anonymous = TestClient(app, base_url=BASE)
    assert "token" in _error(anonymous.get("/api/health"), 401)
    assert anonymous.get("/api/health").headers["www-authenticate"] == "Bearer"
    _error(anonymous.get("/"), 401)
    _error(anonymous.get("/api/health", headers={"Authorization": "Bearer wrong"}), 401)
    _error(anonymous.get("/api/health", headers={"Authorization": "Basic s3cret"}), 401)
    ok = anonymous.get("/api/health", headers={"Authorization": "Bearer s3cret"})
    assert ok.json() == {"status": "ok"}
    assert anonymous.get("/api/health", params={"token": "s3cret"}).status_code == 200
    # the page's way: /?token=T once sets an HttpOnly cookie and drops the token from the URL
    browser = TestClient(app, base_url=BASE)
    first = browser.get("/", params={"token": "s3cret", "q": "a cat"}, follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"] == "/?q=a+cat"
    cookie = first.headers["set-cookie"]
    assert "mmsearch_token=s3cret" in cookie and "HttpOnly" in cookie
    assert "samesite=strict" in cookie.lower()
    assert browser.get("/api/info").status_code == 200
    assert browser.get("/").headers["content-type"].startswith("text/html")


def test_loopback_server_answers_only_to_loopback_host_names(engine: Engine) -> None:
    app = create_app(engine)
    for host in ("127.0.0.1:8765", "localhost:8765", "[::1]:8765", "localhost"):
        assert TestClient(app, base_url=f"http://{host}").get("/api/health").status_code == 200
    rebound = TestClient(app, base_url="http://attacker.example:8765")
    assert "localhost" in _error(rebound.get("/api/health"), 421)
    # with a token the server may sit behind any name
    token = create_app(engine, ServerConfig(token="t"))
    far = TestClient(token, base_url="http://search.example")
    assert far.get("/api/health", headers={"Authorization": "Bearer t"}).status_code == 200


def test_serve_refuses_a_public_host_without_a_token(index: Path) -> None:
    result = CliRunner().invoke(cli, ["serve", "--index", str(index), "--host", "0.0.0.0"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "--token" in lines[0] and "MMSEARCH_TOKEN" in lines[0]
    bad_port = CliRunner().invoke(cli, ["serve", "--index", str(index), "--port", "70000"])
    assert bad_port.exit_code == 2


def test_unexpected_errors_are_500_json_without_traceback(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = TestClient(create_app(engine), base_url=BASE, raise_server_exceptions=False)

    def broken() -> None:
        raise RuntimeError("disk on fire\n  at line 3")

    monkeypatch.setattr(engine, "info", broken)
    message = _error(client.get("/api/info"), 500)
    assert "RuntimeError" in message and "disk on fire" not in message


# -- writing ---------------------------------------------------------------------


@pytest.fixture
def writable(tmp_path: Path) -> Iterator[tuple[TestClient, Engine, Path]]:
    from tests.support.media import COLOURS, solid

    lib = tmp_path / "lib"
    lib.mkdir()
    for i, (name, colour) in enumerate(COLOURS.items()):
        solid(colour, seed=i).save(lib / f"{name}.jpg")
    with Engine.open(tmp_path / "idx", model="hash") as engine:
        engine.index([lib])
        app = create_app(engine, ServerConfig(allow_writes=True))
        yield TestClient(app, base_url=BASE), engine, lib


def test_writes_need_allow_writes(client: TestClient) -> None:
    assert "--allow-writes" in _error(client.post("/api/tags", json={"ids": [1], "set": {}}), 403)
    assert "--allow-writes" in _error(client.post("/api/index"), 403)
    assert client.get("/api/index").json() == {"state": "idle"}


def test_tags_by_asset_id(writable: tuple[TestClient, Engine, Path]) -> None:
    client, engine, lib = writable
    red = engine.show(str(lib / "red.jpg"))["asset_id"]
    body = {"ids": [red], "set": {"trip": "rome"}}
    assert client.post("/api/tags", json=body).json() == {"tagged": 1}
    found = client.get("/api/search", params={"q": "x", "all": 1, "where": "trip=rome"}).json()
    assert [h["asset_id"] for h in found["results"]] == [red]
    assert client.get(f"/api/assets/{red}").json()["tags"] == {"trip": "rome"}
    assert client.post("/api/tags", json={"ids": [red], "remove": ["trip"]}).json()["tagged"] == 1
    assert client.get(f"/api/assets/{red}").json()["tags"] == {}
    _error(client.post("/api/tags", json={"ids": [99999], "set": {"a": "b"}}), 404)
    _error(client.post("/api/tags", json={"ids": [red]}), 400)
    _error(client.post("/api/tags", json={"ids": [], "set": {"a": "b"}}), 400)
    _error(client.post("/api/tags", json={"ids": ["x"], "set": {"a": "b"}}), 400)
    _error(client.post("/api/tags", content=b"nope"), 400)


def test_background_reindex_of_the_roots(writable: tuple[TestClient, Engine, Path]) -> None:
    client, _engine, lib = writable
    from tests.support.media import solid

    solid((250, 250, 20), seed=9).save(lib / "yellow.jpg")
    started = client.post("/api/index")
    assert started.status_code == 202 and started.json()["state"] == "running"
    # one run at a time: the run opens an engine and starts workers, far longer than this
    assert "already going" in _error(client.post("/api/index"), 409)
    deadline = time.monotonic() + 60
    while (state := client.get("/api/index").json())["state"] == "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert state["state"] == "done" and state["report"]["added"] == 1, state
    assert state["roots"] == [str(lib)]
    found = client.get("/api/search", params={"q": "x", "all": 1}).json()
    assert any(h["path"].endswith("yellow.jpg") for h in found["results"])


# -- concurrency, and files indexed by another process ------------------------------


def test_concurrent_searches_see_another_process_index_without_restart(tmp_path: Path) -> None:
    from tests.support.media import COLOURS, solid

    lib, extra = tmp_path / "lib", tmp_path / "extra"
    lib.mkdir()
    extra.mkdir()
    for i, (name, colour) in enumerate(COLOURS.items()):
        solid(colour, seed=i).save(lib / f"{name}.jpg")
    (extra / "otter.txt").write_text("A sea otter floats on its back.", encoding="utf-8")
    with Engine.open(tmp_path / "idx", model="hash") as engine:
        engine.index([lib])
        client = TestClient(create_app(engine), base_url=BASE)
        assert client.get("/api/search", params={"q": "otter", "all": 1}).json()["total"] == 3
        failures: list[str] = []
        stop = threading.Event()

        def searching() -> None:
            while not stop.is_set():
                r = client.get("/api/search", params={"q": "sea otter", "all": 1})
                if r.status_code != 200 or r.json()["total"] not in (3, 4):
                    failures.append(r.text)

        threads = [threading.Thread(target=searching) for _ in range(4)]
        for t in threads:
            t.start()
        try:
            cmd = [sys.executable, "-m", "mmsearch", "index", str(extra), "--index"]
            done = subprocess.run(
                [*cmd, str(tmp_path / "idx")], env=env(), capture_output=True, text=True
            )
            assert done.returncode == 0, done.stderr
        finally:
            stop.set()
            for t in threads:
                t.join()
        assert failures == []
        best = client.get("/api/search", params={"q": "sea otter", "all": 1}).json()
        assert best["total"] == 4 and best["results"][0]["path"].endswith("otter.txt")
        assert engine.vectors.count == engine.meta.segment_stats()[0]


# -- clip-retrieval's endpoints ----------------------------------------------------


def test_clip_indices_list_and_cors(client: TestClient, index: Path) -> None:
    response = client.get("/indices-list")
    assert response.json() == [index.name]
    assert response.headers["access-control-allow-origin"] == "*"
    preflight = client.options(
        "/knn-service",
        headers={"Origin": "http://front.example", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 204 and preflight.headers["access-control-allow-origin"]
    assert "access-control-allow-origin" not in client.get("/api/health").headers


def _clip_body(**fields: Any) -> bytes:
    """All 15 keys, as clip-retrieval's ClipClient sends them (many null), no Content-Type."""
    body: dict[str, Any] = {
        "text": None, "image": None, "image_url": None, "embedding_input": None,
        "deduplicate": True, "use_safety_model": True, "use_violence_detector": True,
        "indice_name": None, "use_mclip": False, "aesthetic_score": 9,
        "aesthetic_weight": 0.5, "modality": "image", "num_images": 40, "num_result_ids": 40,
    }  # fmt: skip
    body.update(fields)
    return json.dumps(body).encode()


def test_clip_knn_service(client: TestClient, engine: Engine, sample: Path, index: Path) -> None:
    ids = _ids(engine)
    hits = client.post("/knn-service", content=_clip_body(text="a cat")).json()
    assert {h["id"] for h in hits} == {v for k, v in ids.items() if not k.endswith((".txt", ".md"))}
    assert len({h["id"] for h in hits}) == len(hits)  # a video once, as clip_back's ids
    first = hits[0]
    assert set(first) == {"id", "similarity", "url", "caption", "image_path"}
    assert first["url"] == f"{BASE}/api/assets/{first['id']}/file" or "#t=" in first["url"]
    texts = client.post("/knn-service", content=_clip_body(text="fox", modality="text")).json()
    assert texts[0]["caption"].startswith("The quick red fox") and len(texts) == 2
    # image (base64 of the file's bytes) when text is empty; text wins when both are given
    photo = base64.b64encode((sample / "photos" / "chelsea.png").read_bytes()).decode()
    by_image = client.post("/knn-service", content=_clip_body(text="", image=photo)).json()
    assert by_image[0]["image_path"].endswith("chelsea.png")
    both = client.post("/knn-service", content=_clip_body(text="a cat", image=photo)).json()
    assert [h["id"] for h in both] == [h["id"] for h in hits]
    # a raw vector, searched as it is
    vector = engine.encode_query(image=sample / "photos" / "coffee.png").tolist()
    by_vector = client.post("/knn-service", content=_clip_body(embedding_input=vector)).json()
    assert by_vector[0]["image_path"].endswith("coffee.png")
    # num_images with metadata, num_result_ids ids in all
    some = client.post(
        "/knn-service", content=_clip_body(text="cat", num_images=2, num_result_ids=5)
    ).json()
    assert len(some) == 5 and all("url" in h for h in some[:2])
    assert all(set(h) == {"id", "similarity"} for h in some[2:])
    named = client.post("/knn-service", content=_clip_body(text="cat", indice_name=index.name))
    assert named.status_code == 200


@pytest.mark.parametrize(
    ("fields", "status", "message"),
    [
        ({"indice_name": "laion5B", "text": "x"}, 400, "unknown indice_name"),
        ({}, 400, "must fill one of"),
        ({"image_url": "http://example.com/cat.jpg"}, 400, "--allow-url-fetch"),
        ({"image": "bm90IGFuIGltYWdl"}, 400, "can't read"),
        ({"image": "%%%"}, 400, ""),
        ({"embedding_input": [1.0, 2.0]}, 400, "dimension"),
        ({"embedding_input": [0.0] * 64}, 400, "zeros"),
        ({"embedding_input": "abc"}, 400, "list of numbers"),
        ({"text": "x", "modality": "audio"}, 400, "modality"),
        ({"text": "x", "num_images": -3}, 400, "num_images"),
        ({"text": "x", "num_images": "many"}, 400, "num_images"),
        ({"text": 5}, 400, "string"),
    ],
)
def test_clip_knn_service_errors(
    client: TestClient, fields: dict[str, Any], status: int, message: str
) -> None:
    assert message in _error(client.post("/knn-service", content=_clip_body(**fields)), status)


def test_clip_metadata(client: TestClient, engine: Engine, index: Path) -> None:
    ids = _ids(engine)
    body = {"ids": [ids["coffee.png"], ids["fox.txt"]], "indice_name": index.name}
    out = client.post("/metadata", content=json.dumps(body)).json()
    assert [o["id"] for o in out] == body["ids"]
    assert out[0]["metadata"]["caption"] == "coffee.png"
    assert out[0]["metadata"]["url"] == f"{BASE}/api/assets/{ids['coffee.png']}/file"
    assert out[1]["metadata"]["image_path"].endswith("fox.txt")
    assert client.post("/metadata", content=b'{"ids": [], "indice_name": null}').json() == []
    _error(client.post("/metadata", content=b'{"ids": [1], "indice_name": "laion"}'), 400)
    _error(client.post("/metadata", content=b'{"ids": [99999]}'), 404)
    _error(client.post("/metadata", content=b'{"ids": "1"}'), 400)
    _error(client.post("/metadata", content=b"[]"), 400)


# -- the OpenAPI schema, explored: no input makes a 500 ------------------------------------


def _as_localhost(app: Any) -> Any:
    """The app, seen through ``Host: 127.0.0.1`` (schemathesis's client says ``testserver``)."""

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = [(k, v) for k, v in scope["headers"] if k != b"host"]
            scope = {**scope, "headers": [*headers, (b"host", b"127.0.0.1")]}
        await app(scope, receive, send)

    return wrapped


@pytest.fixture(scope="module")
def api_schema(engine: Engine) -> Any:
    import schemathesis

    app = _as_localhost(create_app(engine, ServerConfig()))
    return schemathesis.openapi.from_asgi("/openapi.json", app)


schema = need("schemathesis").pytest.from_fixture("api_schema")


@pytest.mark.slow
@schema.parametrize()
@settings(
    max_examples=20,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_request_makes_a_server_error(case: Any) -> None:
    response = case.call()
    assert response.status_code < 500, (case.method, case.formatted_path, response.text)
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"error"} and "\n" not in body["error"], body


def test_the_listening_socket_says_it_is_tcp() -> None:
    """asyncio turns Nagle off (TCP_NODELAY) only for sockets whose proto is IPPROTO_TCP;
    with the default 0 every keep-alive response waited ~40 ms for a delayed ACK."""
    import socket

    from mmsearch.cli.serve import _bind

    sock = _bind("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP
    finally:
        sock.close()
