"""Small server-side SVG charts: no JavaScript, no build step.

Colour is never the only cue: every series has its own marker shape (in the legend too), and the numbers
are in a table under the chart."""
from django.utils import timezone
from django.utils.html import escape, format_html, format_html_join
from django.utils.safestring import mark_safe

# At least 3:1 against the white card (WCAG 1.4.11), the same colours as the rule pills.
RULE_COLORS = {
    "stale": "#7550c6", "unowned": "#b45309", "undocumented": "#2b6cb0",
    "failing_dbt_tests": "#c53030", "warning_dbt_tests": "#856404", "unused": "#5f6b7a",
}
DEFAULT_COLOR = "#1f5fd6"
MARKERS = ("circle", "square", "triangle", "diamond", "triangle-down", "cross")


def _nice_ceiling(value):
    if value <= 0:
        return 1
    magnitude = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return int(step * magnitude)
    return int(10 * magnitude)


def marker(shape, x, y, color, title="", size=3.6):
    """One point's marker, centred on (x, y), with an optional tooltip."""
    s = size
    if shape == "circle":
        tag, attrs = "circle", f'cx="{x:.1f}" cy="{y:.1f}" r="{s * 0.9:.1f}" fill="{color}"'
    elif shape == "square":
        tag, attrs = "rect", (f'x="{x - s * 0.8:.1f}" y="{y - s * 0.8:.1f}" width="{s * 1.6:.1f}" '
                              f'height="{s * 1.6:.1f}" fill="{color}"')
    elif shape == "cross":
        tag, attrs = "path", (f'd="M{x - s:.1f},{y - s:.1f}L{x + s:.1f},{y + s:.1f}M{x - s:.1f},{y + s:.1f}'
                              f'L{x + s:.1f},{y - s:.1f}" stroke="{color}" stroke-width="2.2" fill="none"')
    else:
        corners = {
            "triangle": ((0, -1.15), (1, 0.75), (-1, 0.75)),
            "triangle-down": ((0, 1.15), (1, -0.75), (-1, -0.75)),
            "diamond": ((0, -1.2), (1.1, 0), (0, 1.2), (-1.1, 0)),
        }[shape]
        coords = " ".join(f"{x + dx * s:.1f},{y + dy * s:.1f}" for dx, dy in corners)
        tag, attrs = "polygon", f'points="{coords}" fill="{color}"'
    if title:
        return f"<{tag} {attrs}><title>{escape(title)}</title></{tag}>"
    return f"<{tag} {attrs}/>"


def _style(index, name):
    return MARKERS[index % len(MARKERS)], RULE_COLORS.get(name, DEFAULT_COLOR)


def legend_item(index, name, label):
    shape, color = _style(index, name)
    icon = (f'<svg class="legend-mark" viewBox="0 0 22 10" width="22" height="10" aria-hidden="true" focusable="false">'
            f'<line x1="0" x2="22" y1="5" y2="5" stroke="{color}" stroke-width="2.2"/>'
            f'{marker(shape, 11, 5, color)}</svg>')
    return f'<span class="legend-item">{icon}{escape(label)}</span>'


def trend_table(points, series, labels):
    """The chart's numbers, newest first, behind a disclosure: the text alternative to the lines."""
    head = format_html_join("", '<th scope="col" class="num">{}</th>', ((labels[name],) for name in series))
    rows = format_html_join("", "<tr><th scope=\"row\"><time datetime=\"{}\">{}</time></th>{}</tr>", (
        (when.isoformat(), f"{timezone.localtime(when):%b %-d, %H:%M}",
         format_html_join("", '<td class="num">{}</td>', ((f"{values.get(name) or 0:,}",) for name in series)))
        for when, values in reversed(points)))
    return format_html(
        '<details class="chart-data"><summary>The numbers behind the chart ({} syncs)</summary>'
        '<div class="table-scroll"><table class="data compact"><caption class="visually-hidden">Open issues per rule '
        'after each sync, newest first</caption><thead><tr><th scope="col">Sync</th>{}</tr></thead>'
        '<tbody>{}</tbody></table></div></details>', len(points), head, rows)


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

    latest = points[-1][1]
    summary = "; ".join(f"{labels[name]} {latest.get(name) or 0:,}" for name in series)
    description = (f"Open issues per rule after each of {len(points)} syncs, from "
                   f"{timezone.localtime(start):%b %-d, %H:%M} to {timezone.localtime(end):%b %-d, %H:%M}. "
                   f"Latest: {summary}. The numbers are in the table below the chart.")
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="{escape(description)}" xmlns="http://www.w3.org/2000/svg">']
    for fraction in (0, 0.25, 0.5, 0.75, 1):
        value = ceiling * fraction
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y(value):.1f}" y2="{y(value):.1f}" '
                     f'class="grid"/><text x="{left - 8}" y="{y(value) + 4:.1f}" class="axis" '
                     f'text-anchor="end">{int(value):,}</text>')
    for when, anchor in ((start, "start"), (end, "end")):
        local = timezone.localtime(when)
        parts.append(f'<text x="{x(when):.1f}" y="{height - 8}" class="axis" text-anchor="{anchor}">'
                     f'{local:%b %-d, %H:%M}</text>')
    for index, name in enumerate(series):
        shape, color = _style(index, name)
        coords = " ".join(f"{x(when):.1f},{y(values.get(name)):.1f}" for when, values in points)
        parts.append(f'<polyline points="{coords}" fill="none" stroke="{color}" stroke-width="2.2" '
                     f'stroke-linejoin="round" data-series="{name}"/>')
        for when, values in points:
            tooltip = f"{labels[name]}: {values.get(name) or 0:,} on {timezone.localtime(when):%Y-%m-%d %H:%M}"
            parts.append(marker(shape, x(when), y(values.get(name)), color, tooltip))
    parts.append("</svg>")
    legend = "".join(legend_item(index, name, labels[name]) for index, name in enumerate(series))
    return mark_safe(f'<figure class="trend">{"".join(parts)}<figcaption class="legend">{legend}'
                     f'</figcaption></figure>{trend_table(points, series, labels)}')
