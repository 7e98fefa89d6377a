"""Every repository path named in README.md, docs/, configs/ or scripts/ exists.

A path here is a token that starts with one of the top-level folders below and ends in a file extension
(``configs/ddp.yaml``, ``lightning_lstm/data/windows.py``); placeholders (``configs/my_data.yaml``), globs
(``configs/remedies/*.yaml``) and templates (``<name>``, ``{...}``) are skipped.
"""

from __future__ import annotations

import re

from tests.helpers import REPO

TOP = ("lightning_lstm", "docs", "configs", "scripts", "tests")
# Not preceded by a path character (so ../x/configs/a.yaml and URLs do not count); ends in .ext, not followed by more.
PATH = re.compile(rf"(?<![\w./-])((?:{'|'.join(TOP)})/[\w./-]*\.[A-Za-z0-9]+)(?![\w/-])")
PLACEHOLDER = re.compile(r"(^|/)my_|[*<>{}\[\]]")
SOURCES = [
    REPO / "README.md",
    *sorted((REPO / "docs").rglob("*.md")),
    *sorted((REPO / "configs").rglob("*.yaml")),
    *sorted(p for p in (REPO / "scripts").rglob("*") if p.is_file() and p.suffix in {".py", ".sh", ".sbatch", ""}),
]


def named_paths(text: str) -> list[tuple[int, str]]:
    """(line number, path) of every repository path named in ``text``."""
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        for match in PATH.finditer(line):
            path = match.group(1).rstrip(".")
            if not PLACEHOLDER.search(path):
                found.append((number, path))
    return found


def test_named_paths_are_found_in_text():
    text = (
        "see docs/cluster.md. Run `configs/remedies/01_vanilla.yaml`, not configs/my_data.yaml or"
        " configs/remedies/*.yaml; ../shared/configs/x.yaml, https://host/docs/y.md and lightning_lstm/data/bundled"
        " are not checked"
    )
    assert [p for _, p in named_paths(text)] == ["docs/cluster.md", "configs/remedies/01_vanilla.yaml"]


def test_every_named_repository_path_exists():
    assert (REPO / "README.md") in SOURCES and len(SOURCES) > 5
    missing = [
        f"{source.relative_to(REPO)}:{number}: {path}"
        for source in SOURCES
        for number, path in named_paths(source.read_text(errors="replace"))
        if not (REPO / path).exists()
    ]
    print("\n".join(missing))
    assert not missing, "paths named in the repository that do not exist:\n" + "\n".join(missing)
