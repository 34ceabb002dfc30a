"""Rules as a file: every rule exported to YAML or JSON, and such a file imported back (teams keep rules in git).

`export_rules` gives a plain dict (version 1, the rules in display order); `dump` writes it as YAML or JSON;
`parse` reads either back and refuses anything that is not that shape with a message (`RulesFileError`).
`import_rules` matches rules by key and checks every one with `services.clean_definition`; it writes all of
them or, when any rule is refused, none, and says what it created, updated, left unchanged and refused.
Rules missing from the file are left alone: an import never deletes."""
import json
import re
from dataclasses import dataclass, field

import yaml
from django.db import IntegrityError, transaction
from django.utils import timezone

from hygiene.dashboard.models import Snapshot
from hygiene.domain.snapshots import take_snapshot
from hygiene.rulebook import conditions, registry, services
from hygiene.rulebook.models import Rule
from hygiene.rules import RULES as BUILTIN_KEYS

VERSION = 1
FORMATS = ("yaml", "json")
MAX_BYTES = 1024 * 1024
MAX_RULES = 500
BUILTIN_FIELDS = ("key", "builtin", "weight", "enabled", "sla_days")
CUSTOM_FIELDS = ("key", "builtin", "name", "explanation", "weight", "enabled", "sla_days", "scope", "match",
                 "clauses")
CLAUSE_FIELDS = ("field", "op", "value")
DEFINITION = ("name", "explanation", "weight", "enabled", "sla_days", "scope", "match", "clauses")
TUNABLE = ("weight", "enabled", "sla_days")  # what a built-in rule's row holds
KEY_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
YAML_HEADER = ("# Catalog Hygiene rules. Import on the Rules page (stewards) or with\n"
               "# `python manage.py rules import FILE`; rules are matched by key, built-in ones take only\n"
               "# weight, enabled and sla_days (fix within, days), and rules missing from the file are left alone.\n")


class RulesFileError(ValueError):
    """The file cannot be read as rules at all: not text, not YAML or JSON, or not a mapping with a rules list."""


# Export --------------------------------------------------------------------------------------------------

def export_rules():
    """Every rule not deleted, in display order, as plain data (a built-in rule: its weight, on/off and
    fix-within days)."""
    registry.forget()  # read the table now, not what this request or task read before
    rules = []
    for rule in registry.everything():
        if rule.deleted:
            continue
        if rule.builtin:
            rules.append({"key": rule.key, "builtin": True, "weight": rule.weight, "enabled": rule.enabled,
                          "sla_days": rule.sla_days})
            continue
        rules.append({
            "key": rule.key, "name": rule.label, "explanation": rule.explanation, "weight": rule.weight,
            "enabled": rule.enabled, "sla_days": rule.sla_days, "scope": rule.scope, "match": rule.match,
            "clauses": [{name: clause[name] for name in CLAUSE_FIELDS if name in clause} for clause in rule.clauses],
        })
    return {"version": VERSION, "rules": rules}


def dump(data, fmt="yaml"):
    """The export as text: YAML (a comment, then the keys in a stable order, one value a line) or JSON."""
    if fmt == "json":
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if fmt == "yaml":
        # No folding (width): one field a line keeps a file's diffs in git to the field that changed.
        return YAML_HEADER + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False,
                                            width=10_000)
    raise ValueError(f"Unknown format {fmt!r}: choose one of {', '.join(FORMATS)}.")


# Parse ---------------------------------------------------------------------------------------------------

def parse(content, fmt=None):
    """The rules file's data from its text or bytes: YAML, or JSON (which YAML reads too; `fmt="json"` reads it
    strictly as JSON). Raises RulesFileError saying what is wrong."""
    if fmt not in (None, *FORMATS):
        raise RulesFileError(f"Unknown format {fmt!r}: choose one of {', '.join(FORMATS)}.")
    if len(content) > MAX_BYTES:
        raise RulesFileError(f"The file is larger than {MAX_BYTES // 1024 // 1024} MB; a rules export is a few KB.")
    if isinstance(content, bytes):
        if b"\0" in content:
            raise RulesFileError("This is a binary file, not a YAML or JSON export of rules.")
        try:
            content = content.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise RulesFileError("The file is not UTF-8 text: export the rules as YAML or JSON.") from None
    elif "\0" in content:
        raise RulesFileError("This is a binary file, not a YAML or JSON export of rules.")
    data = _load(content, fmt)
    check_shape(data)
    return data


