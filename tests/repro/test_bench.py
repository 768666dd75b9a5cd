"""lib.repro.bench: a chapter borrows another's runs only when setup and shared control are identical."""
import pytest

from lib.repro.bench import bench_parameters, borrow, same_control, same_setup

SOURCE = {"files_sha256": "f" * 64, "indices_sha256": "i" * 64, "rows": 10000}


def reference(**overrides):
    ref = {
        "chapter": "isda", "scale": "reduced", "git_commit": "c0ffee",
        "parameters": {"depth": 8, "epochs": 30, "lr": 0.1, "arms": ["ce", "isda"], "lambda0": 0.5,
                       "small_epochs": 120, "overrides": {}},
        "data": {"cifar10": {"train": dict(SOURCE), "train_small": {**SOURCE, "rows": 1000},
                             "test": {**SOURCE, "rows": 5000}}},
        "runs": [{"arm": a, "seed": s, "status": "ok", "metrics": {"test_acc": 70.0 + s + (a == "isda"),
                                                                  "train_loss": 0.5 - s / 100}}
                 for s in range(3) for a in ("ce", "isda")],
    }
    ref.update(overrides)
    return ref


def mine(**extra):
    return {"depth": 8, "epochs": 30, "lr": 0.1, "arms": ["ls", "ols"], "smoothing": 0.1, "overrides": {"x": 1},
            **extra}


MY_DATA = {"cifar10": {"train": dict(SOURCE), "train_noisy": {**SOURCE, "files_sha256": "n" * 64},
                       "test": {**SOURCE, "rows": 5000}}}


def test_parameters_of_either_side_only_are_differences_unless_named():
    check = same_setup(mine(), MY_DATA, reference(), splits=("train", "test"))
    assert not check.ok
    assert sorted(r.split(":")[0] for r in check.reasons) == [
        "parameter lambda0", "parameter small_epochs", "parameter smoothing"]
    named = same_setup(mine(), MY_DATA, reference(), arm_parameters=("lambda0", "small_epochs", "smoothing"),
                       splits=("train", "test"))
    assert named.ok, named.reasons


def test_a_shared_parameter_that_differs_fails_even_when_others_are_named():
    check = same_setup(mine(epochs=31), MY_DATA, reference(), arm_parameters=("lambda0", "small_epochs", "smoothing"),
                       splits=("train", "test"))
    assert not check.ok and check.reasons == ["parameter epochs: 31 here, 30 in isda"]


def test_data_splits_compared_by_digest_and_only_those_named():
    everything = same_setup(mine(), MY_DATA, reference(), arm_parameters=("lambda0", "small_epochs", "smoothing"))
    assert sorted(everything.reasons) == ["data cifar10/train_noisy: present here, absent in isda",
                                          "data cifar10/train_small: absent here, present in isda"]
    changed = {"cifar10": {**MY_DATA["cifar10"], "test": {**SOURCE, "rows": 5000, "indices_sha256": "j" * 64}}}
    check = same_setup(mine(), changed, reference(), arm_parameters=("lambda0", "small_epochs", "smoothing"),
                       splits=("train", "test"))
    assert check.reasons == [f"data cifar10/test indices_sha256: {'j' * 64!r} here, {'i' * 64!r} in isda"]
    missing = same_setup(mine(), {"cifar10": {"train": dict(SOURCE)}}, reference(),
                         arm_parameters=("lambda0", "small_epochs", "smoothing"), splits=("train", "test"))
    assert missing.reasons == ["data cifar10/test: absent here, present in isda"]


def test_arm_parameters_cannot_hide_the_always_ignored_keys():
    with pytest.raises(ValueError, match="arms"):
        same_setup(mine(), MY_DATA, reference(), arm_parameters=("arms",))
    assert bench_parameters(mine(), ("smoothing",)) == {"depth": 8, "epochs": 30, "lr": 0.1}


