"""Secoda's ways of writing "nothing" and numbers, read one way by the client and the mirror."""

ABSENT = frozenset(("None", "null", ""))


def clean(value):
    """Secoda writes absent values both as null and as the string "None"."""
    if value is None:
        return None
    if value.__class__ is str and len(value) < 12 and value.strip() in ABSENT:
        return None
    return value


def as_int(value):
    value = clean(value)
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        try:
            return int(float(value))
        except (TypeError, ValueError):
            return None
