"""Suggested fixes: an owner for an unowned resource, a description for an undocumented one, each with the
evidence in plain words and a confidence. Computed in the database after every sync and change set
(`hygiene.suggestions.compute`); a steward accepts them as a change set or rejects them for good."""
from django.conf import settings
from django.db import models
from django.utils import timezone


class Suggestion(models.Model):
    OWNER = "owner"
    DESCRIPTION = "description"
    KINDS = [(OWNER, "Owner"), (DESCRIPTION, "Description")]
    # The built-in rule each kind fixes, and back.
    RULE_OF_KIND = {OWNER: "unowned", DESCRIPTION: "undocumented"}
    KIND_OF_RULE = {rule: kind for kind, rule in RULE_OF_KIND.items()}

    # Evidence, strongest first in `evidence` (comma-separated); no name is part of another.
    PARENT = "parent"
    SIBLINGS = "siblings"
    COUNTERPART = "counterpart"
    USAGE = "usage"
    PROPAGATION = "propagation"
    EVIDENCE = {
        PARENT: "Its parent's owners",
        SIBLINGS: "What its siblings agree on",
        COUNTERPART: "Its counterpart in another integration",
        USAGE: "Its most frequent users",
        PROPAGATION: "Same-named resources elsewhere",
    }
    EVIDENCE_OF_KIND = {OWNER: (PARENT, SIBLINGS, COUNTERPART, USAGE), DESCRIPTION: (PROPAGATION, COUNTERPART)}

    # No database constraint: suggestions are rewritten in bulk after each sync, as ResourceRef rows are.
    resource = models.ForeignKey("catalog_sync.Resource", on_delete=models.DO_NOTHING, db_constraint=False,
                                 related_name="suggestions")
    kind = models.CharField(max_length=16, choices=KINDS)
    value = models.TextField(help_text="'user:<id>' or 'group:<id>' for an owner; the text for a description.")
    value_key = models.CharField(max_length=32, help_text="MD5 of the value: what a rejection remembers.")
    reason = models.TextField(help_text="The evidence in plain words.")
    evidence = models.CharField(max_length=100, help_text="Kinds of evidence, strongest first, comma-separated.")
    confidence = models.PositiveSmallIntegerField(help_text="0-100.")
    computed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-confidence", "id"]
        constraints = [models.UniqueConstraint(fields=["resource", "kind", "value_key"], name="suggestion_unique")]
        indexes = [models.Index(fields=["kind", "-confidence", "id"], name="suggestion_kind_confidence")]

    def __str__(self):
        return f"{self.get_kind_display()} for {self.resource_id}: {self.value[:60]} ({self.confidence})"

    @property
    def rule(self):
        return self.RULE_OF_KIND[self.kind]

    def evidence_labels(self):
        return [self.EVIDENCE.get(name, name) for name in self.evidence.split(",") if name]


class RejectedSuggestion(models.Model):
    """A steward said no: the same value is never suggested for the same resource again, whatever the next
    sync finds (keyed like a suggestion, not by its id, which every recomputation replaces)."""

    resource_id = models.CharField(max_length=64)
    kind = models.CharField(max_length=16, choices=Suggestion.KINDS)
    value_key = models.CharField(max_length=32)
    value = models.TextField()
    reason = models.TextField(blank=True, help_text="The evidence the suggestion gave when it was rejected.")
    rejected_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL,
                                    related_name="+")
    rejected_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-rejected_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["resource_id", "kind", "value_key"],
                                               name="rejectedsuggestion_unique")]

    def __str__(self):
        return f"Rejected {self.kind} for {self.resource_id}: {self.value[:60]}"
