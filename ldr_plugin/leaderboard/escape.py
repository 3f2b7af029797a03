"""Escaping of names and headers for every output format (names come from users and may be hostile)."""

from __future__ import annotations

import html
import re

_LATEX = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
    "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "<": r"\textless{}",
    ">": r"\textgreater{}", '"': r"\textquotedbl{}", "|": r"\textbar{}", "±": r"$\pm$", "—": "---",
    "Γ′": r"$\Gamma'$", "Γ": r"$\Gamma$", "′": r"$'$", "γ": r"$\gamma$", "ρ": r"$\rho$", "τ": r"$\tau$",
    "†": r"\dag{}", "‡": r"\ddag{}", "§": r"\S{}", "¶": r"\P{}",
}
_LATEX_RE = re.compile("|".join(re.escape(k) for k in sorted(_LATEX, key=len, reverse=True)))
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|#~^$])")


def latex(text: str) -> str:
    """Text safe inside a LaTeX tabular cell (every special character escaped)."""
    return _LATEX_RE.sub(lambda m: _LATEX[m.group(0)], text)


def markdown(text: str) -> str:
    """Text safe inside a Markdown table cell: HTML entities, then Markdown specials backslashed."""
    escaped = html.escape(text, quote=False).replace('"', "&quot;")
    return _MD_SPECIAL.sub(r"\\\1", escaped).replace("\n", " ")


def csv_text(text: str) -> str:
    """A text field that spreadsheets will not run as a formula (leading = + - @ quoted with ')."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
