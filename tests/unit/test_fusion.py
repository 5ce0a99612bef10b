from __future__ import annotations

import math

import numpy as np
import pytest

from mmsearch.search.fusion import (
    adaptive_cutoff,
    calibrate_modalities,
    collapse_near_duplicates,
    early_fusion,
    exclude_similar,
    mmr,
    normalise_scores,
    ranked,
    rocchio,
    rrf,
    weighted_fusion,
)

A = {1: 0.9, 2: 0.8, 3: 0.7}
B = {3: 5.0, 1: 4.0, 4: 3.0}  # a different score scale: only ranks matter to RRF


# --- ranked / rrf -------------------------------------------------------------------------


def test_ranked_breaks_ties_by_id() -> None:
    assert ranked({5: 1.0, 2: 1.0, 9: 0.5, 7: 2.0}) == [7, 2, 5, 9]


def test_rrf_two_rankings_by_hand() -> None:
    fused = rrf([A, B])
    assert list(fused) == [1, 3, 2, 4]
    assert fused == pytest.approx(
        {1: 1 / 61 + 1 / 62, 3: 1 / 63 + 1 / 61, 2: 1 / 62, 4: 1 / 63}, rel=1e-12
    )


def test_rrf_small_k_exact_fractions() -> None:
    assert rrf([A, B], k=1) == pytest.approx({1: 5 / 6, 3: 3 / 4, 2: 1 / 3, 4: 1 / 4})


def test_rrf_weights() -> None:
    fused = rrf([A, B], weights=[2.0, 1.0])
    expected = {1: 2 / 61 + 1 / 62, 2: 2 / 62, 3: 2 / 63 + 1 / 61, 4: 1 / 63}
    assert fused == pytest.approx(expected, rel=1e-12)
    assert list(fused) == [1, 3, 2, 4]


def test_rrf_ties_within_a_ranking_use_id_order() -> None:
    fused = rrf([{5: 1.0, 2: 1.0, 9: 0.5}], k=1)
    assert fused == pytest.approx({2: 1 / 2, 5: 1 / 3, 9: 1 / 4})
    assert list(fused) == [2, 5, 9]


def test_rrf_edge_cases() -> None:
    assert rrf([]) == {}
    assert rrf([{}, {}]) == {}
    assert rrf([{7: -3.0}]) == pytest.approx({7: 1 / 61})
    with pytest.raises(ValueError, match="k must be > 0"):
        rrf([A], k=0)
    with pytest.raises(ValueError, match="k must be > 0"):
        rrf([A], k=-5)
    with pytest.raises(ValueError, match="weights"):
        rrf([A, B], weights=[1.0])


# --- normalise_scores / weighted_fusion ---------------------------------------------------


def test_normalise_minmax_and_zscore_by_hand() -> None:
    scores = {1: 2.0, 2: 4.0, 3: 6.0}
    assert normalise_scores(scores) == pytest.approx({1: 0.0, 2: 0.5, 3: 1.0})
    z = math.sqrt(1.5)  # population std of (2, 4, 6) is sqrt(8/3); 2 / sqrt(8/3) = sqrt(3/2)
    assert normalise_scores(scores, "zscore") == pytest.approx({1: -z, 2: 0.0, 3: z})


def test_normalise_edge_cases() -> None:
    assert normalise_scores({}) == {}
    assert normalise_scores({4: 0.3, 5: 0.3}) == {4: 1.0, 5: 1.0}
    assert normalise_scores({4: 0.1, 5: 0.1, 6: 0.1}, "zscore") == {4: 0.0, 5: 0.0, 6: 0.0}
    assert normalise_scores({4: 7.0}) == {4: 1.0}
    with pytest.raises(ValueError, match="unknown normalisation"):
        normalise_scores({1: 1.0}, "softmax")
    with pytest.raises(ValueError, match="unknown normalisation"):
        normalise_scores({}, "l2")


def test_weighted_fusion_minmax_by_hand() -> None:
    first = {1: 10.0, 2: 5.0, 3: 0.0}  # -> 1, 0.5, 0
    second = {2: 1.0, 4: 0.0}  # -> 1, 0; items 1 and 3 missing -> 0
    fused = weighted_fusion([first, second], weights=[1.0, 2.0])
    assert fused == pytest.approx({2: 2.5, 1: 1.0, 3: 0.0, 4: 0.0})
    assert list(fused) == [2, 1, 3, 4]


