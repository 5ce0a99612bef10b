"""Library roots, and the one home of the rules for paths under them.

An asset's path is stored as a root (an absolute folder) and a relative path
inside it, so a library and its index can move together (``mmsearch index
--move``). Roots never nest: a new root that holds older ones folds them into
itself, so a file is known once and at most one root holds any path.

- :func:`join` and :func:`relative`: a root and a relpath to a path, and back;
- :func:`root_holding`, :func:`holder`: the root that holds a path (in the
  database, or among known root paths);
- :func:`root_for`, :func:`make_root`: that root, made when there is none;
- :func:`under_path`, :func:`assets_under`, :func:`asset_at`: the files at or
  under a path (a filter's condition, or the rows);
- :func:`move_root`: a folder that moved.
"""

from __future__ import annotations

import os
from collections.abc import Container

from sqlalchemy import and_, false, func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

from mmsearch.errors import ConfigError, PathError
from mmsearch.store.schema import Asset, Root


def join(root: str, relpath: str) -> str:
    """The path of ``relpath`` inside the folder ``root`` (``root`` itself for ``""``).

    ``os.path.join`` without its generality: a search joins a few hundred of these.
    """
    if not relpath:
        return root
    return root + relpath if root.endswith(os.sep) else f"{root}{os.sep}{relpath}"


def relative(root: str, path: str) -> str:
    """The relpath of ``path`` (normalised, absolute, at or under ``root``) inside ``root``."""
    return "" if path == root else path[len(root.rstrip(os.sep)) + 1 :]


def folder_of(path: str) -> str:
    """The folder of a normalised absolute path (``os.path.dirname`` without its checks)."""
    return path.rpartition(os.sep)[0] or os.sep


def under(path: str, folder: str) -> bool:
    """Whether ``path`` is ``folder`` or lies inside it."""
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def folders_holding(path: str) -> list[str]:
    """``path`` and each folder above it, up to the file system's root."""
    out = [path]
    while (parent := os.path.dirname(out[-1])) != out[-1]:
        out.append(parent)
    return out


def holder(roots: Container[str], path: str) -> str | None:
    """The one of the root paths ``roots`` that holds ``path``, or ``None``."""
    return next((folder for folder in folders_holding(path) if folder in roots), None)


def root_holding(s: Session, path: str) -> Root | None:
    """The root that holds ``path``: one indexed lookup, however many roots there are
    (an import of a cluster's files makes one per folder)."""
    query = select(Root).where(Root.path.in_(folders_holding(path)))
    return s.scalars(query).first()  # roots never nest: at most one


def make_root(s: Session, folder: str) -> Root:
    """A new root for ``folder`` (under no root), with the roots inside it folded into it."""
    new = Root(path=folder)
    s.add(new)
    s.flush()
    inner_roots = select(Root).where(
        Root.id != new.id,
        func.substr(Root.path, 1, len(folder.rstrip(os.sep)) + 1) == folder.rstrip(os.sep) + os.sep,
    )
    for inner in list(s.scalars(inner_roots)):
        prefix = relative(folder, inner.path)
        for asset in s.scalars(select(Asset).where(Asset.root_id == inner.id)):
            asset.root_id = new.id
            asset.relpath = join(prefix, asset.relpath)
        s.flush()
        s.delete(inner)
    s.flush()
    return new


def root_for(s: Session, path: str) -> tuple[Root, str]:
    """The root that holds ``path`` and the relative path inside it.

    A path inside a known root uses that root. Otherwise a new root is made (the
    folder itself, or a file's parent) and the roots inside it fold into it.
    """
    root = root_holding(s, path)
    if root is None:
        root = make_root(s, path if os.path.isdir(path) else os.path.dirname(path))
    return root, relative(root.path, path)


def under_path(s: Session, path: str) -> ColumnElement[bool]:
    """A condition on ``assets``: the file is ``path`` or lies under the folder ``path``.

    ``path`` is absolute and normalised. The roots inside it are taken whole; the
    root holding it contributes the relpaths under ``path``'s place in it.
    """
    inside = [root.id for root in s.scalars(select(Root)) if under(root.path, path)]
    conditions: list[ColumnElement[bool]] = [Asset.root_id.in_(inside)] if inside else []
    outer = root_holding(s, path)
    if outer is not None and outer.path != path:
        rel = relative(outer.path, path)
        prefix = rel + os.sep
        below = func.substr(Asset.relpath, 1, len(prefix)) == prefix
        conditions.append(and_(Asset.root_id == outer.id, or_(Asset.relpath == rel, below)))
    return or_(*conditions) if conditions else false()


def assets_under(s: Session, path: str) -> list[Asset]:
    """Assets whose file is ``path`` or lies under the folder ``path``."""
    query = select(Asset).where(under_path(s, path)).order_by(Asset.root_id, Asset.id)
    return list(s.scalars(query))


def asset_at(s: Session, path: str) -> Asset | None:
    """The asset at ``path``, or ``None``."""
    root = root_holding(s, path)
    if root is None:
        return None
    rel = relative(root.path, path)
    return s.scalars(select(Asset).where(Asset.root_id == root.id, Asset.relpath == rel)).first()


def move_root(s: Session, old: str, new: str) -> None:
    """Point the files under the folder ``old`` at the folder ``new`` (absolute paths).

    ``old`` may be a root, a folder holding roots (each keeps its place under
    ``new``) or a folder inside a root (its files get ``new`` as their own
    root). Raises :class:`PathError` when nothing indexed is under ``old``,
    :class:`ConfigError` when a new folder would overlap a root that stays.
    """
    roots = list(s.scalars(select(Root)))
    moving = [r for r in roots if under(r.path, old)]

    def check(target: str) -> None:
        for other in roots:
            if other not in moving and (under(target, other.path) or under(other.path, target)):
                raise ConfigError(
                    f"can't move to {target}: it overlaps the indexed folder {other.path};"
                    " a move within indexed folders is found by mmsearch index (by content"
                    " hash, nothing re-embedded)"
                )

    if moving:
        targets = [os.path.normpath(join(new, relative(old, r.path))) for r in moving]
        for target in targets:
            check(target)
        for root, target in zip(moving, targets, strict=True):
            root.path = target
    elif (holding := root_holding(s, old)) is not None:
        prefix = relative(holding.path, old) + os.sep
        inside = func.substr(Asset.relpath, 1, len(prefix)) == prefix
        assets = list(s.scalars(select(Asset).where(Asset.root_id == holding.id, inside)))
        if not assets:
            raise PathError(f"no indexed files under {old}")
        check(new)
        root = Root(path=new)
        s.add(root)
        s.flush()
        for asset in assets:
            asset.root_id = root.id
            asset.relpath = asset.relpath[len(prefix) :]
    else:
        raise PathError(f"{old} is not an indexed folder nor inside one (see mmsearch roots)")
    s.flush()
