"""Run the mmsearch CLI with every vector-file save held just before its renames.

    python tests/support/pausing_cli.py FLAG index ...

Before each rename of a save, the target's path is written to ``FLAG`` and the
process waits (at most a minute) until the test deletes ``FLAG``, so a test can
kill it at exactly that point. Production code has no such hook: this launcher
injects it through ``FaissStore.before_rename``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path


def pause(flag: str, target: str) -> None:
    with open(f"{flag}.tmp", "w", encoding="utf-8") as f:
        f.write(target)
    os.replace(f"{flag}.tmp", flag)
    deadline = time.monotonic() + 60
    while os.path.exists(flag) and time.monotonic() < deadline:
        time.sleep(0.01)


def main() -> None:
    flag = sys.argv.pop(1)
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # this checkout's mmsearch
    from mmsearch.cli import main as cli_main
    from mmsearch.store.faiss_store import FaissStore

    FaissStore.before_rename = staticmethod(lambda target: pause(flag, target))  # type: ignore[assignment]
    sys.argv[0] = "mmsearch"
    cli_main()


if __name__ == "__main__":
    main()