def test_weighted_fusion_zscore_missing_items_get_the_ranking_minimum() -> None:
    first = {1: 10.0, 2: 5.0, 3: 0.0}  # z = +z1, 0, -z1
    second = {2: 1.0, 4: 0.0}  # z = +1, -1
    z1 = math.sqrt(1.5)
    fused = weighted_fusion([first, second], method="zscore")
    # 1 and 3 are missing from `second` -> -1; 4 is missing from `first` -> -z1
    assert fused == pytest.approx({2: 1.0, 1: z1 - 1, 3: -z1 - 1, 4: -z1 - 1})
    assert list(fused) == [2, 1, 3, 4]


def test_weighted_fusion_edge_cases() -> None:
    assert weighted_fusion([]) == {}
    assert weighted_fusion([{}, {3: 0.2}]) == {3: 1.0}
    with pytest.raises(ValueError, match="unknown normalisation"):
        weighted_fusion([], method="rank")
    with pytest.raises(ValueError, match="weights"):
        weighted_fusion([A], weights=[1.0, 1.0])


# --- early_fusion / exclude_similar / rocchio ---------------------------------------------


def test_early_fusion_by_hand() -> None:
    out = early_fusion(np.array([[3.0, 4.0], [0.0, 2.0]]), [1.0, 1.0])
    # (0.6, 0.8) + (0, 1) = (0.6, 1.8) -> / sqrt(3.6)
    assert out == pytest.approx([1 / math.sqrt(10), 3 / math.sqrt(10)], rel=1e-6)
    assert out.dtype == np.float32 and out.shape == (2,)


def test_early_fusion_negative_weight_subtracts() -> None:
    out = early_fusion(np.array([[1.0, 0.0], [1.0, 1.0]]), [1.0, -1.0])
    raw = np.array([1 - 1 / math.sqrt(2), -1 / math.sqrt(2)])
    assert out == pytest.approx(raw / np.linalg.norm(raw), rel=1e-6)
    assert float(out @ np.array([1.0, 1.0])) < 0  # points away from the negative part


def test_early_fusion_output_is_unit_norm() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        parts = rng.normal(size=(3, 16)) * rng.uniform(0.1, 10, size=(3, 1))
        out = early_fusion(parts, rng.uniform(-1, 2, size=3).tolist())
        assert float(np.linalg.norm(out)) == pytest.approx(1.0, abs=1e-6)


def test_early_fusion_errors() -> None:
    with pytest.raises(ValueError, match="cancel out"):
        early_fusion(np.array([[1.0, 2.0], [2.0, 4.0]]), [1.0, -1.0])
    with pytest.raises(ValueError, match="zero vector"):
        early_fusion(np.array([[1.0, 2.0], [0.0, 0.0]]), [1.0, 1.0])
    with pytest.raises(ValueError, match="weights"):
        early_fusion(np.eye(2), [1.0])
    with pytest.raises(ValueError, match="shape"):
        early_fusion(np.zeros((0, 4)), [])


def test_exclude_similar() -> None:
    candidates = {1: 0.9, 2: 0.8, 3: 0.7, 4: 0.6}
    sims = {1: 0.2, 2: 0.85, 3: 0.8}  # 4 unknown -> kept
    assert exclude_similar(candidates, sims, threshold=0.8) == {1: 0.9, 4: 0.6}
    assert exclude_similar({}, sims, 0.5) == {}


def test_rocchio_by_hand() -> None:
    q = np.array([2.0, 0.0])
    assert rocchio(q) == pytest.approx([1.0, 0.0])
    assert rocchio(q, np.array([[0.0, 10.0]])) == pytest.approx([0.8, 0.6])  # (1, .75) / 1.25
    out = rocchio(q, np.array([[0.0, 1.0]]), np.array([[0.0, 1.0]]))
    assert out == pytest.approx(np.array([1.0, 0.6]) / math.sqrt(1.36), rel=1e-6)
    mean_pos = rocchio(q, np.array([[0.0, 1.0], [0.0, -1.0]]))  # opposite positives cancel
    assert mean_pos == pytest.approx([1.0, 0.0])
    assert rocchio(q, np.zeros((0, 2)), None) == pytest.approx([1.0, 0.0])


