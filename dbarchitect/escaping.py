"""Untrusted text (query text, table and index names, error messages, LLM text) in the
Markdown and terminal reports: shown as written, never run as HTML, markup or a terminal
control sequence.

Markdown passes raw HTML through, so `<script>` or `<img onerror>` in a query's text would
run in whatever viewer renders the report; a fence closes at the first run of backticks as
long as its own.
"""

import re
import unicodedata

# Inline Markdown that could hide or rewrite what is shown: code spans, links and images,
# table cells; a backslash shows each as itself (CommonMark). Emphasis is left alone: it
# only restyles (and `SELECT *` stays readable in the raw file).
_INLINE_MARKUP = re.compile(r"([\\`\[\]|])")
# `<` opens every HTML tag and autolink, `&` an entity: as entities they show as written.
_HTML = {"&": "&amp;", "<": "&lt;"}
_BACKTICKS = re.compile(r"`+")
# Kept as they are in terminal text; any other control or format character is escaped.
_PLAIN_WHITESPACE = {"\n", "\t"}


def md_text(text: object) -> str:
    """`text` as one line of inline Markdown that renders exactly as written."""
    flat = " ".join(str(text).split())
    escaped = _INLINE_MARKUP.sub(r"\\\1", flat)
    return "".join(_HTML.get(char, char) for char in escaped)


def md_lines(text: object) -> str:
    """`text` line by line, each escaped like md_text: its lists and paragraphs stay, no
    line can open HTML, a fence or a code span."""
    return "\n".join(md_text(line) for line in str(text).splitlines())


def md_fence(text: str, info: str = "") -> list[str]:
    """`text` as a fenced code block it cannot close: the fence is longer than any run of
    backticks inside it."""
    longest = max((len(run) for run in _BACKTICKS.findall(text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence + info, text, fence]


def md_code_span(text: str) -> str:
    """`text` as inline code it cannot close (its delimiters outrun its backticks)."""
    flat = " ".join(text.split())
    longest = max((len(run) for run in _BACKTICKS.findall(flat)), default=0)
    ticks = "`" * (longest + 1)
    pad = " " if flat.startswith("`") or flat.endswith("`") else ""
    return f"{ticks}{pad}{flat}{pad}{ticks}"


def plain_text(text: str) -> str:
    """`text` for a terminal: control and format characters (escape sequences, bidi
    overrides) shown as \\x.. / \\u.... escapes instead of acted on."""
    return "".join(
        char
        if char in _PLAIN_WHITESPACE or unicodedata.category(char) not in ("Cc", "Cf")
        else f"\\x{ord(char):02x}"
        if ord(char) < 0x100
        else f"\\u{ord(char):04x}"
        for char in text
    )
