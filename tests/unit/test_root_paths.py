"""The path rules of library roots (mmsearch.store.roots), without a database."""

from __future__ import annotations

import os

import pytest

from mmsearch.store.roots import folder_of, folders_holding, holder, join, relative, under


@pytest.mark.parametrize(
    ("root", "rel"),
    [("/lib", "a/b.jpg"), ("/", "a.jpg"), ("/lib", ""), ("/lib/photos", "x y/ü.png")],
)
def test_join_and_relative_are_inverses(root: str, rel: str) -> None:
    path = join(root, rel)
    assert path == (os.path.join(root, rel) if rel else root)
    assert relative(root, path) == rel


def test_under_is_by_folder_not_by_prefix() -> None:
    assert under("/lib/photos/a.jpg", "/lib") and under("/lib", "/lib") and under("/a", "/")
    assert not under("/library/a.jpg", "/lib") and not under("/lib", "/lib/photos")


def test_the_root_that_holds_a_path() -> None:
    assert folders_holding("/a/b/c.jpg") == ["/a/b/c.jpg", "/a/b", "/a", "/"]
    assert folder_of("/a/b/c.jpg") == "/a/b" and folder_of("/c.jpg") == "/"
    roots = {"/lib/photos", "/other"}
    assert holder(roots, "/lib/photos/2020/x.jpg") == "/lib/photos"
    assert holder(roots, "/lib/photos") == "/lib/photos"
    assert holder(roots, "/lib/photosets/x.jpg") is None and holder(roots, "/lib") is None