def test_rocchio_errors() -> None:
    q = np.array([1.0, 0.0])
    with pytest.raises(ValueError, match="cancels"):
        rocchio(q, negatives=np.array([[1.0, 0.0]]), gamma=1.0)
    with pytest.raises(ValueError, match="non-zero"):
        rocchio(np.zeros(2))
    with pytest.raises(ValueError, match="shape"):
        rocchio(q, np.ones((1, 3)))
    with pytest.raises(ValueError, match=">= 0"):
        rocchio(q, beta=-1.0)


# --- collapse_near_duplicates / mmr -------------------------------------------------------


def test_collapse_near_duplicates() -> None:
    vecs = np.array([[1.0, 0.0], [0.99, 0.141], [0.0, 1.0], [0.1, 0.995], [2.0, 0.0]])
    groups = collapse_near_duplicates([10, 11, 12, 13, 14], vecs)
    assert groups == [(10, [11, 14]), (12, [13])]


def test_collapse_folds_into_the_first_kept_match() -> None:
    angle = math.radians
    vecs = np.array([[math.cos(angle(a)), math.sin(angle(a))] for a in (0, 36.87, 18.4)])
    # 0 and 36.87 deg differ (cos 0.8); 18.4 deg is within cos 0.9 of both -> folds into the first
    assert collapse_near_duplicates([1, 2, 3], vecs, 0.9) == [(1, [3]), (2, [])]


def test_collapse_edge_cases_and_order() -> None:
    assert collapse_near_duplicates([], np.zeros((0, 4))) == []
    assert collapse_near_duplicates([5], np.ones((1, 4))) == [(5, [])]
    rng = np.random.default_rng(1)
    order = list(range(100, 140))
    groups = collapse_near_duplicates(order, rng.normal(size=(40, 8)), threshold=0.5)
    kept = [item for item, _ in groups]
    assert kept == sorted(kept)  # kept items stay in ranking order
    flat = sorted(kept + [f for _, folded in groups for f in folded])
    assert flat == order
    with pytest.raises(ValueError, match="shape"):
        collapse_near_duplicates([1, 2], np.ones((3, 4)))


def test_mmr_by_hand() -> None:
    vecs = np.array([[1.0, 0.0], [0.999, 0.045], [0.0, 1.0]])
    rel = [0.9, 0.85, 0.5]
    # after picking 1: gain(2) = .5*.85 - .5*.999 < 0, gain(3) = .5*.5 - .5*0 = .25
    assert mmr([1, 2, 3], rel, vecs, k=3, lambda_=0.5) == [1, 3, 2]
    assert mmr([1, 2, 3], rel, vecs, k=2, lambda_=1.0) == [1, 2]


def test_mmr_lambda_one_is_relevance_order() -> None:
    rng = np.random.default_rng(2)
    rel = rng.uniform(size=30)
    order = list(range(30))
    expected = [order[i] for i in np.argsort(-rel, kind="stable")]
    assert mmr(order, rel.tolist(), rng.normal(size=(30, 8)), k=30, lambda_=1.0) == expected


def test_mmr_edge_cases() -> None:
    vecs = np.eye(3)
    assert mmr([1, 2, 3], [0.1, 0.2, 0.3], vecs, k=0) == []
    assert mmr([1, 2, 3], [0.1, 0.2, 0.3], vecs, k=10) == [3, 2, 1]
    assert mmr([], [], np.zeros((0, 3)), k=5) == []
    assert mmr([4, 5], [0.5, 0.5], np.eye(2), k=2) == [4, 5]  # ties -> earlier in order
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match="lambda_"):
            mmr([1], [1.0], np.ones((1, 2)), k=1, lambda_=bad)
    with pytest.raises(ValueError, match="relevance"):
        mmr([1, 2], [1.0], np.ones((2, 2)), k=1)


# --- adaptive_cutoff ----------------------------------------------------------------------


def matches_then_noise(seed: int = 0) -> list[float]:
    rng = np.random.default_rng(seed)
    matches = 0.8 + rng.uniform(-0.02, 0.02, 3)
    noise = 0.2 + rng.normal(0.0, 0.02, 50)
    return sorted(np.concatenate([matches, noise]).tolist(), reverse=True)


