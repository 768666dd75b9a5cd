"""Generated sections: a generator rewrites its own section only."""
from lib.repro.sections import replace_section


def test_a_section_is_appended_then_replaced_in_place_and_other_text_survives(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Performance\n\nHand-written prose.\n")
    replace_section(page, "bench", "| a | 1 |")
    replace_section(page, "nightly", "drift: none")
    text = replace_section(page, "bench", "| a | 2 |")
    assert text.count("<!-- begin: bench") == 1 and "| a | 2 |" in text and "| a | 1 |" not in text
    assert "Hand-written prose." in text and "drift: none" in text
    assert text.index("bench") < text.index("nightly")   # replaced where it was, not moved to the end


def test_a_missing_page_gets_its_title(tmp_path):
    text = replace_section(tmp_path / "new.md", "bench", "x", title="Performance")
    assert text.startswith("# Performance\n")
    assert (tmp_path / "new.md").stat().st_mode & 0o777 == 0o644


def test_bodies_with_backslashes_and_group_references_are_kept_verbatim(tmp_path):
    text = replace_section(tmp_path / "p.md", "s", r"a \1 b \\ c")
    assert r"a \1 b \\ c" in replace_section(tmp_path / "p.md", "s", r"a \1 b \\ c") and text
