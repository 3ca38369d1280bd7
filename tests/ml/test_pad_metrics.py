"""PAD metrics on hand-checkable score sets."""

from __future__ import annotations

import numpy as np
import pytest

from ml import pad_metrics


def test_apcer_bpcer_count_each_side() -> None:
    live = np.array([0.9, 0.8, 0.4, 0.7])
    spoof = np.array([0.1, 0.6, 0.2, 0.3, 0.05])
    assert pad_metrics.apcer_bpcer(live, spoof, 0.5) == (pytest.approx(1 / 5), pytest.approx(1 / 4))


def test_auc_and_eer_of_separable_and_inverted_sets() -> None:
    live, spoof = np.array([0.9, 0.8]), np.array([0.1, 0.2])
    assert pad_metrics.auc(live, spoof) == 1.0
    assert pad_metrics.eer(live, spoof)[0] == 0.0
    assert pad_metrics.auc(spoof, live) == 0.0


def test_auc_counts_ties_as_half() -> None:
    assert pad_metrics.auc(np.array([0.5]), np.array([0.5])) == 0.5


SPOOF = np.array([0.1, 0.2, 0.3, 0.4, 0.9])
LIVE = np.array([0.35, 0.5, 0.95, 0.8])


@pytest.mark.parametrize(
    ("target", "accepted_above"),
    [(0.0, 0.9), (0.1, 0.9), (0.2, 0.4), (0.4, 0.3), (0.99, 0.1)],
)
def test_threshold_for_a_target_apcer(target: float, accepted_above: float) -> None:
    threshold = pad_metrics.threshold_for_apcer(SPOOF, target)
    assert accepted_above < threshold < accepted_above + 1e-9
    apcer, _ = pad_metrics.apcer_bpcer(LIVE, SPOOF, threshold)
    assert apcer <= target
    assert apcer == np.floor(target * 5) / 5  # the lowest threshold: no stricter than needed


def test_threshold_for_apcer_of_one_accepts_everything() -> None:
    assert pad_metrics.threshold_for_apcer(SPOOF, 1.0) == 0.0


def test_bpcer_at_apcer() -> None:
    threshold, bpcer = pad_metrics.bpcer_at_apcer(LIVE, SPOOF, 0.2)  # 0.9 accepted, 0.4 not
    assert threshold == pytest.approx(0.4)
    assert bpcer == 0.25  # 0.35 rejected
    assert pad_metrics.bpcer_at_apcer(LIVE, SPOOF, 0.0)[1] == 0.75  # only 0.95 above 0.9


def test_det_points_run_from_accept_all_to_reject_all() -> None:
    apcer, bpcer = pad_metrics.det_points(LIVE, SPOOF)
    assert (apcer[0], bpcer[0]) == (1.0, 0.0)
    assert (apcer[-1], bpcer[-1]) == (0.0, 1.0)
    assert np.all(np.diff(apcer) <= 0) and np.all(np.diff(bpcer) >= 0)
