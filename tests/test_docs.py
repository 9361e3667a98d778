"""README.md and docs/*.md are user reference: no journal in them, and every link and picture resolves.

Journal markers (times of day, issue numbers, commit ids, load-average narration) belong in CHANGELOG.md and
commit messages. Code blocks, inline code and URLs are not checked for them: commands and addresses such as
`tcp://host:8786` or `--workers local:2` are not times of day.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# Pages (or one section of a page) exempt from the journal check: path -> None (the whole page) or the heading
# that starts the exempt section. Links and pictures are checked on every page regardless.
PENDING_CLEANUP: dict[str, str | None] = {}

# Pictures that may be missing (drawn by a benchmark that has not run yet).
PENDING_FILES: set[str] = set()

JOURNAL = {
    "a time of day": re.compile(r"(?<![\w:./#-])(?:[01]?\d|2[0-3]):[0-5]\d(?![\w:/])"),
    "an issue or pull-request number": re.compile(r"\b(?:issue|pr|pull request)s?\s*#?\d+\b|(?<![\w&/])#\d+\b",
                                                  re.IGNORECASE),
    "a commit id": re.compile(r"\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{7,40}\b"),
    "load-average narration": re.compile(r"\bload(?: average)?s?(?: of| was)? \d", re.IGNORECASE),
}


def prose(text: str) -> list[tuple[int, str]]:
    """(line number, text) of the lines outside fenced and indented code blocks, with inline code and URLs
    blanked out."""
    out, fenced, prev_blank = [], False, True
    indented = False
    for no, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
            continue
        if fenced:
            continue
        # an indented block starts after a blank line and runs while lines stay indented (or blank)
        if line.startswith(("    ", "\t")) and (prev_blank or indented):
            indented = True
            continue
        if line.strip():
            indented = False
        prev_blank = not line.strip()
        line = re.sub(r"`[^`]*`", "``", line)
        line = re.sub(r"\]\([^)]*\)", "]()", line)
        line = re.sub(r"<?\b(?:https?|tcp|file)://\S+", "", line)
        out.append((no, line))
    return out


def journal_markers(text: str) -> list[str]:
    """Every journal marker in the prose of `text`, as 'line N: kind: match'."""
    found = []
    for no, line in prose(text):
        for kind, rx in JOURNAL.items():
            for m in rx.finditer(line):
                found.append(f"line {no}: {kind}: {m.group(0)!r}")
    return found


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    h = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", h).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Anchors of the headings of a Markdown file (duplicates get -1, -2, ... as on GitHub)."""
    seen: dict[str, int] = {}
    out = set()
    fenced = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        if fenced or not re.match(r"#{1,6} ", line):
            continue
        s = slug(line.lstrip("#"))
        out.add(s if s not in seen else f"{s}-{seen[s]}")
        seen[s] = seen.get(s, 0) + 1
    return out


def links(text: str) -> list[tuple[int, str]]:
    """(line number, target) of every Markdown link, image and HTML src/href in the prose of `text`."""
    out = []
    fenced = False
    for no, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
            continue
        if fenced:
            continue
        line = re.sub(r"`[^`]*`", "``", line)
        out += [(no, m.group(1)) for m in re.finditer(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)", line)]
        out += [(no, m.group(1)) for m in re.finditer(r"\b(?:src|href)=\"([^\"]+)\"", line)]
    return out


def broken_links(path: Path) -> list[str]:
    """Relative links and pictures of `path` whose file (or heading anchor) does not exist."""
    bad = []
    for no, target in links(path.read_text(encoding="utf-8")):
        if re.match(r"[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):  # http:, https:, mailto:
            continue
        file_part, _, frag = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.exists() and not (dest.is_relative_to(ROOT) and rel(dest) in PENDING_FILES):
            bad.append(f"line {no}: {target} ({dest.relative_to(ROOT) if dest.is_relative_to(ROOT) else dest} "
                       "does not exist)")
        elif frag and dest.suffix == ".md" and frag not in anchors(dest):
            bad.append(f"line {no}: {target} (no heading #{frag} in {dest.name})")
    return bad


def rel(p: Path) -> str:
    return p.relative_to(ROOT).as_posix()


def without_section(text: str, heading: str) -> str:
    """`text` with the section that starts at the line `heading...` blanked (up to the next heading of the same
    or a higher level); line numbers stay as in the file."""
    lines = text.splitlines()
    level = len(heading) - len(heading.lstrip("#"))
    out, skipping = [], False
    for line in lines:
        m = re.match(r"(#{1,6}) ", line)
        if line.startswith(heading):
            skipping = True
        elif skipping and m and len(m.group(1)) <= level:
            skipping = False
        out.append("" if skipping else line)
    return "\n".join(out)


@pytest.mark.parametrize("path", DOCS, ids=rel)
def test_user_docs_hold_no_journal(path):
    text = path.read_text(encoding="utf-8")
    if rel(path) in PENDING_CLEANUP:
        section = PENDING_CLEANUP[rel(path)]
        if section is None:
            pytest.skip(f"{rel(path)} is being rewritten on another branch (PENDING_CLEANUP in this file)")
        text = without_section(text, section)
    found = journal_markers(text)
    assert not found, (f"{rel(path)} reads like a journal; move history to CHANGELOG.md and keep one date, the "
                       "machine and the command per measurement:\n  " + "\n  ".join(found))


@pytest.mark.parametrize("path", DOCS, ids=rel)
def test_every_relative_link_and_picture_exists(path):
    bad = broken_links(path)
    assert not bad, f"{rel(path)} links to what does not exist:\n  " + "\n  ".join(bad)


def test_the_checks_catch_what_they_should_and_spare_commands():
    assert journal_markers("measured at 10:44 on the idle machine")
    assert journal_markers("fixed in issue #21") and journal_markers("see issue 7") and journal_markers("(#12)")
    assert journal_markers("since 58e4552 the table holds")
    assert journal_markers("2.1 s at load 12") and journal_markers("(load average 4-15)")
    spared = ("`--workers local:2`, tcp://scheduler:8786 and 127.0.0.1:8000; a 16:9 frame; "
              "sha256 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef; 2026-12-03; "
              "the decade; a 1,204-row file; `git log 58e4552`")
    assert not journal_markers(spared), journal_markers(spared)
    assert not journal_markers("text\n\n    fraud score --at 10:44\n\nmore text")
    assert not journal_markers("```\n12:30\n```")
    assert slug("Measured (2026-12-03, 2 cores)") == "measured-2026-12-03-2-cores"
    assert without_section("# A\n## B\nat 10:44\n## C\nok", "## B") == "# A\n\n\n## C\nok"
