"""Where the benchmarks leave their tables: a marked section of a Markdown file, replaced on each run."""

from __future__ import annotations

from pathlib import Path


def write_section(path: Path, marker: str, table: str) -> None:
    """Put ``table`` between two ``marker`` lines in ``path``, replacing what was there, else appending."""
    text = path.read_text() if path.exists() else ""
    section = f"{marker}\n{table}{marker}"
    if marker in text:
        start, end = text.index(marker), text.rindex(marker) + len(marker)
        text = text[:start] + section + text[end:]
    else:
        text = f"{text}\n{section}\n"
    path.write_text(text)
