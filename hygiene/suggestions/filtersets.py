"""SuggestionFilterSet: what a suggestion list filters on besides the issue lists' filters (which
ResourceFilterSet applies to the suggestions' resources): the least confidence, and the kind of evidence."""
import django_filters

from hygiene.dashboard.filtersets import ResourceFilterSet, WholeNumberFilter
from hygiene.suggestions.models import Suggestion


class SuggestionFilterSet(django_filters.FilterSet):
    min_confidence = WholeNumberFilter(field_name="confidence", lookup_expr="gte", label="Confidence at least",
                                       min_value=0, max_value=100)
    evidence = django_filters.ChoiceFilter(choices=list(Suggestion.EVIDENCE.items()), method="with_evidence",
                                           label="Evidence", empty_label="Any evidence")

    class Meta:
        model = Suggestion
        fields = []

    def __init__(self, *args, kind=Suggestion.OWNER, **kwargs):
        super().__init__(*args, **kwargs)
        self.filters["evidence"].extra["choices"] = [(name, Suggestion.EVIDENCE[name])
                                                     for name in Suggestion.EVIDENCE_OF_KIND[kind]]

    def with_evidence(self, queryset, name, value):
        return queryset.filter(evidence__contains=value)  # no evidence name is part of another

    describe = ResourceFilterSet.describe  # "Confidence at least: 80; Evidence: Its parent's owners"
