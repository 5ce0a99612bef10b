"""Duplicate groups in three tiers: exact copies, near-duplicates, similar shots.

A read-only report over what the index holds:

- **exact**: files with the same content hash (blake2b of the bytes) at different paths.
- **near**: the same picture re-encoded, resized, cropped a little, rotated by
  EXIF, with a border added (or a screenshot of it on a plain background); the
  same video re-encoded. Two images are near-duplicates when the model's cosine
  passes the candidate floor *and* their pixels agree (:func:`pixel_match` of
  :mod:`mmsearch.media.phash` at least ``NEAR_PIXELS``): a semantic model puts
  two different photos of the same kind of thing close together, so its cosine
  alone is never enough. Two videos are near-duplicates when their informative
  frames match in order by pixels over ``VIDEO_SHARE`` of the longer one
  (:mod:`mmsearch.duplicates.video`); black, flat and faded frames
  never count.
- **similar**: the same scene a moment later (a burst): cosine past the floor and
  pixels that agree loosely (``SIMILAR_PIXELS``); videos whose frames match in
  order by cosine only.

Tiers nest: each exact group is represented in the next tiers by its keeper,
and each near group by its keeper in the similar tier, so a file appears in at
most one group of each tier. Candidate pairs come from the vector store's
nearest-neighbour search over the stored vectors (``NEIGHBOURS`` per file),
never from all pairs; only they are checked against the files' pixels.

The thresholds are chosen with ``python -m benchmarks.duplicates``; its
figures are in ``docs/benchmarks.md`` ("Duplicates"). The cosine floor is
raised toward 1 from the index's own median cosine between different files,
since spaces differ: in the offline model's space even unrelated photos sit
close together, far closer than in CLIP's.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable, Sequence

import numpy as np
from sqlalchemy import select

from mmsearch.duplicates.groups import (
    COSINE_FLOOR,
    DuplicateGroup,
    DuplicateMember,
    DuplicateReport,
    FileFacts,
    Unions,
    exact_groups,
    file_facts,
    keeper_order,
    keeper_reason,
)
from mmsearch.duplicates.video import VideoSignature, match_videos, video_signature
from mmsearch.kinds import DUPLICATE_TIERS, DuplicateTier
from mmsearch.media.decode import DecodeError, decode_upright
from mmsearch.media.phash import Fingerprint, fingerprint, hash_distance, pixel_match
from mmsearch.store.metadata import MetadataStore
from mmsearch.store.schema import Asset, Segment
from mmsearch.store.vectors import VectorStore

Tier = DuplicateTier
TIERS = DUPLICATE_TIERS

FLOOR_FRACTION = 0.5  # the floor rises this share of the way from the median background to 1
NEAR_PIXELS = 0.95  # pixel_match at which two images are the same picture
SIMILAR_PIXELS = 0.75  # pixel_match at which two images show the same scene
VIDEO_SHARE = 0.80  # share of the longer video's informative frames matched in order
NEIGHBOURS = 16  # nearest neighbours asked of the vector store per file
FINGERPRINT_SIDE = 256  # images are decoded at about this long side for the pixel check
_BACKGROUND_PAIRS = 4000
_BACKGROUND_MIN_FILES = 30


class DuplicateFinder:
    """Finds the duplicate groups of an index (or of the files under some folders)."""

    def __init__(self, meta: MetadataStore, vectors: VectorStore) -> None:
        self.meta = meta
        self.vectors = vectors
        self.unreadable: list[str] = []
        self._prints: dict[int, Fingerprint | None] = {}
        self._files: dict[int, FileFacts] = {}
        self._vec: dict[int, np.ndarray] = {}
        self._signatures: dict[int, VideoSignature | None] = {}
        self._frame_segs: dict[int, list[Segment]] = {}
        self._adjacent: dict[int, list[tuple[int, tuple[str, str]]]] = {}
        self._adjacent_for = -1

    # -- loading -------------------------------------------------------------

    def _load(self, paths: Sequence[str] | None) -> list[FileFacts]:
        with self.meta.sessions() as s:
            if paths:
                found = {a.id: a for p in paths for a in self.meta.assets_under(s, p)}
                assets = list(found.values())
            else:
                assets = list(s.scalars(select(Asset)))
            files = [file_facts(self.meta, a) for a in assets]
        self._files = {f.id: f for f in files}
        return files

    def _load_vectors(self, ids: Iterable[int], view: str) -> dict[int, list[Segment]]:
        """The ``view`` segments of the given assets (id, asset, times, vector)."""
        wanted = sorted(set(ids))
        out: dict[int, list[Segment]] = defaultdict(list)
        with self.meta.sessions() as s:
            for start in range(0, len(wanted), 900):
                part = wanted[start : start + 900]
                query = (
                    select(Segment)
                    .where(Segment.asset_id.in_(part), Segment.view == view)
                    .order_by(Segment.asset_id, Segment.ord)
                )
                for seg in s.scalars(query):
                    if len(seg.vector) == self.vectors.dim * 2:
                        out[seg.asset_id].append(seg)
        return out

    # -- running -------------------------------------------------------------

    def run(
        self, paths: Sequence[str] | None = None, tiers: Sequence[str] = TIERS
    ) -> DuplicateReport:
        files = self._load(paths)
        exact = exact_groups(files)
        stand_in = {f.id: f.id for f in files}
        for group in exact:
            for member in group[1:]:
                stand_in[member] = group[0]
        reps = [f for f in files if stand_in[f.id] == f.id]
        pairs, floor = self._visual_pairs(reps) if set(tiers) - {"exact"} else ({}, COSINE_FLOOR)
        near_sets = Unions()
        for (a, b), (tier, _why) in pairs.items():
            if tier == "near":
                near_sets.union(a, b)
        near = [self._ordered(g) for g in near_sets.groups()]
        near_keeper = {m: g[0] for g in near for m in g}
        similar_sets = Unions()
        for a, b in list(pairs):
            ka, kb = near_keeper.get(a, a), near_keeper.get(b, b)
            if ka != kb and self._stand_ins_alike(ka, kb, pairs, floor):
                similar_sets.union(ka, kb)
        similar = [self._ordered(g) for g in similar_sets.groups()]
        groups: list[DuplicateGroup] = []
        if "exact" in tiers:
            groups += [self._describe("exact", g, pairs) for g in exact]
        if "near" in tiers:
            groups += [self._describe("near", g, pairs) for g in near]
        if "similar" in tiers:
            groups += [self._describe("similar", g, pairs) for g in similar]
        groups.sort(key=lambda g: (-len(g.members), TIERS.index(g.tier), g.keeper))
        return DuplicateReport(groups, sorted(set(self.unreadable)), floor)

    def _stand_ins_alike(
        self, a: int, b: int, pairs: dict[tuple[int, int], tuple[str, str]], floor: float
    ) -> bool:
        """Whether two groups' keepers are alike themselves (a pair seen, or checked now).

        Similar groups link keepers, not any two members, so one look-alike pair
        between two near groups does not merge them.
        """
        key = (min(a, b), max(a, b))
        if key not in pairs:
            if self._files[a].modality != self._files[b].modality:
                return False
            if self._files[a].modality == "image":
                cos = self._cosine(a, b)
                checked = self._check_images(*key, cos) if cos >= floor else None
            else:
                checked = self._check_videos(*key, self._frame_segs, floor)
            if checked is None:
                return False
            pairs[key] = checked
        return True

    def _ordered(self, ids: list[int]) -> list[int]:
        return sorted(ids, key=lambda i: keeper_order(self._files[i]))

    # -- candidate pairs -----------------------------------------------------

    def _visual_pairs(
        self, reps: list[FileFacts]
    ) -> tuple[dict[tuple[int, int], tuple[str, str]], float]:
        """Checked pairs ``(a, b) -> (tier, reason)`` among images and among videos."""
        images = [f.id for f in reps if f.modality == "image"]
        videos = [f.id for f in reps if f.modality == "video"]
        pixel_segs = self._load_vectors(images, "pixels")
        frame_segs = self._frame_segs = self._load_vectors(videos, "frame")
        for asset_id, segs in pixel_segs.items():
            self._vec[asset_id] = _as_vector(segs[0])
        floor = self._floor(list(self._vec.values()))
        pairs: dict[tuple[int, int], tuple[str, str]] = {}
        candidates = list(self._neighbours(pixel_segs, floor))
        self._prefetch({x for a, b, _ in candidates for x in (a, b)})
        for a, b, cos in candidates:
            checked = self._check_images(a, b, cos)
            if checked:
                pairs[(a, b)] = checked
        for a, b in self._video_candidates(frame_segs, floor):
            checked = self._check_videos(a, b, frame_segs, floor)
            if checked:
                pairs[(a, b)] = checked
        return pairs, floor

    def _floor(self, vectors: list[np.ndarray]) -> float:
        """The candidate cosine floor, raised where the index's own background is high.

        The median cosine between random pairs of different files is the
        background (high in the offline model's space, moderate in CLIP's:
        ``docs/benchmarks.md``, "Duplicates"); a median is used, not a high
        percentile, so that a library full of copies does not raise the floor
        above its own copies.
        """
        if len(vectors) < _BACKGROUND_MIN_FILES:
            return COSINE_FLOOR
        matrix = np.stack(vectors)
        rng = np.random.default_rng(0)
        i = rng.integers(0, len(matrix), _BACKGROUND_PAIRS)
        j = rng.integers(0, len(matrix), _BACKGROUND_PAIRS)
        keep = i != j
        cosines = np.einsum("nd,nd->n", matrix[i[keep]], matrix[j[keep]])
        median = float(np.median(cosines))
        return max(COSINE_FLOOR, median + FLOOR_FRACTION * (1.0 - median))

    def _neighbours(
        self, segs: dict[int, list[Segment]], floor: float
    ) -> Iterable[tuple[int, int, float]]:
        """Pairs ``(a, b, cosine)`` with ``a < b`` among the assets' nearest neighbours."""
        seg_ids = {s.id: asset for asset, group in segs.items() for s in group}
        if len(seg_ids) < 2:
            return
        ids = np.fromiter(seg_ids, dtype=np.int64, count=len(seg_ids))
        allowed = None if self.vectors.count == len(ids) else ids
        matrix = np.stack([_as_vector(s) for group in segs.values() for s in group])
        owners = np.fromiter((seg_ids[s.id] for g in segs.values() for s in g), dtype=np.int64)
        seen: set[tuple[int, int]] = set()
        for start in range(0, len(matrix), 2048):
            scores, found = self.vectors.search(
                matrix[start : start + 2048], NEIGHBOURS + 1, allowed
            )
            for row, owner in enumerate(owners[start : start + 2048]):
                for score, seg in zip(scores[row], found[row], strict=True):
                    other = seg_ids.get(int(seg))
                    if other is None or other == owner or score < floor:
                        continue
                    pair = (min(owner, other), max(owner, other))
                    if pair not in seen:
                        seen.add(pair)
                        yield int(pair[0]), int(pair[1]), float(score)

    # -- images ----------------------------------------------------------------

    def _prefetch(self, ids: set[int]) -> None:
        """Fingerprint these images in threads (decoding releases the GIL)."""
        from concurrent.futures import ThreadPoolExecutor

        todo = sorted(i for i in ids if i not in self._prints)
        with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
            for asset_id, result in zip(todo, pool.map(self._decode_print, todo), strict=True):
                self._prints[asset_id] = result

    def _decode_print(self, asset_id: int) -> Fingerprint | None:
        try:
            return fingerprint(decode_upright(self._files[asset_id].path, FINGERPRINT_SIDE).image)
        except (DecodeError, OSError):
            self.unreadable.append(self._files[asset_id].path)
            return None

    def _print(self, asset_id: int) -> Fingerprint | None:
        if asset_id not in self._prints:
            self._prints[asset_id] = self._decode_print(asset_id)
        return self._prints[asset_id]

    def _check_images(self, a: int, b: int, cos: float) -> tuple[str, str] | None:
        pa, pb = self._print(a), self._print(b)
        if pa is None or pb is None:
            return None
        pixels = pixel_match(pa, pb)
        bits = hash_distance(pa.phash, pb.phash)
        why = f"cosine {cos:.3f}, pixels {pixels:.3f}, pHash distance {bits}/64"
        if pixels >= NEAR_PIXELS:
            return "near", why
        if pixels >= SIMILAR_PIXELS:
            return "similar", why
        return None

    # -- videos ----------------------------------------------------------------

    def _video_candidates(
        self, segs: dict[int, list[Segment]], floor: float
    ) -> set[tuple[int, int]]:
        return {(a, b) for a, b, _ in self._neighbours(segs, floor)}

    def _signature(self, asset_id: int, segs: dict[int, list[Segment]]) -> VideoSignature | None:
        if asset_id not in self._signatures:
            f = self._files[asset_id]
            spans = [(s.start or 0.0, s.end or 0.0, _as_vector(s)) for s in segs.get(asset_id, [])]
            spans.sort(key=lambda x: x[0])
            signature = video_signature(f.path, f.duration, spans, self.vectors.dim)
            if signature is None:
                self.unreadable.append(f.path)
            self._signatures[asset_id] = signature
        return self._signatures[asset_id]

    def _check_videos(
        self, a: int, b: int, segs: dict[int, list[Segment]], floor: float
    ) -> tuple[str, str] | None:
        sa, sb = self._signature(a, segs), self._signature(b, segs)
        if sa is None or sb is None:
            return None
        m = match_videos(sa, sb, floor)
        why = (
            f"{m.matched} of {m.frames} informative frames match in order by pixels"
            f" ({m.pixel_share:.0%}), by cosine {m.cosine_share:.0%}, cosine {m.cosine:.3f}"
        )
        if m.frames and m.pixel_share >= VIDEO_SHARE:
            return "near", why
        if m.frames and m.cosine_share >= VIDEO_SHARE:
            return "similar", why
        return None

    # -- reporting ---------------------------------------------------------------

    def _describe(
        self, tier: Tier, ids: list[int], pairs: dict[tuple[int, int], tuple[str, str]]
    ) -> DuplicateGroup:
        keeper = self._files[ids[0]]
        members = []
        members_set = set(ids)
        for i in ids:
            f = self._files[i]
            if i == keeper.id:
                reason = f"keeper: {keeper_reason(f)}"
                similarity = 1.0
            elif tier == "exact":
                reason = f"same content hash as the keeper ({f.content_hash[:12]})"
                similarity = 1.0
            else:
                similarity, reason = self._versus(keeper.id, i, members_set, pairs)
            members.append(DuplicateMember(f.path, reason, round(similarity, 4)))
        return DuplicateGroup(tier, keeper.path, members)

    def _versus(
        self,
        keeper: int,
        other: int,
        group: set[int],
        pairs: dict[tuple[int, int], tuple[str, str]],
    ) -> tuple[float, str]:
        """Similarity to the keeper and why the member is in the group."""
        cos = self._cosine(keeper, other)
        pair = (min(keeper, other), max(keeper, other))
        if pair in pairs:
            tier, why = pairs[pair]
            return cos, f"{tier} to the keeper: {why}"
        if self._adjacent_for != len(pairs):  # each file's checked pairs, built once
            self._adjacent = defaultdict(list)
            for (a, b), checked in pairs.items():
                self._adjacent[a].append((b, checked))
                self._adjacent[b].append((a, checked))
            self._adjacent_for = len(pairs)
        for peer, (tier, why) in self._adjacent.get(other, []):
            if peer in group:
                return cos, f"{tier} to {self._files[peer].path}: {why}"
        return cos, "in the group through its near-duplicates"

    def _cosine(self, a: int, b: int) -> float:
        va, vb = self._vec.get(a), self._vec.get(b)
        if va is None or vb is None:
            sa, sb = self._signatures.get(a), self._signatures.get(b)
            if sa is None or sb is None:
                return 0.0
            return match_videos(sa, sb, 1.0).cosine
        return float(va @ vb)


def _as_vector(seg: Segment) -> np.ndarray:
    return np.frombuffer(seg.vector, dtype=np.float16).astype(np.float32)
