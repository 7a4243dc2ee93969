from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from signalsloop.benchmarks import quality as bench_quality
from signalsloop.benchmarks.quality import macro_f1, rankdata, roc_auc, spearman


def test_rankdata_averages_ties() -> None:
    assert rankdata(np.array([10.0, 20.0, 20.0, 5.0])).tolist() == [2.0, 3.5, 3.5, 1.0]


def test_spearman_is_rank_correlation() -> None:
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    assert spearman(x, x**3) == pytest.approx(1.0)
    assert spearman(x, -x) == pytest.approx(-1.0)


def test_roc_auc_counts_ordered_pairs() -> None:
    positive = np.array([True, True, False, False])
    assert roc_auc(positive, np.array([0.9, 0.8, 0.1, 0.2])) == 1.0
    assert roc_auc(positive, np.array([0.9, 0.1, 0.5, 0.2])) == 0.5
    assert roc_auc(positive, np.array([0.5, 0.5, 0.5, 0.5])) == 0.5


def test_macro_f1() -> None:
    truth = np.array([0, 1, 2, 2])
    assert macro_f1(truth, truth) == 1.0
    assert macro_f1(truth, np.array([0, 1, 2, 1])) == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)


def test_missing_data_dir_exits_2(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SIGNALSLOOP_DATA_DIR", str(tmp_path / "nope"))
    assert bench_quality.main() == 2
    captured = capsys.readouterr()
    assert "SIGNALSLOOP_DATA_DIR" in captured.err and captured.out == ""
