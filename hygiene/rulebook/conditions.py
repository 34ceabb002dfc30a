"""A custom rule's condition: clauses on mirrored fields, each compiled to a Q the database answers.

A clause is a dict {"field": ..., "op": ..., "value": ...}. `FIELDS` says which fields exist and of what kind,
`OPERATORS` which operators each kind takes and what value they want. `check` refuses what cannot run (an
unknown field, an operator the field does not take, a number that is not one, a regex that does not compile)
with a message per clause, so a saved rule always compiles; `clause_q` turns a checked clause into a Q through
an optional relation prefix ("resource__"), like every rule in `hygiene.rules`."""
import re
from datetime import timedelta

from django.db import DatabaseError, connection, transaction
from django.db.models import F, Func, IntegerField, Q
from django.db.models.functions import Length, Trim
from django.db.models.lookups import GreaterThanOrEqual, LessThan
from django.utils import timezone

from catalog_sync.models import Integration, ResourceRef, SecodaGroup, SecodaUser, Tag, Team

TEXT, BOOL, NUMBER, DATE, LIST, INTEGRATION = "text", "bool", "number", "date", "list", "integration"

# field -> (label, kind), in the order the builder offers them.
FIELDS = {
    "title": ("Name", TEXT),
    "title_full": ("Path", TEXT),
    "description": ("Description", TEXT),
    "definition": ("Documentation", TEXT),
    "entity_type": ("Type", TEXT),
    "native_type": ("Native type", TEXT),
    "integration": ("Integration", INTEGRATION),
    "owners": ("Owners (people)", LIST),
    "owners_groups": ("Owning groups", LIST),
    "tags": ("Tags", LIST),
    "teams": ("Teams", LIST),
    "pii": ("PII", BOOL),
    "verified": ("Verified", BOOL),
    "published": ("Published", BOOL),
    "stale": ("Stale in Secoda", BOOL),
    "external_usage": ("Usage in its source", NUMBER),
    "internal_usage": ("Views in Secoda", NUMBER),
    "row_count": ("Rows", NUMBER),
    "children_count": ("Children", NUMBER),
    "updated_at": ("Updated in Secoda", DATE),
    "external_updated_at": ("Updated in its source", DATE),
    "created_at": ("Created in Secoda", DATE),
}

# What each value means: no value, a number of days/characters/items, free text, a regex, an id.
NONE, COUNT, WORDS, PATTERN, REF = "none", "count", "text", "regex", "ref"

# op -> (label, value kind, kinds of field it applies to)
OPERATORS = {
    "blank": ("is blank", NONE, (TEXT, NUMBER, DATE, LIST)),
    "not_blank": ("is not blank", NONE, (TEXT, NUMBER, DATE, LIST)),
    "is": ("is", WORDS, (TEXT, NUMBER, INTEGRATION)),
    "is_not": ("is not", WORDS, (TEXT, NUMBER, INTEGRATION)),
    "contains": ("contains", WORDS, (TEXT,)),
    "not_contains": ("does not contain", WORDS, (TEXT,)),
    "matches": ("matches the regular expression", PATTERN, (TEXT,)),
    "shorter_than": ("is shorter than (characters)", COUNT, (TEXT,)),
    "is_true": ("is yes", NONE, (BOOL,)),
    "is_false": ("is no", NONE, (BOOL,)),
    "below": ("is below", COUNT, (NUMBER,)),
    "at_least": ("is at least", COUNT, (NUMBER,)),
    "older_than": ("is older than (days)", COUNT, (DATE,)),
    "newer_than": ("is within the last (days)", COUNT, (DATE,)),
    "has": ("has", REF, (LIST,)),
    "lacks": ("lacks", REF, (LIST,)),
    "count_below": ("count is below", COUNT, (LIST,)),
    "count_at_least": ("count is at least", COUNT, (LIST,)),
}