def _load(text, fmt):
    if fmt == "json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise RulesFileError(f"Not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}).") from None
        except (ValueError, RecursionError):
            raise RulesFileError("Not valid JSON, or nested too deeply to read.") from None
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise RulesFileError(f"Not valid YAML or JSON ({where}{exc.problem or exc.context}).") from None
    except RecursionError:
        raise RulesFileError("The file is nested too deeply to read.") from None
    except Exception as exc:  # noqa: BLE001 - a value PyYAML cannot build (a date like 2024-13-45): any file, no 500
        raise RulesFileError(f"Not valid YAML or JSON ({str(exc)[:200]}).") from None


def _kind(value):
    return {dict: "a mapping", list: "a list", str: "text", int: "a number", float: "a number", bool: "true or false",
            type(None): "empty"}.get(type(value), "something else")


def check_shape(data):
    """A mapping with `version: 1` (or none) and a `rules` list; the rules themselves are checked one by one
    on import, so every problem in them is reported at once."""
    if data is None:
        raise RulesFileError("The file is empty.")
    if not isinstance(data, dict):
        raise RulesFileError(f"The file holds {_kind(data)}; a rules file is a mapping with “version: 1” and a "
                             "“rules” list, as an export writes it.")
    version = data.get("version", VERSION)
    if type(version) is not int or version != VERSION:
        shown = repr(version[:20]) if isinstance(version, str) else str(version)[:20]
        raise RulesFileError(f"This file is version {shown}; this dashboard reads version {VERSION}.")
    rules = data.get("rules")
    if rules is None:
        raise RulesFileError("The file has no “rules” list.")
    if not isinstance(rules, list):
        raise RulesFileError(f"“rules” holds {_kind(rules)}; it should be a list of rules.")
    if len(rules) > MAX_RULES:
        raise RulesFileError(f"The file holds {len(rules):,} rules; at most {MAX_RULES} are imported at once.")
    return data


# Import --------------------------------------------------------------------------------------------------

@dataclass
class Outcome:
    key: str
    name: str
    changes: tuple = ()
    note: str = ""


@dataclass
class Refusal:
    rule: str
    field: str
    message: str

    def __str__(self):
        where = self.field
        clause = re.fullmatch(r"clauses\.(\d+)", where)
        if clause:
            where = f"clause {int(clause.group(1)) + 1}"
        return f"{self.rule}: {where}: {self.message}" if where else f"{self.rule}: {self.message}"


@dataclass
class ImportResult:
    dry_run: bool = False
    created: list = field(default_factory=list)
    updated: list = field(default_factory=list)
    unchanged: list = field(default_factory=list)
    refused: list = field(default_factory=list)
    untouched: list = field(default_factory=list)  # names of rules in force the file does not mention

    @property
    def ok(self):
        return not self.refused

    @property
    def written(self):
        return self.ok and not self.dry_run and bool(self.created or self.updated)

    def summary(self):
        if self.refused:
            rules = len({refusal.rule for refusal in self.refused})
            return (f"Nothing was imported: {len(self.refused)} problem{'s' if len(self.refused) != 1 else ''} in "
                    f"{rules} rule{'s' if rules != 1 else ''}. Fix the file and import it again.")
        verb = "Would import (dry run, nothing written)" if self.dry_run else "Imported"
        return (f"{verb}: {len(self.created)} created, {len(self.updated)} updated, "
                f"{len(self.unchanged)} unchanged")

    def untouched_note(self):
        if not self.untouched:
            return ""
        n = len(self.untouched)
        return (f"{n} rule{'s' if n != 1 else ''} not in the file {'were' if n != 1 else 'was'} left alone: "
                f"{', '.join(self.untouched[:10])}{'…' if n > 10 else ''}.")


@dataclass
class _Plan:
    index: int
    label: str
    builtin: bool
    cleaned: dict = field(default_factory=dict)
    row: Rule | None = None  # the rule it updates; None: a new rule
    key: str | None = None
    note: str = ""
    needs_key: bool = False


