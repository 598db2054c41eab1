"""Numbers as a person reads them: milliseconds, durations, sizes, counts, speed-ups.

The admin's template filters (dbarchitect.templatetags.dba_format), its list columns and
the reports call these, so a number reads the same on every page.
"""

# Below this, a time shows as milliseconds; above, as seconds, minutes or hours.
MS_PER_SECOND = 1000.0
UNITS = ((3600_000.0, "h"), (60_000.0, "min"), (1000.0, "s"))


def size_text(size_bytes: int) -> str:
    """1536 -> "1.5 kB": sizes as people read them, in reports and rationales."""
    size = float(size_bytes)
    for unit in ("bytes", "kB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size_bytes} bytes"


def ms_text(value: float | None) -> str:
    """153.74142516 -> "154 ms", 3.14159 -> "3.14 ms", 0.0123 -> "0.012 ms": three figures."""
    if value is None:
        return "-"
    value = float(value)
    if abs(value) >= MS_PER_SECOND:
        return duration_text(value)
    if abs(value) >= 100:
        return f"{value:,.0f} ms"
    if abs(value) >= 10:
        return f"{value:.1f} ms"
    if abs(value) >= 1:
        return f"{value:.2f} ms"
    return f"{value:.3f} ms"


def duration_text(ms: float | None) -> str:
    """3843.5356 -> "3.84 s", 7_260_000 -> "2.0 h": milliseconds in the unit that reads best."""
    if ms is None:
        return "-"
    ms = float(ms)
    for size, unit in UNITS:
        if abs(ms) >= size:
            amount = ms / size
            return f"{amount:,.2f} {unit}" if amount < 10 else f"{amount:,.1f} {unit}"
    return ms_text(ms)


def seconds_text(seconds: float | None) -> str:
    """A phase time: 3.8435356 -> "3.84 s", 0.0456 -> "45.6 ms"."""
    return "-" if seconds is None else duration_text(float(seconds) * MS_PER_SECOND)


def impact_text(ms_per_week: float | None) -> str:
    """The workload time a recommendation saves: "2.4 h/week", "-" when it saves none."""
    if not ms_per_week:
        return "-"
    return f"{duration_text(ms_per_week)}/week"


def bytes_text(size_bytes: int | None) -> str:
    """8192 -> "8.0 kB"; None -> "-"."""
    return "-" if size_bytes is None else size_text(int(size_bytes))


def count_text(value: int | float | None) -> str:
    """1000000 -> "1,000,000"; a float keeps one decimal when it has one."""
    if value is None:
        return "-"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}"
    return f"{int(value):,}"


def speedup_text(before: float | None, after: float | None) -> str:
    """Measured ms before and after -> "281x" (below 1x it got slower); "-" unmeasured."""
    if before is None or after is None or before <= 0:
        return "-"
    ratio = before / max(after, 0.001)
    return f"{ratio:,.0f}x" if ratio >= 10 else f"{ratio:.1f}x" if ratio >= 1 else f"{ratio:.2f}x"
