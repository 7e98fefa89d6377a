"""Regenerate README.md's config reference from the CLI's own ``fit --config configs/default.yaml --print_config``.

Run: ``python scripts/config_reference.py`` (rewrites README.md in place); ``--check`` exits 1 when README.md is stale.
The reference is the CLI's own output, so it cannot drift from what the CLI accepts.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
START, END = "<!-- config-reference:start -->", "<!-- config-reference:end -->"


def format_reference(print_config_output: str) -> str:
    """The README block for the output of ``fit --config configs/default.yaml --print_config``."""
    config = "\n".join(line for line in print_config_output.splitlines() if not line.startswith("# lightning"))
    return f"{START}\n```yaml\n{config.strip()}\n```\n{END}"


def readme_reference(readme_text: str) -> str | None:
    match = re.search(re.escape(START) + ".*?" + re.escape(END), readme_text, re.DOTALL)
    return match.group(0) if match else None


def generated_reference() -> str:
    result = subprocess.run(
        [sys.executable, "-m", "lightning_lstm", "fit", "--config", "configs/default.yaml", "--print_config"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    return format_reference(result.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if README.md's reference is out of date")
    args = parser.parse_args()
    readme = REPO / "README.md"
    text = readme.read_text()
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.DOTALL)
    if not pattern.search(text):
        print(f"README.md has no {START} ... {END} block", file=sys.stderr)
        return 1
    updated = pattern.sub(lambda _: generated_reference(), text)
    if args.check:
        if updated != text:
            print("README.md's config reference is stale: run python scripts/config_reference.py", file=sys.stderr)
            return 1
        return 0
    readme.write_text(updated)
    return 0


if __name__ == "__main__":
    sys.exit(main())
