"""One step on a vector store, in a process of its own: the contract across a restart.

``python tests/support/store_process.py STEP SPEC FOLDER SPACE DIM DATA.npz [OUT.npz]``

- ``add``: open (load, or reset when nothing is stored), add ``ids`` / ``vectors``,
  remove ``remove``, save; the process then ends, which closes the store;
- ``read``: open and load, then write to ``OUT.npz`` what a new process sees: the
  count, the largest id, every id, the top ``k`` of ``queries`` (unfiltered and
  among ``allowed``) and ``vectors_of(probe)``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np


def main(argv: list[str]) -> None:
    step, spec, folder, space, dim, data_path, *rest = argv
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # this checkout's mmsearch
    from mmsearch.store.backends import open_vector_store
    from mmsearch.store.vectors import VectorFileError

    store = open_vector_store(spec, folder, space, int(dim))
    with np.load(data_path) as data:
        given = {key: data[key] for key in data.files}
    if step == "add":
        try:
            store.load()
        except VectorFileError:
            store.reset()
        store.add(given["ids"], given["vectors"])
        store.remove(given["remove"])
        store.save()
        return
    store.load()
    k = int(given["k"])
    scores, found = store.search(given["queries"], k)
    allowed_scores, allowed_found = store.search(given["queries"], k, given["allowed"])
    np.savez(
        rest[0],
        count=store.count,
        max_id=store.max_id,
        ids=np.sort(store.ids()),
        scores=scores,
        found=found,
        allowed_scores=allowed_scores,
        allowed_found=allowed_found,
        probe_vectors=store.vectors_of(given["probe"]),
    )


if __name__ == "__main__":
    main(sys.argv[1:])