REF_KINDS = {"owners": ResourceRef.OWNER, "owners_groups": ResourceRef.OWNER_GROUP, "tags": ResourceRef.TAG,
             "teams": ResourceRef.TEAM}
REF_MODELS = {"owners": SecodaUser, "owners_groups": SecodaGroup, "tags": Tag, "teams": Team,
              "integration": Integration}
MAX_CLAUSES = 10
MAX_TEXT = 200
MAX_COUNT = 1_000_000_000


class JSONArrayLength(Func):
    output_field = IntegerField()
    function = "jsonb_array_length"

    def as_sqlite(self, compiler, connection, **extra):
        return super().as_sql(compiler, connection, function="json_array_length", **extra)


def operators_for(field):
    kind = FIELDS[field][1]
    return [op for op, (_, _, kinds) in OPERATORS.items() if kind in kinds]


def _regex_error(pattern):
    """Why the database cannot run this regular expression, or None."""
    try:
        re.compile(pattern)
    except re.error as exc:
        return f"This regular expression does not compile: {exc}."
    if connection.vendor == "postgresql":
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SELECT '' ~ %s", [pattern])
        except DatabaseError as exc:
            reason = str(exc).split("\n")[0]
            return f"PostgreSQL cannot run this regular expression ({reason})."
    return None


def check(clause, against_db=True):
    """(the clause cleaned, None) or (None, a message saying what is wrong with it). `against_db` also asks the
    database (can it run the regex, is the id in the mirror): on saving, not on every page."""
    if not isinstance(clause, dict):
        return None, "A clause is a field, an operator and a value."
    field, op = clause.get("field"), clause.get("op")
    # Not strings (a list or a dict in an imported file) are not hashable: refused, not a TypeError.
    field, op = (value if isinstance(value, str) else repr(value) for value in (field, op))
    if field not in FIELDS:
        return None, f"There is no field {str(field)[:40]!r} to test."
    if op not in OPERATORS:
        return None, f"There is no operator {str(op)[:40]!r}."
    label, wants, _ = OPERATORS[op]
    if op not in operators_for(field):
        return None, f"{FIELDS[field][0]} cannot be tested with “{label}”."
    raw = clause.get("value")
    value = "" if raw is None else str(raw).strip()
    if wants == NONE:
        return {"field": field, "op": op}, None
    if not value:
        return None, f"“{FIELDS[field][0]} {label}” needs a value."
    if len(value) > MAX_TEXT:
        return None, f"Values are at most {MAX_TEXT} characters."
    if wants == COUNT or (wants == WORDS and FIELDS[field][1] == NUMBER):
        try:
            number = int(value.replace(",", ""))
        except ValueError:
            return None, f"“{value[:40]}” is not a whole number."
        if not 0 <= number <= MAX_COUNT:
            return None, "The number must be between 0 and 1,000,000,000."
        return {"field": field, "op": op, "value": number}, None
    if wants == PATTERN:
        error = _regex_error(value) if against_db else None
        if error:
            return None, error
    if against_db and (wants == REF or FIELDS[field][1] == INTEGRATION):
        if not REF_MODELS[field].objects.filter(pk=value).exists():
            return None, f"No {FIELDS[field][0].lower()} with the id {value[:40]!r} is in the mirror."
    return {"field": field, "op": op, "value": value}, None


def check_all(clauses, against_db=True):
    """(cleaned clauses, {index: message}) for a list of clauses."""
    cleaned, errors = [], {}
    for index, clause in enumerate(clauses if isinstance(clauses, list) else [clauses]):
        good, error = check(clause, against_db)
        if error:
            errors[index] = error
        else:
            cleaned.append(good)
    if len(cleaned) > MAX_CLAUSES:
        errors[MAX_CLAUSES] = f"A rule has at most {MAX_CLAUSES} clauses."
    return cleaned, errors


