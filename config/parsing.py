"""Whole numbers typed by users: query strings, search boxes, form fields."""


def parse_int(raw: object) -> int | None:
    """An optional minus and ASCII digits, as an int; None for anything else.

    str.isdigit() alone accepts "²", which int() refuses (a 500 where a check was meant);
    int() alone accepts " 1_0 ", which nobody types for 10.
    """
    if not isinstance(raw, str):
        return None
    digits = raw.removeprefix("-")
    if not (digits.isascii() and digits.isdigit()):
        return None
    return int(raw)