def test_same_control_needs_bit_identical_runs_of_the_shared_arm():
    ref = reference()
    ours = [{"arm": "ce", "seed": 0, "status": "ok", "metrics": {"test_acc": 70.0, "train_loss": 0.5}},
            {"arm": "ls", "seed": 0, "status": "ok", "metrics": {"test_acc": 99.0, "train_loss": 0.1}}]
    check = same_control(ours, ref, arms=["ce"])
    assert check.ok and check.details["runs_compared"] == 1
    ours[0]["metrics"]["train_loss"] = 0.5 + 1e-12
    check = same_control(ours, ref, arms=["ce"])
    assert not check.ok and "train_loss" in check.reasons[0] and "threads" not in check.reasons[0]
    ours[0]["segments"] = [{"first_epoch": 0, "threads": 2}]
    ref["runs"][0]["segments"] = [{"first_epoch": 0, "threads": 1}]
    assert "[2] threads here, [1] there" in same_control(ours, ref, arms=["ce"]).reasons[0]
    assert not same_control(ours[1:], ref, arms=["ce"]).ok                    # nothing compared is not a pass
    failed = [{"arm": "ce", "seed": 0, "status": "failed", "metrics": {}}]
    assert same_control(failed, ref, arms=["ce"]).reasons == ["ce seed 0: failed here"]
    unknown = [{"arm": "ce", "seed": 7, "status": "ok", "metrics": {"test_acc": 1.0, "train_loss": 1.0}}]
    assert same_control(unknown, ref, arms=["ce"]).reasons == ["ce seed 7: no such run in isda"]


def test_borrow_marks_origin_and_refuses_missing_seeds():
    ref = reference()
    got = borrow(ref, ["ce"], [1, 2])
    assert [(r["arm"], r["seed"]) for r in got] == [("ce", 1), ("ce", 2)]
    assert all(r["borrowed_from"] == {"chapter": "isda", "scale": "reduced", "commit": "c0ffee"} for r in got)
    assert not any("borrowed_from" in r for r in ref["runs"])                # the reference is not modified
    with pytest.raises(KeyError, match=r"\('ce', 5\)"):
        borrow(reference(), ["ce"], [1, 5])


def test_only_committed_results_are_a_reference(tmp_path):
    import json
    import subprocess

    from lib.repro.bench import committed_results

    git = lambda *a: subprocess.run(["git", *a], cwd=tmp_path, check=True, capture_output=True)  # noqa: E731
    git("init", "-q")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "root")
    results = tmp_path / "papers" / "isda" / "results"
    results.mkdir(parents=True)
    (results / "reduced.json").write_text(json.dumps(reference()))
    (results / "smoke.json").write_text(json.dumps(reference()))
    (results / "full.json").write_text(json.dumps(reference()))
    git("add", "papers/isda/results/reduced.json", "papers/isda/results/full.json")
    with pytest.raises(FileNotFoundError, match="exist but are not committed"):   # staged is not committed
        committed_results("isda", "reduced", root=tmp_path)
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "results")
    assert committed_results("isda", "reduced", root=tmp_path)["git_commit"] == "c0ffee"
    (results / "reduced.json").write_text(json.dumps(reference(git_commit="rerun")))   # overwritten by a later run
    assert committed_results("isda", "reduced", root=tmp_path)["git_commit"] == "c0ffee"   # HEAD's, not the copy
    with pytest.raises(FileNotFoundError, match="smoke.json exist but are not committed"):
        committed_results("isda", "smoke", root=tmp_path)
    with pytest.raises(FileNotFoundError, match="do not exist"):
        committed_results("isda", "nightly", root=tmp_path)
    outside = tmp_path / "copy"                                               # a lib copied out of any checkout
    (outside / "papers" / "isda" / "results").mkdir(parents=True)
    (outside / "papers" / "isda" / "results" / "reduced.json").write_text(json.dumps(reference()))
    assert committed_results("isda", "reduced", root=outside)["chapter"] == "isda"
