"""PAD metrics on hand-checkable score sets."""

from __future__ import annotations

import numpy as np
import pytest

from ml import metrics


def test_apcer_bpcer_count_each_side() -> None:
    live = np.array([0.9, 0.8, 0.4, 0.7])
    spoof = np.array([0.1, 0.6, 0.2, 0.3, 0.05])
    assert metrics.apcer_bpcer(live, spoof, 0.5) == (pytest.approx(1 / 5), pytest.approx(1 / 4))


def test_auc_and_eer_of_separable_and_inverted_sets() -> None:
    live, spoof = np.array([0.9, 0.8]), np.array([0.1, 0.2])
    assert metrics.auc(live, spoof) == 1.0
    assert metrics.eer(live, spoof)[0] == 0.0
    assert metrics.auc(spoof, live) == 0.0


def test_auc_counts_ties_as_half() -> None:
    assert metrics.auc(np.array([0.5]), np.array([0.5])) == 0.5
