import numpy as np
import pytest

from orbitml.cosmic.evaluate import detection_at_fpr, hit_metrics, mask_rates, tpr_at_fpr_from_points


def test_detection_at_fpr_against_sklearn_roc():
    from sklearn.metrics import roc_curve

    rng = np.random.default_rng(0)
    truth = rng.random(20000) < 0.05
    score = rng.normal(0, 1, truth.size) + 2.5 * truth
    res = detection_at_fpr(score, truth, (1e-3, 1e-2, 0.1))
    fpr, tpr, _ = roc_curve(truth, score)
    for f, r in res.items():
        assert r["fpr_actual"] <= f
        # the best operating point of the exact ROC with fpr <= f
        assert r["tpr"] == pytest.approx(tpr[fpr <= f].max(), abs=1.0 / truth.sum() + 1e-12)


def test_perfect_and_useless_scores():
    truth = np.zeros((50, 50), bool)
    truth[10:12, 10:30] = True
    assert detection_at_fpr(truth.astype(float), truth)[1e-3]["tpr"] == 1.0
    assert detection_at_fpr(np.zeros(truth.shape), truth)[1e-3]["tpr"] == 0.0


def test_hit_metrics_definitions():
    hit_id = np.zeros((20, 20), np.int32)
    hit_id[2, 2:8] = 1  # 6 px
    hit_id[10, 10:12] = 2  # 2 px
    pred = np.zeros_like(hit_id, bool)
    pred[2, 2:5] = True  # 3 of 6 px: 50% -> found
    pred[10, 10] = False
    pred[15, 15] = True  # a false region
    pred[11, 12] = True  # touches hit 2 diagonally -> counted as a true region, hit 2 not found
    m = hit_metrics(pred, hit_id)
    assert (m["n_true_hits"], m["n_found"], m["n_regions"], m["n_false_regions"]) == (2, 1, 3, 1)
    assert m["recall"] == 0.5 and m["precision"] == pytest.approx(2 / 3)
    stacked = hit_metrics(np.stack([pred, pred]), np.stack([hit_id, hit_id]))
    assert stacked["n_found"] == 2 and stacked["n_regions"] == 6


def test_mask_points_interpolation():
    truth = np.zeros(1000, bool)
    truth[:100] = True
    m = np.zeros(1000, bool)
    m[:50] = True
    m[100:109] = True  # 9 false of 900 negatives = 1%
    fpr, tpr = mask_rates(m, truth)
    assert (fpr, tpr) == (0.01, 0.5)
    assert tpr_at_fpr_from_points([(fpr, tpr)], 0.005) == pytest.approx(0.25)
    assert tpr_at_fpr_from_points([(0.01, 0.5), (0.02, 0.4)], 0.05) == 0.5  # upper envelope