@pytest.mark.parametrize("seed", range(5))
def test_cutoff_gap_rule_keeps_the_true_matches(seed: int) -> None:
    assert adaptive_cutoff(matches_then_noise(seed)) == 3


def test_cutoff_background_floor_and_gap_together() -> None:
    rng = np.random.default_rng(3)
    background = rng.normal(0.2, 0.02, 2000)
    scores = matches_then_noise(3)
    floor = np.percentile(background, 99)
    lucky_noise = sum(s > floor for s in scores[3:])  # ~1% of the noise beats the floor
    assert lucky_noise == 1
    assert adaptive_cutoff(scores, background=background, gap_ratio=math.inf) == 3 + lucky_noise
    assert adaptive_cutoff(scores, background=background) == 3  # the gap cut trims the rest


def test_cutoff_floor_by_hand() -> None:
    scores = [0.9, 0.5, 0.3, 0.1]
    background = np.linspace(0.0, 1.0, 101)  # percentile p is p / 100
    kw = {"background": background, "gap_ratio": math.inf}
    assert adaptive_cutoff(scores, background_percentile=40, **kw) == 2
    assert adaptive_cutoff(scores, background_percentile=50, **kw) == 1  # strictly above
    assert adaptive_cutoff(scores, background_percentile=99, **kw) == 1  # min_keep
    assert adaptive_cutoff(scores, background_percentile=99, min_keep=0, **kw) == 0
    assert adaptive_cutoff(scores, background_percentile=10, min_score=0.4, **kw) == 2
    assert adaptive_cutoff(scores, min_score=0.2, gap_ratio=math.inf) == 3


def test_cutoff_keeps_gapless_rankings() -> None:
    assert adaptive_cutoff(np.linspace(0.9, 0.1, 80).tolist()) == 80
    # The top of a large Gaussian pool: raw drops shrink like 1/rank, which an unscaled
    # largest-gap rule would mistake for a gap after the first result.
    rng = np.random.default_rng(0)
    top = np.sort(rng.normal(0.25, 0.03, 10_000))[::-1][:200]
    assert adaptive_cutoff(top.tolist()) == 200


def test_cutoff_gap_after_first_and_float_noise() -> None:
    assert adaptive_cutoff([0.9, *np.linspace(0.3, 0.2, 30).tolist()]) == 1
    assert adaptive_cutoff([1.0] * 10 + [1.0 - 1e-9] * 5) == 15  # min_gap ignores float noise


def test_cutoff_min_keep_and_edges() -> None:
    scores = matches_then_noise()
    assert adaptive_cutoff(scores, min_keep=5) == 5
    assert adaptive_cutoff(scores[:2], min_keep=5) == 2
    assert adaptive_cutoff([]) == 0
    assert adaptive_cutoff([0.4]) == 1
    assert adaptive_cutoff([0.4, 0.4, 0.4]) == 3
    with pytest.raises(ValueError, match="sorted"):
        adaptive_cutoff([0.1, 0.5])
    with pytest.raises(ValueError, match="min_keep"):
        adaptive_cutoff([0.5], min_keep=-1)
    with pytest.raises(ValueError, match="percentile"):
        adaptive_cutoff([0.5], background=[0.1], background_percentile=101)


# --- calibrate_modalities -----------------------------------------------------------------


def test_calibrate_by_hand() -> None:
    reference = {"text": [0.4, 0.5, 0.6], "image": [0.1, 0.2, 0.3]}  # sample std 0.1 each
    scores = {"text": {1: 0.52, 2: 0.70}, "image": {10: 0.35, 11: 0.15}}
    out = calibrate_modalities(scores, reference)
    assert out == pytest.approx({2: 2.0, 10: 1.5, 1: 0.2, 11: -0.5})
    assert list(out) == [2, 10, 1, 11]


