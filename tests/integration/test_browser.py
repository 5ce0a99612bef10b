"""The page in a real headless browser: Playwright driving Debian's chromium over a real
``mmsearch serve`` (one per module) on an index of real photos, notes and a video.

``MMSEARCH_SCREENSHOT=docs/screenshot.png`` saves a screenshot of the page's results.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from mmsearch import Engine
from tests.support.deps import need
from tests.support.served import sample_library, serving

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
pytestmark = [
    pytest.mark.subprocess,
    pytest.mark.slow,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium"),
]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    folder = tmp_path_factory.mktemp("browser")
    lib = sample_library(folder / "lib")
    with Engine.open(folder / "idx", model="hash") as engine:
        engine.index([lib])
    with serving(folder / "idx") as url:
        yield url, lib


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    playwright = need("playwright.sync_api")
    with playwright.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[tuple[Any, list[str]]]:
    context = browser.new_context(viewport={"width": 1000, "height": 400})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page, errors
    context.close()


def _cards(page: Any) -> list[str]:
    return list(page.eval_on_selector_all(".card", "cs => cs.map(c => c.dataset.asset)"))


def _wait_images(page: Any) -> list[int]:
    """naturalWidth of every thumbnail in view, once each has loaded."""
    page.wait_for_function(
        """() => [...document.querySelectorAll('.card img')]
              .filter(i => i.getBoundingClientRect().top < innerHeight)
              .every(i => i.complete)"""
    )
    return list(
        page.eval_on_selector_all(
            ".card img",
            "imgs => imgs.filter(i => i.getBoundingClientRect().top < innerHeight)"
            ".map(i => i.naturalWidth)",
        )
    )


def test_the_page_end_to_end(served: tuple[str, Path], page: tuple[Any, list[str]]) -> None:
    url, lib = served
    page, errors = page
    page.goto(url + "?all=1&k=8")
    # typing searches (debounced): thumbnails that really loaded
    page.fill("#q", "a cat")
    page.wait_for_selector(".card img")
    widths = _wait_images(page)
    assert widths and all(w > 0 for w in widths), widths
    page.wait_for_function("() => document.querySelectorAll('.card').length === 8")
    assert "q=a+cat" in page.url
    # scrolling to the end loads the second page (offset paging)
    with page.expect_request(lambda r: "offset=8" in r.url):
        page.mouse.wheel(0, 3000)
    page.wait_for_function("() => document.querySelectorAll('.card').length === 9")
    assert "9 results" in page.inner_text("#status")
    # a text result shows its snippet; the query's words are highlighted where they occur
    page.fill("#q", "red fox")
    page.wait_for_selector(".card.text mark")
    assert page.inner_text(".card.text mark").lower() in ("red", "fox")

    # dropping an image makes it the query: the same photo comes first
    photo = base64.b64encode((lib / "photos" / "chelsea.png").read_bytes()).decode()
    page.fill("#q", "")
    page.evaluate(
        """async (b64) => {
            const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
            const data = new DataTransfer();
            data.items.add(new File([bytes], 'cat.png', {type: 'image/png'}));
            document.dispatchEvent(new DragEvent('drop', {dataTransfer: data, bubbles: true}));
        }""",
        photo,
    )
    page.wait_for_selector(".chip >> text=image: cat.png")
    page.wait_for_function(
        "() => document.querySelector('.card .caption')?.textContent === 'chelsea.png'"
    )
    target = os.environ.get("MMSEARCH_SCREENSHOT")
    if target:  # the page's results for a dropped photo of a cat
        page.set_viewport_size({"width": 1280, "height": 720})
        _wait_images(page)
        page.screenshot(path=target)
        page.set_viewport_size({"width": 1000, "height": 400})
    # a video moment opens in a player at the moment's start
    first_video = page.locator(".card.video").first
    first_video.scroll_into_view_if_needed()
    first_video.click()
    page.wait_for_selector("#detail-media video")
    page.wait_for_function("() => document.querySelector('#detail-media video').readyState >= 1")
    moment = requests.post(
        url + "api/search",
        files={"image": ("cat.png", (lib / "photos" / "chelsea.png").read_bytes())},
        data={"query": '{"cutoff": false, "limit": 8, "filters": {"modalities": ["video"]}}'},
        timeout=30,
    ).json()["results"][0]
    assert moment["start"] > 0
    current = page.evaluate("() => document.querySelector('#detail-media video').currentTime")
    assert abs(current - moment["start"]) < 0.3, (current, moment)
    page.keyboard.press("Escape")
    assert page.locator("#detail").is_hidden()

    # "more like this" re-runs the query with feedback, which goes into the URL
    page.click(".chip button")  # drop the image query
    page.fill("#q", "a photo")
    page.wait_for_function("() => document.querySelectorAll('.card').length > 2")
    page.locator(".card.image").nth(1).click()
    page.wait_for_selector("#detail:not([hidden])")
    chosen = page.evaluate("() => document.querySelectorAll('.card.image')[1].dataset.asset")
    with page.expect_request(lambda r: f"more={chosen}" in r.url):
        page.click("#more-like")
    page.wait_for_selector(f".chip >> text=more like #{chosen}")
    page.wait_for_function(f"() => document.querySelector('.card')?.dataset.asset === '{chosen}'")
    assert f"more={chosen}" in page.url
    before = _cards(page)
    # reloading the shared URL gives the same results
    shared = page.url
    page.goto("about:blank")
    page.goto(shared)
    page.wait_for_function(f"() => document.querySelectorAll('.card').length === {len(before)}")
    assert _cards(page) == before
    assert page.input_value("#q") == "a photo"
    assert errors == []


def test_keyboard_navigation_and_the_detail_facts(
    served: tuple[str, Path], page: tuple[Any, list[str]]
) -> None:
    url, _lib = served
    page, errors = page
    page.goto(url + "?q=a+photo&all=1&type=image")
    page.wait_for_selector(".card.image")
    page.locator(".card").first.click()
    page.wait_for_selector("#detail-facts dt:text('path')")
    first = page.inner_text("#detail-title")
    page.keyboard.press("ArrowRight")
    page.wait_for_function(
        f"() => document.querySelector('#detail-title').textContent !== '{first}'"
    )
    page.wait_for_function(
        "() => { const i = document.querySelector('#detail-media img');"
        " return i && i.complete && i.naturalWidth > 0; }"
    )
    page.keyboard.press("ArrowLeft")
    page.wait_for_function(
        f"() => document.querySelector('#detail-title').textContent === '{first}'"
    )
    page.keyboard.press("Escape")
    assert page.locator("#detail").is_hidden()
    assert errors == []


def test_the_page_sends_one_query_shape_for_every_filter(
    served: tuple[str, Path], page: tuple[Any, list[str]]
) -> None:
    """Parameters the form has no field for (a glob, a capture date, colour words) go to the
    server as they are, with a typed query and with a dropped image alike."""
    url, lib = served
    page, errors = page
    with page.expect_request(lambda r: "glob=" in r.url and "/api/search" in r.url) as sent:
        page.goto(url + "?q=a+photo&all=1&glob=*.png&color_words=false")
    assert "color_words=false" in sent.value.url and sent.value.method == "GET"
    page.wait_for_selector(".card")
    captions = page.eval_on_selector_all(".card .caption", "cs => cs.map(c => c.textContent)")
    assert captions and all(c.endswith(".png") for c in captions), captions
    photo = base64.b64encode((lib / "photos" / "rocket.jpg").read_bytes()).decode()
    with page.expect_request(lambda r: r.method == "POST") as posted:
        page.evaluate(
            """async (b64) => {
                const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
                const data = new DataTransfer();
                data.items.add(new File([bytes], 'rocket.jpg', {type: 'image/jpeg'}));
                document.dispatchEvent(new DragEvent('drop', {dataTransfer: data, bubbles: true}));
            }""",
            photo,
        )
    assert "glob=*.png" in posted.value.url.replace("%2A", "*")
    page.wait_for_selector(".chip >> text=image: rocket.jpg")
    page.wait_for_function("() => !document.querySelector('#status').textContent.endsWith('…')")
    captions = page.eval_on_selector_all(".card .caption", "cs => cs.map(c => c.textContent)")
    assert captions and all(c.endswith(".png") for c in captions), captions  # no rocket.jpg
    page.goto(url + "?q=a+photo&taken_after=2999-01-01")
    page.wait_for_function("() => document.querySelector('#status').textContent === 'No results.'")
    assert "taken_after=2999-01-01" in page.url
    assert errors == []
