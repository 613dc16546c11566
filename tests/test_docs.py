"""The README and docs/ a newcomer reads: short README, the two commands, links that resolve."""

import re
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

DOCUMENTS = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
# [text](target) outside code; images too. Targets with a scheme (https:, mailto:) are not
# files here.
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
CODE = re.compile(r"```.*?```|`[^`\n]*`", re.S)
FENCED = re.compile(r"```.*?```", re.S)


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(document: Path) -> set[str]:
    text = FENCED.sub("", document.read_text(encoding="utf-8"))
    return {_anchor(line.lstrip("#")) for line in text.splitlines() if line.startswith("#")}


def _links(document: Path) -> list[str]:
    return LINK.findall(CODE.sub("", document.read_text(encoding="utf-8")))


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.name)
def test_every_relative_link_resolves(document: Path):
    broken = []
    for target in _links(document):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:, ...
            continue
        path, _, anchor = target.partition("#")
        file = (document.parent / path).resolve() if path else document
        if not file.exists():
            broken.append(target)
        elif anchor and file.suffix == ".md" and anchor not in _anchors(file):
            broken.append(target)
    assert broken == []


def test_the_checker_sees_a_broken_link(tmp_path: Path):
    document = tmp_path / "doc.md"
    document.write_text("# A title\n## `predict`, in short\n"
                        "[ok](#a-title) [gone](missing.md) `[code](not-a-link.md)`\n"
                        "```\n# not a heading\n```\n")
    assert _links(document) == ["#a-title", "missing.md"]
    assert _anchors(document) == {"a-title", "predict-in-short"}


def test_readme_fits_a_screenful_per_topic_and_keeps_the_two_commands():
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 200
    assert "make run" in readme and "make test" in readme
    for document in ("cli.md", "pipeline.md", "performance.md", "running_at_scale.md"):
        assert f"docs/{document}" in readme, document
