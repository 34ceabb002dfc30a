"""Small server-side SVG charts: no JavaScript, no build step."""
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import mark_safe

RULE_COLORS = {
    "stale": "#8a63d2", "unowned": "#dd6b20", "undocumented": "#3182ce",
    "failing_dbt_tests": "#c53030", "warning_dbt_tests": "#d69e2e", "unused": "#718096",
}


def _nice_ceiling(value):
    if value <= 0:
        return 1
    magnitude = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return int(step * magnitude)
    return int(10 * magnitude)


def trend_chart(points, series, labels, width=760, height=240):
    """A line per series over time. `points`: [(when, {series: value})], oldest first."""
    if len(points) < 2:
        return mark_safe('<p class="empty">The trend appears after the second successful sync.</p>')
    left, right, top, bottom = 56, 16, 14, 30
    plot_w, plot_h = width - left - right, height - top - bottom
    start, end = points[0][0], points[-1][0]
    span = max((end - start).total_seconds(), 1)
    ceiling = _nice_ceiling(max(values.get(s, 0) or 0 for _, values in points for s in series))

    def x(when):
        return left + plot_w * (when - start).total_seconds() / span

    def y(value):
        return top + plot_h * (1 - (value or 0) / ceiling)

    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="Issues per rule over time" xmlns="http://www.w3.org/2000/svg">']
    for fraction in (0, 0.25, 0.5, 0.75, 1):
        value = ceiling * fraction
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y(value):.1f}" y2="{y(value):.1f}" '
                     f'class="grid"/><text x="{left - 8}" y="{y(value) + 4:.1f}" class="axis" '
                     f'text-anchor="end">{int(value):,}</text>')
    for when, anchor in ((start, "start"), (end, "end")):
        local = timezone.localtime(when)
        parts.append(f'<text x="{x(when):.1f}" y="{height - 8}" class="axis" text-anchor="{anchor}">'
                     f'{local:%b %-d, %H:%M}</text>')
    for name in series:
        color = RULE_COLORS.get(name, "#2f6fed")
        coords = " ".join(f"{x(when):.1f},{y(values.get(name)):.1f}" for when, values in points)
        parts.append(f'<polyline points="{coords}" fill="none" stroke="{color}" stroke-width="2.2" '
                     f'stroke-linejoin="round" data-series="{name}"/>')
        for when, values in points:
            parts.append(
                f'<circle cx="{x(when):.1f}" cy="{y(values.get(name)):.1f}" r="2.6" fill="{color}">'
                f'<title>{escape(labels[name])}: {values.get(name) or 0:,} on '
                f'{timezone.localtime(when):%Y-%m-%d %H:%M}</title></circle>')
    parts.append("</svg>")
    legend = "".join(
        f'<span class="legend-item"><i style="background:{RULE_COLORS.get(name, "#2f6fed")}"></i>'
        f'{escape(labels[name])}</span>' for name in series)
    return mark_safe(f'<figure class="trend">{"".join(parts)}<figcaption class="legend">{legend}'
                     f'</figcaption></figure>')
