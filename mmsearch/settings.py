"""One table of settings.

Each setting has a name, a type, a default and a help string. The CLI options
(``--batch-size``), the environment variables (``MMSEARCH_BATCH_SIZE``), the
:class:`Settings` object the library takes and the README's settings table
all derive from :data:`SETTINGS`; a test checks that every one is documented.

Precedence: an explicit argument (CLI option or keyword) beats the
environment variable, which beats the default.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from mmsearch.errors import ConfigError
from mmsearch.kinds import ANN_KINDS, OCR_POLICIES, PRECISIONS

_BOOL_WORDS = {"1": True, "true": True, "yes": True, "on": True}
_BOOL_WORDS.update({"0": False, "false": False, "no": False, "off": False, "": False})


@dataclass(frozen=True)
class Setting:
    name: str
    type: type
    default: Any
    help: str
    choices: tuple[str, ...] | None = None

    @property
    def env(self) -> str:
        return "MMSEARCH_" + self.name.upper()

    @property
    def option(self) -> str:
        return "--" + self.name.replace("_", "-")

    def parse(self, raw: Any) -> Any:
        if raw is None:
            return None
        if self.type is bool and isinstance(raw, str):
            if raw.strip().lower() not in _BOOL_WORDS:
                raise ConfigError(f"{self.name} must be true or false, not {raw!r}")
            return _BOOL_WORDS[raw.strip().lower()]
        try:
            value = self.type(raw)
        except (TypeError, ValueError) as exc:
            article = "an" if self.type is int else "a"
            raise ConfigError(
                f"{self.name} must be {article} {self.type.__name__}, not {raw!r}"
            ) from exc
        if self.choices and value not in self.choices:
            raise ConfigError(f"{self.name} must be one of {', '.join(self.choices)}, not {raw!r}")
        return value


SETTINGS: tuple[Setting, ...] = (
    Setting("index", str, "indexes/default", "Index folder to use."),
    Setting(
        "db",
        str,
        None,
        "Metadata database for a new index, e.g. postgresql+psycopg://user@host:5432/dbname"
        " (recorded without its password; later commands take it from here, PGPASSWORD or"
        " ~/.pgpass). Default: index.sqlite in the index folder.",
    ),
    Setting(
        "model",
        str,
        "auto",
        "Embedder for a new index: auto, offline, openclip, hash, or module:Class. "
        "An existing index always uses the embedder that built it.",
    ),
    Setting("clip_model", str, "ViT-B-32", "open_clip architecture, or a model-config JSON file."),
    Setting("pretrained", str, "laion2b_s34b_b79k", "open_clip pretrained tag."),
    Setting("weights", str, None, "Local open_clip weights file (instead of a pretrained tag)."),
    Setting(
        "precision",
        str,
        "auto",
        "Model precision on CPU: auto (bf16 where the CPU has native bf16), bf16 or fp32.",
        PRECISIONS,
    ),
    Setting("batch_size", int, 32, "Images or text chunks per model call."),
    Setting(
        "conse_top_t",
        int,
        100,
        "Offline model, new indexes: how many of an image's likeliest ImageNet classes"
        " make up its vector (1-1000).",
    ),
    Setting(
        "conse_temperature",
        float,
        3.0,
        "Offline model, new indexes: softmax temperature over the classifier's logits;"
        " higher mixes the classes more evenly.",
    ),
    Setting(
        "conse_templates",
        str,
        "a photo of a {}.|a photo of the {}.|a close-up photo of a {}.|a picture of a {}.|{}",
        "Offline model, new indexes: the prompts a class name is put in, separated by |,"
        " each with one {}.",
    ),
    Setting(
        "vectors",
        str,
        "faiss",
        "Vector store of a new index: faiss (a file beside SQLite), milvus:FILE.db (Milvus"
        " Lite, in the index folder) or milvus+http://HOST:PORT/COLLECTION (a Milvus server).",
    ),
    Setting(
        "ray",
        str,
        None,
        "Decode and embed on a Ray cluster: local (start one here), auto (join the running"
        " one) or its address; the writes stay in this process.",
    ),
    Setting("workers", int, 0, "Decoding worker processes; 0 = one per CPU core, minus one."),
    Setting("chunk_overlap", int, 8, "Tokens shared by neighbouring text chunks."),
    Setting("max_text_bytes", int, 20_000_000, "Larger text files are skipped and reported."),
    Setting(
        "max_image_pixels",
        int,
        500_000_000,
        "Images that would decode to more pixels (after JPEG draft) are skipped and reported.",
    ),
    Setting(
        "ocr",
        str,
        "auto",
        "Read the words in images and video keyframes: auto (a cheap text detector decides), "
        "on or off.",
        OCR_POLICIES,
    ),
    Setting(
        "palette",
        str,
        "on",
        "Keep each image's and video frame's dominant colours for --color searches: on or off.",
        ("on", "off"),
    ),
    Setting(
        "frame_rate", float, 1.0, "Video frames sampled per second (plus one per shot change)."
    ),
    Setting(
        "shot_threshold",
        float,
        25.0,
        "Shot-change score (mean grey difference, 0-255, of 64x36 thumbnails) that starts a shot.",
    ),
    Setting(
        "frame_dedup",
        float,
        0.95,
        "A sampled frame this similar (cosine) to the last kept frame of its shot is folded"
        " into it.",
    ),
    # mmsearch serve
    Setting(
        "host",
        str,
        "127.0.0.1",
        "Address mmsearch serve listens on; other than loopback it needs --token.",
    ),
    Setting("port", int, 8765, "Port mmsearch serve listens on (0: any free port)."),
    Setting(
        "token",
        str,
        None,
        "Secret that mmsearch serve asks of every request (Authorization: Bearer, or a cookie"
        " the page sets once from /?token=...).",
    ),
    Setting(
        "allow_writes",
        bool,
        False,
        "mmsearch serve: allow tagging and re-indexing through the API (POST /api/tags,"
        " /api/index).",
    ),
    Setting(
        "max_upload_mb",
        float,
        20.0,
        "mmsearch serve: largest request body (an uploaded query image or clip), in MB.",
    ),
    Setting(
        "allow_url_fetch",
        bool,
        False,
        "mmsearch serve: let clip-retrieval clients send an image_url for the server to fetch.",
    ),
    Setting(
        "ann",
        str,
        "auto",
        "Vector index, recorded in the index: auto (exact below 20,000 segments, then IVF with"
        " 8-bit codes and an exact re-rank), exact, ivf or hnsw.",
        ANN_KINDS,
    ),
)

_BY_NAME = {s.name: s for s in SETTINGS}


def setting(name: str) -> Setting:
    return _BY_NAME[name]


@dataclass(frozen=True)
class Settings:
    """Resolved values of every setting (see :data:`SETTINGS`)."""

    values: dict[str, Any] = field(default_factory=dict)
    given: frozenset[str] = frozenset()  # names set by an argument or a variable, not defaulted

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None

    @classmethod
    def resolve(cls, **overrides: Any) -> Settings:
        """Defaults, then ``MMSEARCH_*`` environment variables, then ``overrides``."""
        unknown = set(overrides) - set(_BY_NAME)
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        values: dict[str, Any] = {}
        given: set[str] = set()
        for s in SETTINGS:
            raw = overrides.get(s.name)
            if raw is None:
                raw = os.environ.get(s.env)
            values[s.name] = s.default if raw is None else s.parse(raw)
            if raw is not None:
                given.add(s.name)
        if values["batch_size"] < 1:
            raise ConfigError("batch_size must be at least 1")
        if values["frame_rate"] <= 0:
            raise ConfigError("frame_rate must be positive")
        if values["workers"] < 0:
            raise ConfigError("workers must be 0 (automatic) or more")
        if not 0 <= values["port"] <= 65535:
            raise ConfigError("port must be between 0 and 65535")
        if values["max_upload_mb"] <= 0:
            raise ConfigError("max_upload_mb must be positive")
        return cls(values, frozenset(given))
