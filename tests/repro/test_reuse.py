"""Re-judging on committed runs: stored records stand in for training only when the parameters match."""
import json

import pytest
import yaml

from lib.repro import Chapter
from lib.repro.reuse import ReuseError


@pytest.fixture
def chapter(tmp_path, monkeypatch):
    folder = tmp_path / "papers" / "toy"
    folder.mkdir(parents=True)
    (folder / "scales.yaml").write_text(yaml.safe_dump({"reduced": {"seeds": 3, "epochs": 2, "lr": 0.1},
                                                         "smoke": {"seeds": 1, "epochs": 1, "lr": 0.1}}))
    (folder / "claims.yaml").write_text(yaml.safe_dump({"claims": [
        {"id": "a-beats-b", "text": "t", "kind": "statistical", "source": "paper", "paper": {}, "arms": ["a", "b"],
         "metric": "acc", "claimed_effect": 1.0}]}))
    monkeypatch.setenv("REPRO_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("REPRO_RESULTS_DIR", str(tmp_path / "results"))
    return Chapter("toy", root=tmp_path)


def _fake(arm, seed, run_dir):
    return {"metrics": {"acc": 50.0 + seed + (2.0 if arm == "a" else 0.0)}}


def _stored(chapter, tmp_path, **values):
    params = chapter.parameters({"scale": "reduced", **values}, before=set())
    runs = chapter.run(["a", "b"], [0, 1, 2], _fake, params, workers=1)
    results = chapter.report(params, runs)
    path = tmp_path / "stored.json"
    path.write_text(json.dumps(results))
    return path, results


def test_stored_records_replace_training_and_the_results_say_so(chapter, tmp_path, monkeypatch):
    path, stored = _stored(chapter, tmp_path)
    monkeypatch.setenv("REPRO_RUNS_DIR", str(tmp_path / "fresh-runs"))
    monkeypatch.setenv("REPRO_REUSE_RESULTS", str(path))
    fresh = Chapter("toy", root=chapter.dir.parents[1])

    def must_not_train(*args):
        raise AssertionError("a stored run was trained again")

    params = fresh.parameters({"scale": "reduced"}, before=set())
    runs = fresh.run(["a", "b"], [0, 1, 2], must_not_train, params, workers=1)
    assert [r["metrics"] for r in runs] == [r["metrics"] for r in stored["runs"]]
    results = fresh.report(params, runs)
    assert results["reused_runs"]["from"]["file"] == str(path)
    assert len(results["reused_runs"]["runs"]) == 6
    assert [c["verdict"] for c in results["claims"]] == [c["verdict"] for c in stored["claims"]]


def test_a_run_missing_from_the_file_is_trained(chapter, tmp_path, monkeypatch):
    path, _ = _stored(chapter, tmp_path)
    monkeypatch.setenv("REPRO_RUNS_DIR", str(tmp_path / "fresh-runs"))
    monkeypatch.setenv("REPRO_REUSE_RESULTS", str(path))
    fresh = Chapter("toy", root=chapter.dir.parents[1])
    trained = []
    params = fresh.parameters({"scale": "reduced", "seeds": 4}, before=set())
    fresh.run(["a", "b"], [0, 1, 2, 3], lambda arm, seed, d: trained.append((arm, seed)) or _fake(arm, seed, d),
              params, workers=1)
    assert trained == [("a", 3), ("b", 3)]


def test_other_parameters_are_refused_naming_the_values(chapter, tmp_path, monkeypatch):
    path, _ = _stored(chapter, tmp_path)
    monkeypatch.setenv("REPRO_REUSE_RESULTS", str(path))
    params = chapter.parameters({"scale": "reduced", "lr": 0.2}, before=set())
    with pytest.raises(ReuseError, match=r"lr \(stored 0.1, now 0.2\)"):
        chapter.run(["a", "b"], [0], _fake, params, workers=1)
    monkeypatch.setenv("REPRO_REUSE_RESULTS", str(tmp_path / "nope.json"))
    with pytest.raises(ReuseError, match="does not exist"):
        chapter.run(["a", "b"], [0], _fake, params, workers=1)


def test_the_previous_verdicts_travel_with_the_reused_runs(chapter, tmp_path, monkeypatch):
    from lib.repro.tables import method_changes

    path, stored = _stored(chapter, tmp_path)
    stored["claims"][0]["verdict"] = "contradicted"          # as an older rule had judged it
    stored["judged"] = {"method": "v0", "runs_commit": "abc"}
    path.write_text(json.dumps(stored))
    monkeypatch.setenv("REPRO_RUNS_DIR", str(tmp_path / "fresh-runs"))
    monkeypatch.setenv("REPRO_REUSE_RESULTS", str(path))
    fresh = Chapter("toy", root=chapter.dir.parents[1])
    params = fresh.parameters({"scale": "reduced"}, before=set())
    results = fresh.report(params, fresh.run(["a", "b"], [0, 1, 2], _fake, params, workers=1))
    assert results["judged"]["runs_commit"] == "abc"
    table = method_changes(results)
    assert table.loc["a-beats-b", "v0 verdict"] == "contradicted"
    assert table.loc["a-beats-b", "changed"] == ("yes" if results["claims"][0]["verdict"] != "contradicted" else "")


def _gated_toy(tmp_path, monkeypatch, preset: dict, gated: dict[str, str]) -> Chapter:
    """A toy chapter whose claims ``{treatment: control}`` each carry a plateau gate on the control (3 points, 2
    seeds), with its runs and results kept under ``tmp_path``."""
    folder = tmp_path / "papers" / "toy"
    folder.mkdir(parents=True)
    (folder / "scales.yaml").write_text(yaml.safe_dump({"reduced": preset}))
    gate = {"kind": "plateau", "metric": "acc", "max_change": 3.0, "seeds": 2}
    claim = {"text": "t", "kind": "statistical", "source": "paper", "paper": {}, "metric": "acc"}
    (folder / "claims.yaml").write_text(yaml.safe_dump({
        "gates": {f"plateau-{b}": {**gate, "arm": b, "rule": f"{b} within 3 points at twice the epochs, 2 seeds"}
                  for b in gated.values()},
        "claims": [{**claim, "id": f"{a}-beats-{b}", "arms": [a, b], "claimed_effect": 1.0, "gate": f"plateau-{b}"}
                   for a, b in gated.items()]}))
    monkeypatch.setenv("REPRO_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("REPRO_RESULTS_DIR", str(tmp_path / "results"))
    return Chapter("toy", root=tmp_path)


def test_plateau_gates_train_the_gated_arm_at_twice_the_epochs_and_judge_with_it(tmp_path, monkeypatch):
    chapter = _gated_toy(tmp_path, monkeypatch, {"seeds": 3, "epochs": 2}, {"a": "b"})
    params = chapter.parameters({"scale": "reduced"}, before=set())

    def noisy(arm, seed, run_dir):   # a − b = 2.0, 2.1, 2.4 over the seeds
        return {"metrics": {"acc": 50.0 + seed + (2.0 + 0.1 * seed ** 2 if arm == "a" else 0.0)}}

    runs = chapter.run(["a", "b"], [0, 1, 2], noisy, params, workers=1)
    trained = []

    def doubled(epoch_gain):
        def run_one(arm, seed, run_dir):
            trained.append((arm, seed))
            return {"metrics": {"acc": _fake(arm, seed, run_dir)["metrics"]["acc"] + epoch_gain}}
        return run_one

    gates, gate_runs = chapter.plateau_gates(runs, doubled(1.0), params, workers=1)
    assert trained == [("b", 0), ("b", 1)]
    assert gates["plateau-b"]["values"] == [50.0, 51.0] and gates["plateau-b"]["doubled_values"] == [51.0, 52.0]
    passed = chapter.report(params, runs, extra={"gates": gates, "gate_runs": gate_runs})
    assert passed["claims"][0]["verdict"] == "reproduced"      # a − b ≈ +2 on every seed, and the gate holds
    assert passed["gate_parameters"]["epochs"] == 4 and len(passed["gate_runs"]) == 2
    monkeypatch.setenv("REPRO_RUNS_DIR", str(tmp_path / "runs-2"))
    gates, gate_runs = chapter.plateau_gates(runs, doubled(5.0), params, workers=1)   # still climbing at twice the epochs
    failed = chapter.report(params, runs, extra={"gates": gates, "gate_runs": gate_runs})
    assert failed["claims"][0]["verdict"] == "not-tested-at-this-scale"
    assert "under-trained" in failed["claims"][0]["summary"]
    # re-judging on the stored file reuses the gate runs too
    stored = tmp_path / "stored.json"
    stored.write_text(json.dumps(passed))
    monkeypatch.setenv("REPRO_RUNS_DIR", str(tmp_path / "runs-3"))
    monkeypatch.setenv("REPRO_REUSE_RESULTS", str(stored))
    fresh = Chapter("toy", root=tmp_path)
    trained.clear()
    again = fresh.run(["a", "b"], [0, 1, 2], noisy, params, workers=1)
    fresh.plateau_gates(again, doubled(1.0), params, workers=1)
    assert trained == []


def test_plateau_gates_double_each_gate_arms_own_epochs_parameter(tmp_path, monkeypatch):
    chapter = _gated_toy(tmp_path, monkeypatch, {"seeds": 2, "epochs": 3, "small_epochs": 5}, {"a": "b", "c": "d"})
    params = chapter.parameters({"scale": "reduced"}, before=set())
    runs = chapter.run(["a", "b", "c", "d"], [0, 1], _fake, params, workers=1)
    with pytest.raises(ValueError, match="no epochs parameter for gate arm.*d; given for: b"):
        chapter.plateau_gates(runs, _fake, params, epochs_key={"b": "epochs"}, workers=1)
    gates, gate_runs = chapter.plateau_gates(runs, _fake, params, epochs_key={"b": "epochs", "d": "small_epochs"},
                                             workers=1)
    assert (gates["plateau-b"]["epochs"], gates["plateau-b"]["doubled_epochs"]) == (3, 6)
    assert (gates["plateau-d"]["epochs"], gates["plateau-d"]["doubled_epochs"]) == (5, 10)
    assert sorted({r["arm"] for r in gate_runs}) == ["b", "d"]
    assert (chapter.gate_parameters["epochs"], chapter.gate_parameters["small_epochs"]) == (6, 10)


def test_plateau_gates_take_borrowed_doubled_runs_instead_of_training(tmp_path, monkeypatch):
    chapter = _gated_toy(tmp_path, monkeypatch, {"seeds": 2, "epochs": 2}, {"a": "b"})
    params = chapter.parameters({"scale": "reduced"}, before=set())
    runs = chapter.run(["a", "b"], [0, 1], _fake, params, workers=1)
    theirs = [{"arm": "b", "seed": s, "status": "ok", "metrics": {"acc": 60.0 + s}, "history": [{}] * 4,
               "borrowed_from": {"chapter": "bench"}} for s in (0, 1)]
    trained = []

    def doubled(arm, seed, run_dir):
        trained.append((arm, seed))
        return _fake(arm, seed, run_dir)

    gates, gate_runs = chapter.plateau_gates(runs, doubled, params, workers=1, borrowed=theirs)
    assert trained == [] and gate_runs == theirs
    assert gates["plateau-b"]["doubled_values"] == [60.0, 61.0]
    gates, gate_runs = chapter.plateau_gates(runs, doubled, params, workers=1, borrowed=theirs[:1])  # a seed missing
    assert trained == [("b", 0), ("b", 1)]
    with pytest.raises(ValueError, match="borrowed b seed 0 trained 3 epochs, the gate needs 4"):
        chapter.plateau_gates(runs, doubled, params, workers=1,
                              borrowed=[{**r, "history": [{}] * 3} for r in theirs])
