"""Human-readable output of the CLI (tables with rich)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from mmsearch.ingest.report import IndexReport
from mmsearch.search.results import Hit


def _console(stderr: bool = False) -> Console:
    console = Console(stderr=stderr, highlight=False, soft_wrap=False)
    if not console.is_terminal:
        console.width = max(console.width, 160)  # pipes and files: don't fold at 80
    return console


def clock(seconds: float | None) -> str:
    """``mm:ss`` (or ``h:mm:ss``) for a time in seconds."""
    if seconds is None:
        return ""
    total = int(seconds)
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def _detail(hit: Hit) -> str:
    if hit.modality == "text" and hit.snippet:
        return " ".join(hit.snippet.split())[:120]
    if hit.view == "ocr" and hit.snippet:
        words = f'"{" ".join(hit.snippet.split())[:100]}"'
        return f"{clock(hit.start)}–{clock(hit.end)} {words}" if hit.start is not None else words
    if hit.modality == "video" and hit.start is not None:
        return f"{clock(hit.start)}–{clock(hit.end)}"
    if hit.width and hit.height:
        return f"{hit.width}x{hit.height}"
    return ""


def print_hits(hits: list[Hit], offset: int = 0, total: int | None = None) -> None:
    console = _console()
    if not hits:
        console.print("no results" if not offset else f"no results past {offset}")
        return
    table = Table(show_edge=False, pad_edge=False)
    table.add_column("#", justify="right")
    table.add_column("score", justify="right")
    table.add_column("type")
    table.add_column("path", overflow="fold")
    table.add_column("match", overflow="fold")
    for rank, hit in enumerate(hits, start=offset + 1):
        detail = _detail(hit)
        if hit.duplicates:
            detail += (
                f" (+{len(hit.duplicates)} near-duplicate{'s' if len(hit.duplicates) > 1 else ''})"
            )
        table.add_row(str(rank), f"{hit.score:.3f}", hit.modality, hit.path, detail)
    console.print(table)
    if total is not None and total > offset + len(hits):
        console.print(f"{total - offset - len(hits)} more: --offset {offset + len(hits)}")


def print_report(report: IndexReport) -> None:
    console = _console()
    console.print(
        f"added {report.added}, updated {report.updated}, removed {report.removed}, "
        f"unchanged {report.unchanged}, moved {report.moved}, reused {report.reused}; "
        f"{report.segments} segments in {report.seconds:.1f}s",
        soft_wrap=True,
    )
    if report.skipped:
        console.print(f"skipped {len(report.skipped)}:")
        for skip in report.skipped:
            console.print(f"  {skip.path}: {skip.reason}", markup=False, soft_wrap=True)


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


ROOTS_SHOWN = 10  # roots listed by a human `info`; `mmsearch roots` and --json list all


def print_info(info: dict[str, Any]) -> None:
    console = _console()
    emb = info["embedder"]
    table = Table(show_header=False, show_edge=False, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    table.add_row("index", info["index"])
    table.add_row("model", f"{emb['name']} ({emb['model']}, {emb['weights']}, dim {emb['dim']})")
    options = emb.get("options") or {}
    if options:
        shown = (
            f"{key} {'|'.join(map(str, value)) if isinstance(value, list) else value}"
            for key, value in options.items()
        )
        table.add_row("model options", ", ".join(shown))
    table.add_row("vectors", str(info.get("vector_store", "faiss")))
    if info.get("vector_index"):
        table.add_row("vector index", _vector_index(info["vector_index"]))
    by_modality = ", ".join(f"{k} {v}" for k, v in sorted(info["by_modality"].items()))
    table.add_row("files", f"{info['assets']}" + (f" ({by_modality})" if by_modality else ""))
    by_view = ", ".join(f"{k} {v}" for k, v in sorted(info["by_view"].items()))
    table.add_row("segments", f"{info['segments']}" + (f" ({by_view})" if by_view else ""))
    roots = info["roots"]
    shown = roots[:ROOTS_SHOWN]
    if len(roots) > len(shown):  # an import from a cluster can make thousands
        shown.append(f"... and {len(roots) - len(shown)} more (mmsearch roots lists them)")
    table.add_row("roots", "\n".join(shown) or "-")
    table.add_row("size", _size(info["size_bytes"]))
    console.print(table, markup=False)


def _vector_index(facts: dict[str, Any]) -> str:
    """One line on the vector index: its kind, search setting and parts."""
    name = str(facts.get("index") or facts.get("kind", "?"))
    setting = [f"ann {facts['ann']}"] if facts.get("ann") else []
    for key, label in (("nprobe", "nprobe"), ("ef_search", "efSearch")):
        if facts.get(key) is not None:
            setting.append(f"{label} {facts[key]}")
    if facts.get("rerank") is not None and facts.get("kind") == "ivf":
        setting.append(f"re-rank {facts['rerank']}x")
    if facts.get("recall_at_10") is not None:
        setting.append(f"tuned R@10 {facts['recall_at_10']:.3f}")
    parts = [
        f"{facts[key]:,} {label}"
        for key, label in (("main", "in the main part"), ("fresh", "fresh"), ("deleted", "deleted"))
        if facts.get(key) is not None
    ]
    return f"{name} ({', '.join(setting)}); " + ", ".join(parts) if setting else name


def print_show(facts: dict[str, Any]) -> None:
    console = _console()
    table = Table(show_header=False, show_edge=False, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key in ("path", "asset_id", "modality", "size", "width", "height", "duration"):
        if facts.get(key) is not None:
            table.add_row(key, str(facts[key]))
    if facts.get("taken_at"):
        table.add_row("taken", facts["taken_at"])
    if facts.get("present") is False:
        table.add_row("file", "not on this machine (its vectors are in the index)")
    views = ", ".join(f"{v} {n}" for v, n in sorted(facts["views"].items()))
    table.add_row("views", views or "-")
    if facts["tags"]:
        table.add_row("tags", ", ".join(f"{k}={v}" for k, v in sorted(facts["tags"].items())))
    ocr = facts["meta"].get("ocr")
    if ocr:
        state = "gated (no text found)" if ocr.get("gated") else f"{ocr.get('lines', 0)} lines"
        table.add_row("ocr", f"{ocr.get('policy')}: {state}")
    console.print(table, markup=False)
    for line in facts["ocr_lines"]:
        at = f"[{clock(line['time'])}] " if line.get("time") is not None else ""
        console.print(f"  {at}{line['text']}", markup=False, soft_wrap=True)
