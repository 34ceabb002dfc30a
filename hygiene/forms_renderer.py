"""The form renderer: Django's templates, with the standard widgets written out in Python.

Every filter bar draws twenty-odd widgets, and Django renders each one through four or five templates
(the widget, `input.html`, `attrs.html`, one per option): a third of an issue list's time in Python. The
functions here produce the same bytes those templates do (tests/test_forms_renderer.py renders every standard
widget, and the product's pages with forms, both ways and compares), escaping and localising each value as a
template would. A widget or option template not written out here is rendered by its template, as before.
"""
from types import SimpleNamespace

from django.forms.renderers import DjangoTemplates
from django.template.base import render_value_in_context
from django.template.defaultfilters import stringformat
from django.utils.safestring import SafeData, mark_safe

# What `{{ value }}` sees in a widget template: autoescape on, localisation and time zones as configured.
_CONTEXT = SimpleNamespace(autoescape=True, use_l10n=None, use_tz=None)
WIDGETS = "django/forms/widgets/"


def _v(value):
    """`{{ value }}`."""
    return render_value_in_context(value, _CONTEXT)


def _s(value):
    """`{{ value|stringformat:'s' }}` (the filter keeps a safe value safe)."""
    text = stringformat(value, "s")
    return _v(mark_safe(text) if isinstance(value, SafeData) else text)


def _attrs(attrs):
    """attrs.html (no newline at its end)."""
    out = []
    for name, value in attrs.items():
        if value is not False:
            out.append(f" {_v(name)}" if value is True else f' {_v(name)}="{_s(value)}"')
    return "".join(out)


def _input(widget):
    """input.html, with the newline its file ends with."""
    value = f' value="{_s(widget["value"])}"' if widget["value"] != None else ""  # noqa: E711 (the template's test)
    return f'<input type="{_v(widget["type"])}" name="{_v(widget["name"])}"{value}{_attrs(widget["attrs"])}>\n'


def _input_option(widget):
    """input_option.html: the input, wrapped in its label."""
    if not widget.get("wrap_label"):
        return _input(widget) + "\n"
    label_for = widget["attrs"].get("id")
    opening = f'<label for="{_v(label_for)}">' if label_for else "<label>"
    return f"{opening}{_input(widget)} {_v(widget['label'])}</label>\n"


def _select_option(widget):
    """select_option.html."""
    return f'<option value="{_s(widget["value"])}"{_attrs(widget["attrs"])}>{_v(widget["label"])}</option>\n'


OPTIONS = {
    WIDGETS + "select_option.html": _select_option,
    WIDGETS + "checkbox_option.html": lambda widget: _input_option(widget) + "\n",
    WIDGETS + "radio_option.html": lambda widget: _input_option(widget) + "\n",
}


def _options_known(widget):
    return all(option["template_name"] in OPTIONS for _, options, _ in widget["optgroups"] for option in options)


def _select(widget):
    """select.html."""
    out = [f'<select name="{_v(widget["name"])}"{_attrs(widget["attrs"])}>']
    for group_name, options, _ in widget["optgroups"]:
        if group_name:
            out.append(f'\n  <optgroup label="{_v(group_name)}">')
        for option in options:
            out.append("\n  " + OPTIONS[option["template_name"]](option))
        if group_name:
            out.append("\n  </optgroup>")
    out.append("\n</select>\n")
    return "".join(out)


def _multiple_input(widget):
    """multiple_input.html (checkboxes and radio buttons)."""
    attrs = widget["attrs"]
    out = ["<div"]
    if attrs.get("id"):
        out.append(f' id="{_v(attrs["id"])}"')
    if attrs.get("class"):
        out.append(f' class="{_v(attrs["class"])}"')
    out.append(">")
    for group, options, _ in widget["optgroups"]:
        if group:
            out.append(f"\n  <div><label>{_v(group)}</label>")
        for option in options:
            out.append("<div>\n    " + OPTIONS[option["template_name"]](option) + "</div>")
        if group:
            out.append("\n  </div>")
    out.append("\n</div>\n")
    return "".join(out)


def _textarea(widget):
    """textarea.html."""
    value = _v(widget["value"]) if widget["value"] else ""
    return f'<textarea name="{_v(widget["name"])}"{_attrs(widget["attrs"])}>\n{value}</textarea>\n'


# Each template, as its file renders (the rendered text is stripped, as Django's renderer strips it).
INPUTS = ("text", "number", "email", "url", "password", "hidden", "date", "datetime", "time", "search", "tel",
          "color", "checkbox")
TEMPLATES = {
    **{f"{WIDGETS}{name}.html": _input for name in INPUTS},
    WIDGETS + "input.html": _input,
    WIDGETS + "select.html": _select,
    WIDGETS + "checkbox_select.html": _multiple_input,
    WIDGETS + "radio.html": _multiple_input,
    WIDGETS + "textarea.html": _textarea,
}
WITH_OPTIONS = {WIDGETS + "select.html", WIDGETS + "checkbox_select.html", WIDGETS + "radio.html"}


class WidgetRenderer(DjangoTemplates):
    """Django's template renderer, drawing the standard widgets in Python (same output, a tenth of the time)."""

    def render(self, template_name, context, request=None):
        write = TEMPLATES.get(template_name)
        widget = context.get("widget") if write else None
        if widget is None or (template_name in WITH_OPTIONS and not _options_known(widget)):
            return super().render(template_name, context, request=request)
        return write(widget).strip()
