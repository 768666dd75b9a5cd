"""ci/drift_report.py: every arm's drift against the nightly's tolerance, and verdict changes."""
import importlib.util
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("drift_report", ROOT / "ci" / "drift_report.py")
drift_report = importlib.util.module_from_spec(spec)
spec.loader.exec_module(drift_report)


def _results(values_by_arm, verdict="inconclusive"):
    return {"claims": [{"id": "c", "verdict": verdict}],
            "runs": [{"arm": arm, "seed": i, "status": "ok", "metrics": {"test_acc": v}}
                     for arm, values in values_by_arm.items() for i, v in enumerate(values)]}


def test_arm_rows_on_hand_computed_values():
    reference = _results({"a": [30.0, 32.0, 31.0], "b": [10.0, 10.0, 10.0]})
    fresh = _results({"a": [30.0, 32.0, 34.0], "b": [10.0, 10.0, 10.0]}, verdict="reproduced")
    rows = {r["arm"]: r for r in drift_report.compare_arms(reference, fresh)}
    # reference sd of a = 1, n = 3: tolerance = t(0.995, 2) * 1 * sqrt(2/3) = 9.925 * 0.8165
    assert rows["a"]["tolerance"] == pytest.approx(9.9248 * (2 / 3) ** 0.5, rel=1e-4)
    assert rows["a"]["diff"] == pytest.approx(1.0) and rows["a"]["max_seed_abs_diff"] == pytest.approx(3.0)
    assert rows["a"]["seeds_identical"] == 2 and rows["a"]["within_tolerance"]
    assert rows["b"]["tolerance"] == 0 and rows["b"]["ratio_to_tolerance"] is None and rows["b"]["within_tolerance"]
    changed = drift_report.compare_verdicts(reference, fresh)
    assert changed == [{"claim": "c", "reference": "inconclusive", "fresh": "reproduced", "changed": True}]


def test_a_moved_arm_is_outside_tolerance_and_a_missing_arm_is_reported():
    reference = _results({"a": [30.0, 32.0, 31.0], "b": [1.0, 2.0, 3.0]})
    fresh = _results({"a": [50.0, 52.0, 51.0]})
    rows = {r["arm"]: r for r in drift_report.compare_arms(reference, fresh)}
    assert not rows["a"]["within_tolerance"] and rows["a"]["ratio_to_tolerance"] > 1
    assert rows["b"]["fresh_mean"] is None and not rows["b"]["within_tolerance"]
    assert "Arms outside tolerance: a, b." in drift_report.markdown({
        "name": "x", "nightly_created": "now", "chapters": [{
            "chapter": "ch", "status": "drift", "execute_s": 1.0, "nightly_drifts": [],
            "reference": {"git_commit": "abc", "versions": {"torch": "1"}},
            "fresh": {"git_commit": "def", "versions": {"torch": "2"}},
            "arms": list(rows.values()), "verdicts": []}]})
