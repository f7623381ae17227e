"""Generated documentation matches the code it is generated from (it cannot drift).

docs/configuration.md has its own freshness test in tests/unit/cluster/test_config.py."""

from __future__ import annotations

from tools import gen_compat_docs


def test_compatibility_matrix_is_fresh() -> None:
    document = gen_compat_docs.DOC_PATH.read_text(encoding="utf-8")
    assert document == gen_compat_docs.render(document), (
        "docs/protocol.md's API table is stale: run `python -m tools.gen_compat_docs`")


def test_section_replacement_keeps_the_rest_of_the_document() -> None:
    section = gen_compat_docs.render_section()
    before = "# Title\n\nText.\n\n"
    after = "\n## Later\n\nMore.\n"
    stale = before + gen_compat_docs.SECTION + "\n\nold table\n" + after
    assert gen_compat_docs.render(stale) == before + section + after
    assert gen_compat_docs.render("# Title\n") == "# Title\n\n" + section
