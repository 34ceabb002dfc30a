import django_tables2 as tables
from django.db.models.functions import Lower
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from hygiene.dashboard.tables import resource_link
from hygiene.suggestions.models import Suggestion

DESCRIPTION_SHOWN = 300  # characters of a suggested description in the table; the whole text in its title


def confidence_band(value):
    return "high" if value >= 80 else "medium" if value >= 60 else "low"


class SuggestionTable(tables.Table):
    resource = tables.Column(accessor="resource__title_full", verbose_name="Resource",
                             attrs={"td": {"class": "col-title"}, "th": {"class": "col-title"}})
    entity_type = tables.Column(accessor="resource__entity_type", verbose_name="Type")
    integration = tables.Column(accessor="resource__integration__name", verbose_name="Integration", default="—",
                                order_by=("resource__integration__name", "resource__title_full", "id"))
    value = tables.Column(verbose_name="Suggestion", orderable=False)
    reason = tables.Column(verbose_name="Why", orderable=False, attrs={"td": {"class": "col-reason"}})
    confidence = tables.Column(verbose_name="Confidence", attrs={"td": {"class": "num"}, "th": {"class": "num"}})
    actions = tables.Column(empty_values=(), orderable=False, verbose_name="Fix")

    CELL_CLASSES = {"resource": "col-title", "confidence": "num", "reason": "col-reason", "actions": "col-actions"}

    class Meta:
        model = Suggestion
        fields = ("resource", "entity_type", "integration", "value", "reason", "confidence", "actions")
        template_name = "django_tables2/bootstrap5.html"
        attrs = {"class": "data suggestion-table"}
        order_by = ("-confidence",)
        empty_text = "No suggestion matches these filters."

    def __init__(self, *args, directory=None, csrf_token="", next_url="", steward=False, **kwargs):
        if not steward:
            kwargs["exclude"] = ("actions",)
        super().__init__(*args, **kwargs)
        self.directory, self.csrf_token, self.next_url = directory, csrf_token, next_url

    # Ties never shuffle rows between pages: every order ends with the id.
    def order_resource(self, queryset, is_descending):
        title = Lower("resource__title_full")
        return queryset.order_by(title.desc() if is_descending else title.asc(), "id"), True

    def order_confidence(self, queryset, is_descending):
        return queryset.order_by("-confidence" if is_descending else "confidence", "id"), True

    def order_entity_type(self, queryset, is_descending):
        return queryset.order_by("-resource__entity_type" if is_descending else "resource__entity_type", "id"), True

    def render_resource(self, record):
        return resource_link(record.resource)

    @staticmethod
    def render_entity_type(value):
        return value.replace("_", " ").capitalize()

    def render_value(self, record):
        if record.kind == Suggestion.OWNER:
            return format_html('<span class="suggested-owner">{}</span>', self.directory.owner_label(record.value))
        text = record.value
        if len(text) <= DESCRIPTION_SHOWN:
            return format_html('<span class="suggested-text">{}</span>', text)
        return format_html('<span class="suggested-text" title="{}">{}…</span>', text, text[:DESCRIPTION_SHOWN - 1])

    @staticmethod
    def render_reason(record):
        labels = format_html_join(" ", '<span class="pill evidence">{}</span>', ((label,) for label in
                                                                                  record.evidence_labels()))
        reason = record.reason if record.reason.endswith((".", "!", "?")) else f"{record.reason}."
        return format_html("{}<div>{}</div>", labels, reason)

    @staticmethod
    def render_confidence(value):
        # The number and a word, never colour alone.
        return format_html('<span class="confidence confidence-{}" data-confidence="{}">{} <span class="muted small">'
                           '{}</span></span>', confidence_band(value), value, value, confidence_band(value))

    def render_actions(self, record):
        token = format_html('<input type="hidden" name="csrfmiddlewaretoken" value="{}">', self.csrf_token)
        name = record.resource.title_full or record.resource_id
        return format_html(
            '<form method="post" action="{}" class="inline">{}<button type="submit" class="primary small-button" '
            'aria-label="Accept the suggestion for {}">Accept…</button></form> '
            '<form method="post" action="{}" class="inline">{}<input type="hidden" name="next" value="{}">'
            '<button type="submit" class="small-button" aria-label="Reject the suggestion for {}">Reject</button>'
            '</form>',
            reverse("suggestions:accept", args=[record.pk]), token, name,
            reverse("suggestions:reject", args=[record.pk]), token, self.next_url, name)

    def body_html(self):
        """The rows, rendered directly (as ResourceTable does): django-tables2's per-cell machinery costs about
        a millisecond a row."""
        names = [column.name for column in self.columns]
        rows = []
        for row in self.page.object_list:
            record = row.record
            cells = "".join(format_html('<td class="{}">{}</td>', self.CELL_CLASSES.get(name, ""),
                                        self.cell(name, record)) for name in names)
            rows.append(f'<tr data-suggestion="{record.pk}">{cells}</tr>')
        return mark_safe("".join(rows))

    def cell(self, name, record):
        if name == "resource":
            return self.render_resource(record)
        if name == "entity_type":
            return self.render_entity_type(record.resource.entity_type)
        if name == "integration":
            integration = record.resource.integration if record.resource.integration_id else None
            return integration.name if integration else "—"
        if name == "confidence":
            return self.render_confidence(record.confidence)
        return getattr(self, f"render_{name}")(record)
