"""The Greek code pages a printer profile can select, and our own encoder for them.

python-escpos' MagicEncode switches tables per character (CP437 has some Greek glyphs, so words
come out in mixed fonts) and forgets the table after ESC @ in 3.1; we therefore encode every
string ourselves into the one table the profile selects and send it as raw bytes.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache

_COMBINING_TONOS = "\u0301"
_PUNCTUATION = {
    "–": "-",
    "—": "-",
    "“": '"',
    "”": '"',
    "…": "...",
    "×": "x",
}


@dataclass(frozen=True)
class CodePage:
    """One Greek table: Python codec, Epson `ESC t` number, and what to print instead of gaps."""

    name: str
    codec: str
    escpos_table: int
    substitutions: dict[str, str] = field(default_factory=dict)

    def prepare(self, text: str) -> str:
        """Substitute what the table lacks: € → EUR on CP737, ΐ → ϊ, en dash → hyphen."""
        if not any(char in text for char in self.substitutions) and _fits(text, self.codec):
            return text
        return "".join(self._printable(char) for char in text)

    def encode(self, text: str) -> bytes:
        """Bytes in this table; a character with no fallback becomes `?` (see `unencodable`)."""
        return self.prepare(text).encode(self.codec, errors="replace")

    def decode(self, data: bytes) -> str:
        return data.decode(self.codec)

    def unencodable(self, text: str) -> set[str]:
        """Characters that would print as `?`; tests and validation use it to fail loudly."""
        return {char for char in self.prepare(text) if not _fits(char, self.codec)}

    def _printable(self, char: str) -> str:
        return _substitute(char, self.codec, tuple(self.substitutions.items()))


def _fits(text: str, codec: str) -> bool:
    try:
        text.encode(codec)
    except UnicodeEncodeError:
        return False
    return True


@lru_cache(maxsize=4096)
def _substitute(char: str, codec: str, substitutions: tuple[tuple[str, str], ...]) -> str:
    explicit = dict(substitutions)
    if char in explicit:
        return explicit[char]
    if _fits(char, codec):
        return char
    if char in _PUNCTUATION:
        return _PUNCTUATION[char]
    decomposed = unicodedata.normalize("NFD", char)
    without_tonos = unicodedata.normalize("NFC", decomposed.replace(_COMBINING_TONOS, ""))
    if without_tonos != char and _fits(without_tonos, codec):
        return without_tonos
    base = "".join(mark for mark in decomposed if not unicodedata.combining(mark))
    return base if base and _fits(base, codec) else char


CODE_PAGES: dict[str, CodePage] = {
    "cp1253": CodePage("cp1253", "cp1253", 47),
    "iso8859_7": CodePage("iso8859_7", "iso8859_7", 15),
    "cp737": CodePage(
        "cp737",
        "cp737",
        14,
        substitutions={"€": "EUR", "«": '"', "»": '"', "΄": "'", "‘": "'", "’": "'"},
    ),
}


def code_page(name: str) -> CodePage:
    try:
        return CODE_PAGES[name]
    except KeyError:
        raise ValueError(f"unknown code page {name!r}; use one of {sorted(CODE_PAGES)}") from None