def clause_q(clause, prefix=""):
    field, op, value = clause["field"], clause["op"], clause.get("value")
    column = f"{prefix}{field}"
    kind = FIELDS[field][1]
    if kind == LIST:
        length = JSONArrayLength(F(column))
        if op in ("blank", "count_below"):
            return Q(LessThan(length, 1 if op == "blank" else value))
        if op in ("not_blank", "count_at_least"):
            return Q(GreaterThanOrEqual(length, 1 if op == "not_blank" else value))
        if connection.vendor == "postgresql":
            # The row's own list (jsonb @>): no subquery over every reference of that kind, which each list,
            # count and flag would otherwise build again.
            refs = Q(**{f"{column}__contains": [value]})
        else:  # SQLite has no JSON containment
            refs = Q(**{f"{prefix}pk__in": ResourceRef.objects.filter(kind=REF_KINDS[field], ref_id=value)
                        .values("resource_id")})
        return refs if op == "has" else ~refs
    if kind == BOOL:
        return Q(**{column: op == "is_true"})
    if kind == INTEGRATION:
        q = Q(**{f"{prefix}integration_id": value})
        return q if op == "is" else ~q
    if kind == DATE:
        if op in ("blank", "not_blank"):
            return Q(**{f"{column}__isnull": op == "blank"})
        cutoff = timezone.now() - timedelta(days=value)
        return Q(**{f"{column}__lt": cutoff}) if op == "older_than" else Q(**{f"{column}__gte": cutoff})
    if kind == NUMBER:
        if op in ("blank", "not_blank"):
            return Q(**{f"{column}__isnull": op == "blank"})
        number = int(value)
        return {"is": Q(**{column: number}), "is_not": ~Q(**{column: number}),
                "below": Q(**{f"{column}__lt": number}), "at_least": Q(**{f"{column}__gte": number})}[op]
    # Text: blank means nothing but spaces.
    if op == "blank":
        return Q(**{f"{column}__regex": r"^\s*$"})
    if op == "not_blank":
        return ~Q(**{f"{column}__regex": r"^\s*$"})
    if op == "shorter_than":
        return Q(LessThan(Length(Trim(F(column))), value))
    return {"is": Q(**{f"{column}__iexact": value}), "is_not": ~Q(**{f"{column}__iexact": value}),
            "contains": Q(**{f"{column}__icontains": value}), "not_contains": ~Q(**{f"{column}__icontains": value}),
            "matches": Q(**{f"{column}__regex": value})}[op]


def condition_q(clauses, match="all", prefix=""):
    """The clauses joined by all/any (no clause: nothing matches)."""
    qs = [clause_q(clause, prefix) for clause in clauses]
    if not qs:
        return Q(**{f"{prefix}pk__isnull": True})
    combined = qs[0]
    for q in qs[1:]:
        combined = (combined & q) if match == "all" else (combined | q)
    return combined


def ref_name(field, value, names=None):
    if names and (field, value) in names:
        return names[(field, value)]
    model = REF_MODELS.get(field)
    item = model.objects.filter(pk=value).first() if model else None
    if item is None:
        return str(value)
    return getattr(item, "display_name", None) or getattr(item, "name", None) or str(value)


def describe(clause, names=None):
    """Plain words: "Tags has PII", "Description is shorter than 20 characters"."""
    field_label = FIELDS.get(clause.get("field"), (str(clause.get("field")), ""))[0]
    op = clause.get("op")
    label, wants, _ = OPERATORS.get(op, (str(op), NONE, ()))
    label = label.split(" (")[0]
    value = clause.get("value")
    if wants == NONE:
        return f"{field_label} {label}"
    if wants == REF or clause.get("field") == "integration":
        return f"{field_label} {label} {ref_name(clause['field'], value, names)}"
    unit = {"shorter_than": " characters", "older_than": " days", "newer_than": " days"}.get(op, "")
    if wants == COUNT or isinstance(value, int):
        return f"{field_label} {label} {value:,}{unit}"
    if wants == PATTERN:
        return f"{field_label} {label} /{value}/"
    return f"{field_label} {label} “{value}”"
