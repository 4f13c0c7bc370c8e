"""The glossary: GLOSSARY.md is what course/glossary.toml makes, every link to it resolves, and every
lesson links the first use of each term (the lesson that teaches a term links it at least once)."""

import re
from pathlib import Path

from course import glossary

ROOT = Path(__file__).resolve().parent.parent


def test_glossary_md_is_generated_from_the_toml():
    terms = glossary.load_terms()

    assert glossary.GLOSSARY.read_text(encoding="utf-8") == glossary.render(terms, glossary.lesson_titles()), (
        "GLOSSARY.md is out of date: run .venv/bin/python -m course glossary")


def test_at_least_25_terms_each_defined_and_taught_in_a_lesson_that_exists():
    terms = glossary.load_terms()
    titles = glossary.lesson_titles()

    assert len(terms) >= 25
    assert len({t.anchor for t in terms}) == len(terms), "two terms share an anchor"
    assert [t.term for t in terms if t.lesson not in titles] == []
    assert [t.term for t in terms if len(t.definition.split()) < 8] == []
    assert [t.term for t in terms if not (t.words or t.code)] == [], "a term no prose can use"


def test_every_glossary_link_in_the_lessons_and_notebooks_resolves():
    anchors = {glossary.slug(h) for h in re.findall(r"^## (.+)$", glossary.GLOSSARY.read_text(encoding="utf-8"), re.M)}
    broken, seen = [], 0
    for folder in ("lessons", "notebooks", "solutions"):
        for path in sorted((ROOT / folder).glob("[0-9][0-9]_*.*")):
            for target, anchor in re.findall(r"\]\(((?:\.\./)?GLOSSARY\.md)#([\w-]+)\)", path.read_text(encoding="utf-8")):
                seen += 1
                if not (path.parent / target).resolve().is_file() or anchor not in anchors:
                    broken.append(f"{folder}/{path.name}: {target}#{anchor}")

    assert seen > 0
    assert broken == []


def test_every_lesson_links_the_first_use_of_each_term():
    assert glossary.problems(glossary.load_terms()) == []


def test_the_built_notebooks_carry_the_links():
    for stem in ("05_rollback_fixtures", "16_capstone"):
        lesson = (ROOT / "lessons" / f"{stem}.py").read_text(encoding="utf-8")
        for folder in ("notebooks", "solutions"):
            built = (ROOT / folder / f"{stem}.ipynb").read_text(encoding="utf-8")
            for anchor in set(re.findall(r"GLOSSARY\.md#([\w-]+)", lesson)):
                assert f"GLOSSARY.md#{anchor}" in built, f"{folder}/{stem}.ipynb lacks the link to #{anchor}: rebuild it"


SAMPLE = '''# %% [markdown]
# # 07 · Sample
#
# A savepoint is explained here; another savepoint later. `SAVEPOINT` in code, and
# [a savepoint link](https://example.org) elsewhere.

# %% [markdown] tags=["key-points"]
# - the outer transaction, in the key points (quoted by the guide: never linked)

# %% [markdown]
# The outer transaction survives. See the [outer transaction](../GLOSSARY.md#outer-transaction) too.
#
# **Quiz 07.1.** Is a savepoint a transaction?
# - **a)** yes
'''


def sample_terms():
    return [glossary.Term("Savepoint", "07", "A named point inside a transaction, to roll back to.", ("savepoint",)),
            glossary.Term("Outer transaction", "07", "The transaction the fixture never commits.", ("outer transaction",)),
            glossary.Term("Lifespan", "03", "Start-up and shut-down code of the app.", ("lifespan",))]


