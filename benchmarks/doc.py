"""docs/benchmarks.md is shared by every benchmark: each owns one `## ` section."""
from __future__ import annotations

import os
import platform
import re
from pathlib import Path

TITLE = "# Benchmarks\n\nEach section is written by the benchmark named in it; rerun that command to refresh it.\n"


def write_section(doc: Path, heading: str, body: str) -> None:
    """Replace (or append) the section `## heading`, leaving the others as they are; atomic."""
    text = doc.read_text() if doc.exists() else TITLE
    section = f"## {heading}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(heading)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = pattern.sub(lambda _: section + "\n", text, count=1) if pattern.search(text) else text.rstrip() + "\n\n" + section
    tmp = doc.with_name(f".{doc.name}.tmp")
    tmp.write_text(text)
    tmp.replace(doc)


def machine() -> str:
    """One line naming the machine, so a figure is never read without its context."""
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else platform.processor()
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB, Python {platform.python_version()}, {platform.system()}"
