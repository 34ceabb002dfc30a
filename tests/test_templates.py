"""Template source checks that no page test would notice until a steward did."""
from pathlib import Path

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def test_no_template_comment_spans_lines():
    """Django's {# … #} ends on its own line: one that goes on is printed on the page, word for word."""
    open_ended = []
    for path in sorted(TEMPLATES.rglob("*")):
        if path.suffix not in (".html", ".txt"):
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            rest = line
            while "{#" in rest:
                rest = rest[rest.index("{#") + 2:]
                if "#}" not in rest:
                    open_ended.append(f"{path.relative_to(TEMPLATES)}:{number}")
                    break
                rest = rest[rest.index("#}") + 2:]
    assert not open_ended, f"use {{% comment %}} for comments over several lines: {open_ended}"
