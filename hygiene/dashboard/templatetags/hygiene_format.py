from django import template

register = template.Library()


@register.filter
def duration_words(delta):
    """A timedelta in plain words: "5 minutes", "1 hour", "2 days"."""
    if delta is None:
        return ""
    seconds = int(delta.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} seconds" if seconds < 120 else f"{seconds // 60} minutes"