def test_link_links_only_the_first_use_in_prose_and_is_idempotent():
    linked = glossary.link(SAMPLE, sample_terms(), "07")

    assert "# A [savepoint](../GLOSSARY.md#savepoint) is explained here; another savepoint later." in linked
    assert "`SAVEPOINT` in code, and\n# [a savepoint link](https://example.org)" in linked  # code and links untouched
    assert "# - the outer transaction, in the key points" in linked
    assert "# The [outer transaction](../GLOSSARY.md#outer-transaction) survives. See the [outer transaction]" not in linked
    assert "See the outer transaction too." in linked  # only the first use keeps a link
    assert "Is a savepoint a transaction?" in linked  # quiz questions are quoted by the guide: never linked
    assert glossary.link(linked, sample_terms(), "07") == linked


def test_problems_name_an_unlinked_first_use_a_missing_entry_and_an_unlinked_teaching_lesson(tmp_path):
    """Negative controls: each kind of problem is reported, and a linked lesson has none."""
    lessons = tmp_path / "lessons"
    lessons.mkdir()
    entries = tmp_path / "GLOSSARY.md"
    entries.write_text("# Glossary\n\n## Savepoint\n\n## Outer transaction\n\n## Lifespan\n", encoding="utf-8")
    (lessons / "07_sample.py").write_text(SAMPLE.replace("#outer-transaction", "#outer-transactions"), encoding="utf-8")

    found = "\n".join(glossary.problems(sample_terms(), lessons, entries))

    assert "the first use of 'Savepoint' ('savepoint') is not linked" in found
    assert "a link to ../GLOSSARY.md#outer-transactions, which GLOSSARY.md has no entry for" in found
    assert "teaches 'Savepoint' (course/glossary.toml) but never links it" in found

    (lessons / "07_sample.py").write_text(glossary.link(SAMPLE, sample_terms(), "07"), encoding="utf-8")
    assert glossary.problems(sample_terms(), lessons, entries) == []


def test_anchors_are_githubs_heading_slugs():
    assert glossary.slug("ASGI transport") == "asgi-transport"
    assert glossary.slug("conftest.py") == "conftestpy"
    assert glossary.slug("Function-scoped fixture") == "function-scoped-fixture"


BROKEN = '''# %% [markdown]
# # 07 · Sample
#
# Run `SELECT 1 inside a
# savepoint` first, read [the guide to a
# savepoint](https://example.org), and then a savepoint is explained. The outer
# transaction survives; the outer transaction survives again.
'''


def test_a_code_span_or_a_link_broken_across_lines_is_never_linked_inside_and_a_broken_term_is_its_first_use():
    """A paragraph, not a line, is the unit: the span and the link that start on one line and end on the
    next are left alone, the first use after them gets the link, and so does a term broken over two lines."""
    linked = glossary.link(BROKEN, sample_terms(), "07")

    assert "# Run `SELECT 1 inside a\n# savepoint` first, read [the guide to a\n# savepoint](https://example.org)," in linked
    assert "and then a [savepoint](../GLOSSARY.md#savepoint) is explained." in linked
    assert "The [outer\n# transaction](../GLOSSARY.md#outer-transaction) survives; the outer transaction survives again." in linked
    assert glossary.link(linked, sample_terms(), "07") == linked


def test_a_glossary_link_broken_across_lines_counts_as_the_linked_first_use(tmp_path):
    """The check accepts a link whose text is broken over two lines, and (negative control) still reports
    the same term unlinked when the link is gone."""
    lessons = tmp_path / "lessons"
    lessons.mkdir()
    entries = tmp_path / "GLOSSARY.md"
    entries.write_text("# Glossary\n\n## Savepoint\n\n## Outer transaction\n", encoding="utf-8")
    terms = sample_terms()[:2]
    (lessons / "07_sample.py").write_text(glossary.link(BROKEN, terms, "07"), encoding="utf-8")
    assert glossary.problems(terms, lessons, entries) == []

    (lessons / "07_sample.py").write_text(BROKEN, encoding="utf-8")
    found = glossary.problems(terms, lessons, entries)
    assert "lessons/07_sample.py:6: the first use of 'Savepoint' ('savepoint') is not linked" in "\n".join(found)
    assert "lessons/07_sample.py:6: the first use of 'Outer transaction' ('outer\\n# transaction') is not linked" in "\n".join(found)
