"""The rule registry: the six built-in rules and the ones stewards write, as rows of one table.

A built-in rule's definition is fixed in `hygiene.rules`; its row holds what stewards may change (weight, on/off).
A custom rule's row holds its definition too: a scope (the issue lists' filters, as a query string) and a
condition (clauses on mirrored fields joined by all/any, see `conditions`). Deleting a rule only marks it
deleted, so the snapshots and trends that counted it can still name it; its key is never given again."""
from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone


class RuleQuerySet(models.QuerySet):
    def live(self):
        return self.filter(deleted_at__isnull=True)

    def active(self):
        return self.live().filter(enabled=True)


class Rule(models.Model):
    ALL, ANY = "all", "any"
    MATCH_CHOICES = [(ALL, "all of the clauses"), (ANY, "any of the clauses")]

    key = models.SlugField(max_length=32, unique=True,
                           help_text="Used in links, snapshots and exports; never reused.")
    name = models.CharField(max_length=80)
    explanation = models.CharField(max_length=300, blank=True)
    weight = models.PositiveSmallIntegerField(default=10, help_text="Points off the 0-100 health score.")
    enabled = models.BooleanField(default=True)
    builtin = models.BooleanField(default=False)
    position = models.PositiveIntegerField(default=100)
    scope = models.TextField(blank=True, help_text="The issue-list filters it applies to, as a query string.")
    match = models.CharField(max_length=3, choices=MATCH_CHOICES, default=ALL)
    clauses = models.JSONField(default=list, blank=True)
    sla_days = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(3650)],
        help_text="Fix within this many days: an open issue older than that is overdue. Blank: no time limit.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    deleted_at = models.DateTimeField(null=True, blank=True)

    objects = RuleQuerySet.as_manager()

    class Meta:
        ordering = ["position", "id"]

    def __str__(self):
        return self.name

    @property
    def deleted(self):
        return self.deleted_at is not None
