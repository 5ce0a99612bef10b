"""Cold start: a whole ``mmsearch search "text"`` process against ``python -c "import torch"``.

    python -m benchmarks.coldstart [--runs 7] [--index DIR] [--code DIR]

Builds a small index in a temporary folder (the sample images that ship in
scikit-image's ``skimage/data``, offline model, default settings), then starts,
interleaved, ``--runs`` cold processes of each:

- ``search``: ``python -m mmsearch search "a cup of coffee" --index IDX --json``;
- ``import torch``: ``python -c "import torch"``, the baseline the target is
  stated against (search at most 1.2x of it);
- ``cli --help``: ``python -m mmsearch --help``, the CLI's own cost.

"Cold" is a new Python process each time, with the files in the OS page cache
(as for a user running queries one after another). It prints median and
minimum wall time of each, the search/torch ratio, the top hit of every search
(``coffee.png`` must rank first), which heavy modules a search imported, and
the phases of one more cold search timed from inside, and the saving of the
saved search statistics (``search-stats.npz``).

``--code DIR`` runs the subprocesses against another checkout of mmsearch
(``PYTHONPATH=DIR``), e.g. ``--code /path/to/main`` for the numbers before a
change, on the same index in the same run. ``--index DIR`` reuses an index
instead of building one.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import scratch, table

QUERY = "a cup of coffee"
HEAVY = ("torch", "timm", "sentence_transformers", "transformers", "open_clip")
PROBE = f"""
import json, sys, runpy
sys.argv = ["mmsearch", "search", {QUERY!r}, "--index", sys.argv[1], "--json"]
try:
    runpy.run_module("mmsearch", run_name="__main__")
except SystemExit:
    pass
print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))
"""

# One more cold process, timed phase by phase from inside.
PHASES = f"""
import time, sys
t0 = time.perf_counter()
import mmsearch.cli
t1 = time.perf_counter()
import faiss, mmsearch.engine
t2 = time.perf_counter()
engine = mmsearch.engine.Engine.open(sys.argv[1], create=False)
t3 = time.perf_counter()
engine.encode_query({QUERY!r})
t4 = time.perf_counter()
engine.search({QUERY!r}, k=10)
t5 = time.perf_counter()
print(t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)
"""
PHASE_NAMES = (
    "import mmsearch.cli",
    "import mmsearch.engine, faiss (SQLAlchemy, numpy)",
    "open the index",
    "load the text encoder, encode the query",
    "search (warm encoder)",
)


def _env(code: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(code), "HF_HUB_OFFLINE": "1"}


def _timed(args: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    # cwd "/": with -c, Python puts the working folder first on sys.path, which
    # would shadow PYTHONPATH when the benchmark is started from a checkout.
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600, cwd="/")
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed: {done.stderr.strip()[-500:]}")
    return seconds, done.stdout


def build_index(folder: Path, code: Path) -> None:
    import skimage

    data = Path(skimage.__file__).parent / "data"
    args = [sys.executable, "-m", "mmsearch", "index", str(data), "--index", str(folder)]
    seconds, out = _timed([*args, "--model", "offline", "--json"], _env(code))
    report = json.loads(out)
    print(f"index: {report['added']} files, {report['segments']} segments in {seconds:.1f} s")


def stats_saving(index: Path) -> tuple[float, float]:
    """Seconds to compute the background sample + floor, and to read the saved ones."""
    from mmsearch import Engine
    from mmsearch.search import stats_cache
    from mmsearch.search.retrieve import _duplicate_floor

    with Engine.open(index, create=False) as engine:
        engine.searcher.background()  # writes the file if the processes' code did not
        stamp = engine.meta.segment_stamp()
        start = time.perf_counter()
        _duplicate_floor(engine.searcher._sample())
        computed = time.perf_counter() - start
        path = os.path.join(engine.folder, stats_cache.FILE_NAME)
        start = time.perf_counter()
        saved = stats_cache.read_stats(path, stamp, engine.identity.dim)
        read = time.perf_counter() - start
    if saved is None:
        raise SystemExit(f"no saved search statistics in {index}")
    return computed, read


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--index", type=Path, help="an existing offline-model index")
    parser.add_argument("--code", type=Path, help="the mmsearch checkout the processes import")
    args = parser.parse_args()
    code = (args.code or Path(__file__).resolve().parents[1]).resolve()
    with scratch() as tmp:
        index = args.index or Path(tmp) / "idx"
        if args.index is None:
            build_index(index, code)
        env = _env(code)
        search = [sys.executable, "-c", PROBE, str(index)]
        torch = [sys.executable, "-c", "import torch"]
        helptext = [sys.executable, "-m", "mmsearch", "--help"]
        _timed(search, env)  # the first search writes the saved statistics
        where = "import mmsearch, os; print(os.path.dirname(mmsearch.__file__))"
        origin = _timed([sys.executable, "-c", where], env)[1].strip()
        times: dict[str, list[float]] = {"search": [], "import torch": [], "cli --help": []}
        tops, heavy = set(), set()
        for _ in range(args.runs):
            seconds, out = _timed(search, env)
            result, loaded = out.strip().rsplit("\n", 1)
            times["search"].append(seconds)
            tops.add(Path(json.loads(result)["results"][0]["path"]).name)
            heavy.update(json.loads(loaded))
            times["import torch"].append(_timed(torch, env)[0])
            times["cli --help"].append(_timed(helptext, env)[0])
        phases = [
            float(x) for x in _timed([sys.executable, "-c", PHASES, str(index)], env)[1].split()
        ]
        empty = _timed([sys.executable, "-c", "pass"], env)[0]
        computed, read = stats_saving(index)
    rows = [[name, statistics.median(ts), min(ts), max(ts)] for name, ts in times.items()]
    print(f"code: {code}; {args.runs} interleaved cold runs each; load {os.getloadavg()[0]:.1f}")
    print(f"search imported mmsearch from: {origin}")
    print(table(["process", "median s", "min s", "max s"], rows))
    ratio_median = statistics.median(times["search"]) / statistics.median(times["import torch"])
    ratio_min = min(times["search"]) / min(times["import torch"])
    print(f"search / import torch: {ratio_median:.2f}x (median), {ratio_min:.2f}x (min)")
    print(f"top hit: {', '.join(sorted(tops))}; heavy modules imported: {sorted(heavy) or 'none'}")
    print(
        table(
            ["phase of one cold search", "s"],
            [["python -c pass", empty], *zip(PHASE_NAMES, phases, strict=True)],
        )
    )
    print(f"search statistics: computed in {computed * 1000:.1f} ms, read in {read * 1000:.1f} ms")
    if tops != {"coffee.png"}:
        raise SystemExit("coffee.png is not the top hit")


if __name__ == "__main__":
    main()
