"""Fitting text into a fixed number of printer columns.

Words are never cut when they fit on a line of their own; only a single token longer than the
line (a base64 signature, a UID) is split, at the width. No output line ever exceeds the width.
"""

from __future__ import annotations


def wrap_text(text: str, width: int) -> list[str]:
    """Greedy word wrap; explicit newlines start new lines; an empty text gives one empty line."""
    if width < 1:
        raise ValueError("width must be positive")
    lines: list[str] = []
    for paragraph in text.split("\n"):
        lines.extend(_wrap_paragraph(paragraph, width))
    return lines


def _wrap_paragraph(paragraph: str, width: int) -> list[str]:
    lines: list[str] = []
    current = ""
    for word in paragraph.split():
        while len(word) > width:
            if current:
                lines.append(current)
                current = ""
            lines.append(word[:width])
            word = word[width:]
        if not word:
            continue
        if not current:
            current = word
        elif len(current) + 1 + len(word) <= width:
            current = f"{current} {word}"
        else:
            lines.append(current)
            current = word
    if current or not lines:
        lines.append(current)
    return lines


def hard_wrap(token: str, width: int) -> list[str]:
    """Split a long unbreakable value (signature, UID) into width-sized chunks."""
    if width < 1:
        raise ValueError("width must be positive")
    return [token[start : start + width] for start in range(0, len(token), width)] or [""]


def two_columns(left: str, right: str, width: int) -> list[tuple[str, str]]:
    """Rows of (left, right) that fit: the right text sits on the last line of the wrapped left.

    The right text is an amount and is not word-wrapped; when it cannot share the last line with
    the left text it gets a row of its own. A leading indent of the left text is kept on every
    line.
    """
    indent = left[: len(left) - len(left.lstrip(" "))]
    if indent and len(indent) < width // 2:
        rows = two_columns(left.lstrip(" "), right, width - len(indent))
        return [(indent + row_left if row_left else "", row_right) for row_left, row_right in rows]
    if len(right) >= width:
        return [(line, "") for line in wrap_text(left, width)] + [
            ("", line) for line in hard_wrap(right, width)
        ]
    left_lines = wrap_text(left, width)
    if len(left_lines[-1]) + 1 + len(right) <= width:
        return [(line, "") for line in left_lines[:-1]] + [(left_lines[-1], right)]
    return [(line, "") for line in left_lines] + [("", right)]


def wrap_on(text: str, width: int, separator: str) -> list[str]:
    """Wrap a value with no spaces (`ΑΦΜ|dd/MM/yyyy|…`) after its separators where possible."""
    pieces = text.split(separator)
    tokens = [piece + separator for piece in pieces[:-1]] + [pieces[-1]]
    lines: list[str] = []
    current = ""
    for token in tokens:
        if len(current) + len(token) <= width:
            current += token
            continue
        if current:
            lines.append(current)
        chunks = hard_wrap(token, width)
        lines.extend(chunks[:-1])
        current = chunks[-1]
    if current or not lines:
        lines.append(current)
    return lines
