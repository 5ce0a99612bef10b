"""Distributed ingestion on Ray: decode and embed on an actor pool, write on the driver.

The driver (the process that runs ``mmsearch index --ray``) discovers files
and decides what needs the model, exactly as a local run does. The files to
embed become a Ray Data dataset; one ``map_batches`` stage on a pool of actors
decodes and embeds them (each actor loads the model once, from the index's
embedder identity; an actor takes a GPU when the cluster has them), using the
same functions as the local path (:func:`~mmsearch.ingest.indexer.prepare_job`,
:func:`~mmsearch.ingest.indexer.embed_jobs`,
:func:`~mmsearch.ingest.indexer.embed_video_file`), so the segments are the
same. Results stream back to the driver batch by batch, where the one writer
applies the incremental rules and commits each batch as the local path does:
a driver killed mid-run loses at most the batch it was writing, and the next
run finishes the job.

A moved or copied file is recognised by its content hash, which a worker
computes while decoding: such a file is embedded by a worker and its vectors
then dropped for the ones the index already holds.
"""

from __future__ import annotations

import pickle
import warnings
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

import numpy as np

from mmsearch.embedders import embedder_from_identity
from mmsearch.embedders.base import EmbedderIdentity
from mmsearch.errors import ConfigError, MmsearchError, import_optional
from mmsearch.ingest.indexer import Job, Outcome, embed_jobs, embed_video_file, prepare_job
from mmsearch.media.decode import DecodeError, DecodeOptions, decode_file
from mmsearch.settings import Settings
from mmsearch.store.metadata import AssetRecord
from mmsearch.store.schema import Segment

FILES_PER_TASK = 16  # files per actor call: enough to batch the model, small enough to stream


def _ray() -> Any:
    return import_optional("ray", "ray", "distributed ingestion (--ray)")


def connect(address: str) -> dict[str, float]:
    """Join (``auto`` or an address) or start (``local``) a Ray cluster; its resources."""
    ray = _ray()
    if not ray.is_initialized():
        try:
            if address == "local":
                ray.init(include_dashboard=False, log_to_driver=False)
            else:
                ray.init(address=address, include_dashboard=False, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = "a local Ray cluster" if address == "local" else f"Ray at {address}"
            raise ConfigError(f"can't start or join {where}: {exc}") from exc
    return dict(ray.cluster_resources())


class EmbedWorker:
    """One actor of the pool: the model, loaded once, and the decoding options."""

    def __init__(self, identity: dict[str, Any], settings: dict[str, Any], ocr_policy: str):
        self.settings = Settings.resolve(**settings)
        ident = EmbedderIdentity.from_dict(identity)
        self.embedder = embedder_from_identity(ident, precision=self.settings.precision)
        self.ocr_policy = ocr_policy
        self.options = DecodeOptions.from_settings(
            self.settings, self.embedder.image_size, ocr_policy
        )

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        paths = [str(p) for p in batch["path"]]
        outcomes = dict(self._embed(paths, [str(m) for m in batch["modality"]]))
        blobs = [pickle.dumps(_portable(path, outcomes[path])) for path in paths]
        return {"result": np.array(blobs, dtype=object)}

    def _embed(self, paths: list[str], modalities: list[str]) -> Iterator[tuple[str, Outcome]]:
        jobs: list[Job] = []
        for path, modality in zip(paths, modalities, strict=True):
            try:
                decoded = decode_file(path, modality, self.options)
                if decoded.modality == "video":
                    yield (
                        path,
                        embed_video_file(decoded, self.embedder, self.settings, self.ocr_policy),
                    )
                    continue
            except (DecodeError, MmsearchError, OSError) as exc:
                yield path, str(exc) or type(exc).__name__
                continue
            job = prepare_job(decoded, None, self.embedder, self.settings)
            if isinstance(job, str):
                yield path, job
            else:
                jobs.append(job)
        for record, segments, _ in embed_jobs(jobs, self.embedder) if jobs else []:
            yield record.path, (record, segments, None)


def _portable(path: str, outcome: Outcome) -> Any:
    """What travels back to the driver: plain dicts, not ORM objects."""
    if isinstance(outcome, str):
        return path, outcome
    record, segments, partial = outcome
    return path, (asdict(record), [s.content() for s in segments], partial)


def _restore(blob: bytes) -> tuple[str, Outcome]:
    path, outcome = pickle.loads(blob)
    if isinstance(outcome, str):
        return path, outcome
    record, segments, partial = outcome
    return path, (AssetRecord(**record), [Segment(**s) for s in segments], partial)


class RayEmbedding:
    """Decode and embed files on a Ray cluster (see the module docstring)."""

    def __init__(
        self,
        address: str,
        identity: EmbedderIdentity,
        settings: Settings,
        ocr_policy: str,
        workers: int | None = None,
    ) -> None:
        self.address = address
        self.identity = identity
        self.settings = settings
        self.ocr_policy = ocr_policy
        self.workers = workers

    def embed(self, todo: list[tuple[str, str]]) -> Iterator[tuple[str, Outcome]]:
        """Each file of ``todo`` with its segments (or why it was skipped), as they finish."""
        if not todo:
            return
        resources = connect(self.address)
        ray = _ray()
        gpus = resources.get("GPU", 0.0)
        cpus = max(1, int(resources.get("CPU", 1)))
        size = self.workers or (int(gpus) if gpus >= 1 else cpus)
        items = [{"path": p, "modality": m} for p, m in todo]
        dataset = ray.data.from_items(items, override_num_blocks=max(1, len(items) // 4))
        with warnings.catch_warnings():  # Ray deprecates each way of passing actor options
            warnings.simplefilter("ignore", DeprecationWarning)
            embedded = dataset.map_batches(
                EmbedWorker,
                fn_constructor_kwargs={
                    "identity": self.identity.to_dict(),
                    "settings": {k: v for k, v in self.settings.values.items() if v is not None},
                    "ocr_policy": self.ocr_policy,
                },
                batch_size=FILES_PER_TASK,
                concurrency=max(1, size),
                num_cpus=1,
                num_gpus=1 if gpus >= 1 else 0,
                batch_format="numpy",
                # a worker that dies fails the run (the next run resumes it); restartable actors
                # would keep their constructor arguments pinned, which Ray's core warns about
                ray_remote_args_fn=lambda: {"max_restarts": 0},
            )
        for batch in embedded.iter_batches(batch_size=None, batch_format="numpy"):
            for blob in batch["result"]:
                yield _restore(blob)