def test_calibrate_fixes_the_modality_gap() -> None:
    rng = np.random.default_rng(4)
    image_ref = rng.normal(0.20, 0.04, 1000)
    text_ref = image_ref + 0.3  # text scores run systematically 0.3 higher
    text = {1: 0.52, 2: 0.55}  # mediocre text hits: around the text median
    image = {10: 0.34, 11: 0.21}  # 10 is far into the image tail
    raw = {**text, **image}
    assert ranked(raw)[:2] == [2, 1]  # raw scores put every text first
    out = calibrate_modalities(
        {"text": text, "image": image}, {"text": text_ref, "image": image_ref}
    )
    assert ranked(out)[0] == 10
    assert out[10] > out[2] > out[1] > out[11]  # image tail > text median > image median
    assert out[10] > out[11] and out[2] > out[1]  # monotonic within each modality


def test_calibrate_edge_cases() -> None:
    ref = {"text": [0.1, 0.3]}
    assert calibrate_modalities({}, ref) == {}
    assert calibrate_modalities({"text": {}, "image": {}}, ref) == {}
    with pytest.raises(ValueError, match="reference"):
        calibrate_modalities({"image": {1: 0.2}}, ref)
    with pytest.raises(ValueError, match="reference"):
        calibrate_modalities({"text": {1: 0.2}}, {"text": [0.1]})
    with pytest.raises(ValueError, match="zero spread"):
        calibrate_modalities({"text": {1: 0.2}}, {"text": [0.1, 0.1]})
    with pytest.raises(ValueError, match="more than one modality"):
        calibrate_modalities(
            {"text": {1: 0.2}, "image": {1: 0.3}}, {"text": [0, 1], "image": [0, 1]}
        )


def test_separation_cut_finds_a_clear_head_and_leaves_noise_alone() -> None:
    from mmsearch.search.fusion import separation_cut

    rng = np.random.default_rng(3)
    noise = sorted(rng.normal(0.2, 0.05, 60), reverse=True)
    assert separation_cut([0.93, 0.92, 0.9, *noise]) == 3
    for seed in range(5):
        gapless = sorted(np.random.default_rng(seed).normal(0, 1, 10_000), reverse=True)
        assert separation_cut(gapless) is None
    assert separation_cut([0.5, 0.4]) is None  # too short to judge


def test_separation_cut_is_not_hidden_by_a_few_outliers_far_below() -> None:
    """The Quick start's query ("a cup of coffee" over scikit-image's photos, offline
    model): coffee stands apart, and a few blanks far below the slope inflated the
    standard deviation of the tail enough to hide it."""
    from mmsearch.search.fusion import separation_cut

    head, slope = 0.447, [0.332, 0.328, 0.3, 0.29, 0.274, 0.273, 0.272, 0.271, 0.271]
    slope += [0.269, 0.268, 0.267, 0.265, 0.264, 0.262, 0.261, 0.255, 0.254, 0.253, 0.253]
    slope += [0.25, 0.25, 0.238, 0.235, 0.234, 0.226, 0.219]
    assert separation_cut([head, *slope]) == 1
    assert separation_cut([head, *slope, 0.058]) == 1
    assert separation_cut([head, *slope, 0.06, 0.05, 0.04]) == 1
    rng = np.random.default_rng(7)
    noise = sorted(rng.normal(0.2, 0.02, 60), reverse=True)
    assert separation_cut([0.93, 0.92, 0.9, *noise, -0.5, -0.6, -0.7]) == 3


def test_separation_cut_leaves_noise_with_outliers_alone() -> None:
    from mmsearch.search.fusion import separation_cut

    for seed in range(5):
        rng = np.random.default_rng(seed)
        tail = sorted([*rng.normal(0, 1, 500), -8.0, -9.0, -10.0], reverse=True)
        assert separation_cut(tail) is None  # low outliers make no head
    assert separation_cut([0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.1]) is None  # a flat tail


def test_robust_spread_is_sigma_for_gaussians_and_ignores_a_few_outliers() -> None:
    from mmsearch.search.fusion import robust_spread

    values = np.random.default_rng(11).normal(5.0, 2.0, 20_000)
    assert robust_spread(values) == pytest.approx(2.0, rel=0.03)
    spoiled = np.concatenate([values[:200], [-1e6, 1e6, 1e9]])
    assert robust_spread(spoiled) == pytest.approx(robust_spread(values[:200]), rel=0.05)
    assert robust_spread([1.0]) == 0.0
    assert robust_spread([]) == 0.0