def _label(entry, index):
    """How a refusal names a rule: “Its name” (its_key), or its place in the file."""
    if not isinstance(entry, dict):
        return f"Rule {index + 1}"
    name, key = entry.get("name"), entry.get("key")
    name = name.strip()[:80] if isinstance(name, str) and name.strip() else ""
    key = key[:40] if isinstance(key, str) and key else ""
    if name and key:
        return f"Rule {index + 1} “{name}” ({key})"
    if name or key:
        return f"Rule {index + 1} “{name or key}”"
    return f"Rule {index + 1}"


def _type_errors(entry, builtin):
    """Fields a file gets wrong before the definition is even checked: unknown ones, wrong types."""
    errors = {}
    allowed = BUILTIN_FIELDS if builtin else CUSTOM_FIELDS
    for name in entry:
        if name not in allowed:
            if builtin and name in CUSTOM_FIELDS:
                errors[str(name)] = (f"“{entry.get('key')}” is a built-in rule: a file sets only its weight, "
                                     "whether it is enabled and its fix-within days (sla_days).")
            else:
                errors[str(name)[:40]] = f"Not a field of a rule (a rule has {', '.join(allowed)})."
    if "enabled" in entry and not isinstance(entry["enabled"], bool):
        errors["enabled"] = "Enabled is true or false."
    if "weight" in entry and (isinstance(entry["weight"], bool) or not isinstance(entry["weight"], (int, str))):
        errors["weight"] = f"The weight is a whole number from 0 to {services.MAX_WEIGHT}."
    if builtin:
        return errors
    for name in ("name", "explanation", "scope", "match"):
        if entry.get(name) is not None and not isinstance(entry[name], str):
            errors[name] = f"{name.capitalize()} is text, not {_kind(entry[name])}."
    clauses = entry.get("clauses")
    if clauses is not None and not isinstance(clauses, list):
        errors["clauses"] = f"Clauses are a list of {{field, op, value}}, not {_kind(clauses)}."
    elif isinstance(clauses, list):
        if len(clauses) > conditions.MAX_CLAUSES:
            errors["clauses"] = f"A rule has at most {conditions.MAX_CLAUSES} clauses."
        for index, clause in enumerate(clauses[:conditions.MAX_CLAUSES]):
            if not isinstance(clause, dict):
                errors[f"clauses.{index}"] = f"A clause is a mapping of field, op and value, not {_kind(clause)}."
                continue
            extra = [str(name)[:40] for name in clause if name not in CLAUSE_FIELDS]
            if extra:
                errors[f"clauses.{index}"] = f"“{extra[0]}” is not part of a clause (field, op, value)."
            elif isinstance(clause.get("value"), (dict, list)):
                errors[f"clauses.{index}"] = "A clause's value is one value, not a list or mapping."
    return errors


def _fresh_key(name, claimed):
    """A key for a new rule from its name: never one any rule had, nor one another rule of the file takes."""
    base = services.new_key(name)
    key, n = base, 2
    while key in claimed or (key != base and Rule.objects.filter(key=key).exists()):
        key, n = f"{base[:28]}_{n}", n + 1
    return key


def _changes(row, cleaned):
    return tuple(name for name in DEFINITION if name in cleaned and getattr(row, name) != cleaned[name])


