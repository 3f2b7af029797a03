"""Fake installed distributions for tests: a ``*.dist-info`` with entry points in a temp dir on sys.path."""

from __future__ import annotations

from pathlib import Path


def make_distribution(root: Path, name: str, entry_points: dict[str, dict[str, str]], modules: dict[str, str] | None = None) -> Path:
    """Write ``root/<name>-1.0.dist-info`` (METADATA + entry_points.txt) and optional modules; return root."""
    root.mkdir(parents=True, exist_ok=True)
    info = root / f"{name.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    lines = []
    for group, items in entry_points.items():
        lines.append(f"[{group}]")
        lines += [f"{k} = {v}" for k, v in items.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    for module, source in (modules or {}).items():
        (root / f"{module}.py").write_text(source)
    return root
