"""Text from tasks and users, made safe to print on an operator's terminal.

A task's output and the names users give (instances, workflows, tasks, owners) reach the
terminal through `dwsched`: written raw, their control sequences would act on it (clear the
screen, recolour, set the window title, move the cursor back with a carriage return to
overwrite lines, reorder characters with bidi overrides), so that a Developer could fake log
lines or statuses on an operator's screen. Everything such text holds that a terminal acts on
is shown instead as a visible escape: ESC as `\\x1b`, a carriage return as `\\r`, U+202E as
`\\u202e`. Newlines and tabs are kept where the text is a log.

Rich parses `[...]` in strings as markup (styles, and links that a terminal shows as
hyperlinks): text of tasks and users goes into rich as `Text`, never as a markup string.
"""

from __future__ import annotations

import json
from typing import Any

from rich.text import Text

# C0 controls and DEL, C1 controls; then the invisible characters that reorder or hide
# text: bidi embeddings, overrides and isolates, the directional marks, and the line and
# paragraph separators some terminals break lines at.
_CONTROLS = [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)]
_INVISIBLE = [0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
_INVISIBLE += [0x2028, 0x2029]


_NAMED = {0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r"}


def _shown(code: int) -> str:
    if code in _NAMED:
        return _NAMED[code]
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


_ESCAPES = {code: _shown(code) for code in (*_CONTROLS, *_INVISIBLE)}
_LOG_ESCAPES = {k: v for k, v in _ESCAPES.items() if chr(k) not in "\n\t"}
_JSON_ESCAPES = {code: f"\\u{code:04x}" for code in _ESCAPES if code >= 0x7F}


def visible(text: str) -> str:
    """One line of text as it may be printed: every control and invisible reordering
    character shown as an escape (newlines and tabs too)."""
    return text.translate(_ESCAPES)


def visible_log(text: str) -> str:
    """A log as it may be printed: like `visible`, but newlines and tabs are kept (a carriage
    return is kept only as part of a CRLF line end, which becomes a newline)."""
    return text.replace("\r\n", "\n").translate(_LOG_ESCAPES)


def cell(value: Any, style: str = "") -> Text:
    """A table cell or a part of a line for rich: `visible` text, never parsed as markup."""
    return Text(visible("" if value is None else str(value)), style=style)


def json_text(data: Any, indent: int | None = None) -> str:
    """JSON to print: non-ASCII text stays readable, but the characters a terminal would act
    on are JSON escapes (`json` already escapes C0 controls; DEL, C1 controls and the bidi
    characters are escaped here, inside strings, where alone they can occur)."""
    return json.dumps(data, ensure_ascii=False, indent=indent).translate(_JSON_ESCAPES)


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """`1 task instance`, `2 task instances`: a count with its noun, singular or plural."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"
