"""One line of `pos-agent doctor`: a check's level, name, what was found and what to do."""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass

from agent.commands.common import paint
from agent.core.status_report import Level

_TAGS = {Level.OK: "[ OK ]", Level.WARN: "[WARN]", Level.CRITICAL: "[FAIL]"}


@dataclass(frozen=True)
class Check:
    level: Level
    name: str
    detail: str
    hint: str = ""

    def line(self, colour: bool) -> str:
        text = (
            f"{paint(_TAGS[self.level], self.level, colour, bold=True)} {self.name} — {self.detail}"
        )
        return f"{text} — {self.hint}" if self.hint and self.level != Level.OK else text


def ok(name: str, detail: str) -> Check:
    return Check(Level.OK, name, detail)


def warn(name: str, detail: str, hint: str) -> Check:
    return Check(Level.WARN, name, detail, hint)


def fail(name: str, detail: str, hint: str) -> Check:
    return Check(Level.CRITICAL, name, detail, hint)


def whoami() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())