def import_rules(data, user=None, dry_run=False):
    """Import a parsed rules file (see `parse`): all of its rules or none. Returns an ImportResult; with
    `dry_run`, or when a rule is refused, nothing is written. Raises RulesFileError for a file of the wrong
    shape. A rule the file names without a weight, an on/off or fix-within days keeps its own."""
    check_shape(data)
    registry.forget()
    result = ImportResult(dry_run=dry_run)
    rows = {row.key: row for row in Rule.objects.all()}
    defaults = {rule.key: rule for rule in registry.everything() if rule.builtin}
    plans, seen, claimed = [], set(), set()

    def refuse(label, errors):
        result.refused.extend(Refusal(label, name, message) for name, message in errors.items())

    for index, entry in enumerate(data["rules"]):
        label = _label(entry, index)
        if not isinstance(entry, dict):
            refuse(label, {"": f"A rule is a mapping of its fields, not {_kind(entry)}."})
            continue
        key = entry.get("key")
        if key is not None and not isinstance(key, str):
            refuse(label, {"key": f"The key is text, not {_kind(key)}."})
            continue
        if key and key in seen:
            refuse(label, {"key": f"The key “{key}” is on another rule of this file too."})
            continue
        seen.add(key)
        flag = entry.get("builtin")
        if flag is not None and not isinstance(flag, bool):
            refuse(label, {"builtin": "Builtin is true or false."})
            continue
        builtin = flag is True or (flag is None and key in BUILTIN_KEYS)
        if builtin and key not in BUILTIN_KEYS:
            refuse(label, {"key": f"There is no built-in rule “{str(key)[:40]}” (built-in rules: "
                                  f"{', '.join(BUILTIN_KEYS)})."})
            continue
        errors = _type_errors(entry, builtin)
        roots = {name.split(".")[0] for name in errors}
        row = rows.get(key) if key else None
        current = row if row is not None and not row.deleted else None
        # What the types allow is still checked, so every problem of the rule is reported at once.
        definition = {name: value for name, value in entry.items() if name not in roots}
        if builtin:
            known = current or defaults[key]
            definition.setdefault("weight", known.weight)
            definition.setdefault("enabled", known.enabled)
        elif current is not None and not current.builtin:
            definition.setdefault("weight", current.weight)
            definition.setdefault("enabled", current.enabled)
        try:
            cleaned = services.clean_definition(definition, builtin=builtin)
        except services.RuleError as exc:
            errors.update({name: message for name, message in exc.errors.items()
                           if name.split(".")[0] not in roots})
        if errors:
            refuse(label, errors)
            continue
        cleaned.pop("scope_label", None)
        plan = _Plan(index, label, builtin, cleaned)
        if builtin:
            plan.row, plan.key = row, key
        elif current is not None and not current.builtin:
            plan.row, plan.key = current, key
        elif key and KEY_PATTERN.fullmatch(key) and key not in services.RESERVED and row is None:
            plan.key = key
            claimed.add(key)
        else:
            plan.needs_key = True
            if key:
                why = ("belonged to a deleted rule" if row is not None and row.deleted else
                       "is a built-in rule's key" if key in BUILTIN_KEYS else
                       "is reserved" if key in services.RESERVED else
                       "is not a key (lower-case letters, digits, - and _, at most 32)")
                plan.note = f"the key “{key[:40]}” {why}"
        plans.append(plan)

    for plan in plans:  # after every kept key is claimed, so a new key never takes one the file names later
        if plan.needs_key:
            plan.key = _fresh_key(plan.cleaned["name"], claimed)
            claimed.add(plan.key)
            plan.note = f"{plan.note}; created as “{plan.key}”" if plan.note else ""

    for plan in plans:
        name = plan.cleaned.get("name") or (plan.row.name if plan.row else registry.labels().get(plan.key, plan.key))
        if plan.row is None and not plan.builtin:
            result.created.append(Outcome(plan.key, name, DEFINITION, plan.note))
            continue
        changes = (tuple(n for n in TUNABLE if n in plan.cleaned and getattr(plan.row or defaults[plan.key], n)
                         != plan.cleaned[n]) if plan.builtin else _changes(plan.row, plan.cleaned))
        (result.updated if changes else result.unchanged).append(Outcome(plan.key, name, changes, plan.note))
    mentioned = {plan.key for plan in plans}
    result.untouched = [rule.label for rule in registry.everything()
                        if not rule.deleted and rule.key not in mentioned]
    if result.refused or dry_run or not (result.created or result.updated):
        return result
    try:
        _write(plans, {o.key for o in result.updated}, user)
    except IntegrityError:
        raise RulesFileError("Another change to the rules was saved at the same moment; nothing was imported. "
                             "Import the file again.") from None
    return result


@transaction.atomic
def _write(plans, updated_keys, user):
    """Every created and changed rule, then one snapshot on commit (not one per rule)."""
    if any(plan.builtin and plan.row is None for plan in plans):
        services.ensure_builtin_rows()
    now = timezone.now()
    for plan in plans:
        if plan.builtin:
            if plan.key not in updated_keys:
                continue
            row = plan.row or Rule.objects.get(key=plan.key)
            changed = [name for name in TUNABLE if name in plan.cleaned]
            for name in changed:
                setattr(row, name, plan.cleaned[name])
            row.updated_at = now
            row.save(update_fields=[*changed, "updated_at"])
        elif plan.row is None:
            services.save(plan.cleaned, user, key=plan.key, snapshot=False)
        elif plan.key in updated_keys:
            services.save(plan.cleaned, user, rule=plan.row, snapshot=False)
    registry.forget()
    transaction.on_commit(lambda: take_snapshot(Snapshot.RULES))
