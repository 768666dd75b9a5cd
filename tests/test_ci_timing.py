"""The CI projection printed by `make test`: chapter work divides across workers, the rest is shared."""
import pytest

from conftest import ci_projection


def test_projection_on_hand_computed_durations():
    durations = {
        "_build/smoke/a.ipynb::Cell 0": 4.0, "_build/smoke/a.ipynb::Cell 1": 6.0,
        "_build/smoke/b.ipynb::Cell 0": 8.0, "tests/test_chapters.py::test_chapter_structure[a]": 0.5,
        "tests/test_chapters.py::test_chapter_structure[b]": 1.5, "tests/nn/test_x.py::test_y": 30.0,
    }
    p = ci_projection(durations, wall=40.0, workers=2, book_s=20.0, install_s=100.0, target=122)
    assert p["chapters"] == 2
    assert p["chapter_compute_s"] == pytest.approx(20.0)
    assert p["shared_compute_s"] == pytest.approx(30.0)
    assert p["per_chapter_s"] == pytest.approx(20.0 / 2 / 2 + 20.0 / 2)          # 5 s smoke + 10 s book
    assert p["projected_s"] == pytest.approx(100.0 + 30.0 / 2 + 122 * 15.0)


def test_a_chapter_named_like_a_prefix_of_another_is_not_double_counted():
    durations = {"_build/smoke/ca.ipynb::Cell 0": 1.0, "_build/smoke/triplet-ca.ipynb::Cell 0": 2.0,
                 "tests/test_chapters.py::test_chapter_structure[ca]": 0.25}
    p = ci_projection(durations, wall=3.0, workers=1, book_s=None, install_s=None)
    assert p["chapters"] == 2 and p["chapter_compute_s"] == pytest.approx(3.25) and p["shared_compute_s"] == 0
