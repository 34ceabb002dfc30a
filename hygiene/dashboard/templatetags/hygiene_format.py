from django import template

from catalog_sync.normalize import http_url

register = template.Library()


@register.filter
def safe_url(value):
    """The URL when it is http(s), else "" (see catalog_sync.normalize.http_url)."""
    return http_url(value)


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


@register.filter
def get_item(mapping, key):
    return mapping.get(key) if hasattr(mapping, "get") else None


@register.filter
def health_badge(value):
    """A 0-100 score as a coloured badge."""
    from django.utils.html import format_html

    if value is None:
        return "–"
    band = "good" if value >= 80 else "fair" if value >= 50 else "poor"
    return format_html('<span class="health health-{}">{}</span>', band, f"{value:.0f}")


@register.filter
def person(user):
    """A Django user's name for display; "someone" when the account is gone."""
    if user is None:
        return "someone"
    return user.get_full_name() or user.get_username()
