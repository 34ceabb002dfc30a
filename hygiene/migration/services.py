"""Migrating documentation from an old integration to a new one (Secoda's "Migrate Documentation" workflow):
match the two by path, plan what to copy as a change set (the bulk edit's preview, apply, progress and undo),
and check what is left undocumented afterwards.

Views and the benchmark call these functions. Each reads an integration's resources in one query; nothing here
runs a query per resource.
"""
from dataclasses import dataclass

from django.db import transaction

from catalog_sync.models import Resource, SecodaGroup, SecodaUser
from hygiene.bulk import services as bulk
from hygiene.bulk.edits import LIST_FIELDS, TEXT_FIELDS, same_value
from hygiene.migration.matching import Node, match, resolve, type_order
from hygiene.migration.models import MigrationPlan

COPYABLE = ("description", "definition", "owners", "owners_groups", "tags", "teams", "pii", "verified")
OWNER_FIELDS = ("owners", "owners_groups")
COPY_LABELS = {"description": "description", "definition": "documentation (definition)", "owners": "owners",
               "owners_groups": "owning groups", "tags": "tags", "teams": "teams", "pii": "PII", "verified": "verified"}
SHOWN = 100  # rows of each end-check list on a page


def nodes(integration_id):
    """The integration's present resources, as matching needs them (one query)."""
    rows = (Resource.objects.filter(integration_id=integration_id, removed_at__isnull=True).order_by()
            .values_list("id", "entity_type", "title", "title_full", "parent_id", "archived", "is_documented"))
    return [Node(pk, kind, title, title_full, parent_id, not archived, documented)
            for pk, kind, title, title_full, parent_id, archived, documented in rows.iterator(chunk_size=5000)]


def match_integrations(old_id, new_id, renames=()):
    return match(nodes(old_id), nodes(new_id), renames)


def usable_picks(matching, picks):
    """The stored choices that still hold (the mirror may have moved since): each names an ambiguous old resource
    and one of its candidates, and no new resource twice."""
    candidates = matching.candidates()
    kept = {old: new for old, new in (picks or {}).items() if old in candidates and (not new or new in candidates[old])}
    chosen = [new for new in kept.values() if new]
    return {old: new for old, new in kept.items() if not new or chosen.count(new) == 1}


def has_value(field, value):
    """A value worth copying: text that is not only blanks, a list with something in it, a flag that is on."""
    return bool((value or "").strip()) if field in TEXT_FIELDS else bool(value)


def copy_change(old_values, new_values, fields, overwrite, owners=None):
    """(before, after) of the fields the copy changes on the new resource; both empty when nothing changes.

    A value the old resource lacks is never copied, so a copy erases nothing; without `overwrite` a value the
    new resource has is kept, and a new resource owned by a person or a group is owned (both owner fields are
    left alone). `owners` (a set of 'user:<id>' / 'group:<id>'), when given, is who may be named an owner:
    others are left out of what is copied.
    """
    before, after = {}, {}
    owned = any(has_value(field, new_values.get(field)) for field in OWNER_FIELDS)
    for field in fields:
        source, target = old_values[field], new_values[field]
        if field in OWNER_FIELDS:
            if owners is not None:
                prefix = "user:" if field == "owners" else "group:"
                source = [owner for owner in source or [] if f"{prefix}{owner}" in owners]
            if owned and not overwrite:
                continue
        if not has_value(field, source) or (has_value(field, target) and not overwrite):
            continue
        if same_value(field, source, target):
            continue
        before[field] = list(target or []) if field in LIST_FIELDS else target
        after[field] = list(source) if field in LIST_FIELDS else source
    return before, after


def field_values(integration_id, ids, fields):
    """{id: {field: value}} of these fields for these resources of one integration (one query, no list of ids
    sent: an integration's resources are read in one pass)."""
    wanted = set(ids)
    rows = (Resource.objects.filter(integration_id=integration_id, removed_at__isnull=True).order_by()
            .values_list("id", *fields))
    return {row[0]: dict(zip(fields, row[1:])) for row in rows.iterator(chunk_size=5000) if row[0] in wanted}


def possible_owners():
    """Who may be named an owner: the people and groups Secoda still has ('user:<id>', 'group:<id>'). An owner the
    old integration names who is gone from Secoda is not copied (Secoda could refuse the whole batch); a disabled
    person is copied as they are, as the old integration has them."""
    return ({f"user:{pk}" for pk in SecodaUser.objects.present().values_list("pk", flat=True)}
            | {f"group:{pk}" for pk in SecodaGroup.objects.present().values_list("pk", flat=True)})


def plan_copy(old_id, new_id, pairs, fields, overwrite):
    """{new id: (before, after)} for every pair the copy changes."""
    fields = [field for field in COPYABLE if field in fields]
    # Whether the new resource is owned reads both owner fields, whichever is copied.
    read = fields + [field for field in OWNER_FIELDS if field not in fields] if set(fields) & set(OWNER_FIELDS) \
        else fields
    old_values = field_values(old_id, pairs.keys(), read)
    new_values = field_values(new_id, pairs.values(), read)
    owners = possible_owners() if set(fields) & set(OWNER_FIELDS) else None
    planned = {}
    for old, new in pairs.items():
        if old in old_values and new in new_values:
            before, after = copy_change(old_values[old], new_values[new], fields, overwrite, owners)
            if after:
                planned[new] = (before, after)
    return planned


def describe(old, new, fields, overwrite):
    what = ", ".join(COPY_LABELS[field] for field in COPYABLE if field in fields)
    how = "overwriting" if overwrite else "where blank"
    return f"Migrate documentation from {old.name or old.pk} to {new.name or new.pk}: {what} ({how})"


def build_migration(user, old, new, renames, picks, fields, overwrite, matching=None):
    """The migration's preview: a stored plan and a draft change set of the copy, one item per new resource it
    changes. Returns the plan; raises PickError (the steward's ambiguous choices do not hold) and
    bulk.NothingToChange."""
    matching = matching or match_integrations(old.pk, new.pk, renames)
    pairs, errors = resolve(matching, picks)
    if errors:
        raise PickError(errors)
    planned = plan_copy(old.pk, new.pk, pairs, fields, overwrite)
    with transaction.atomic():
        # The new integration's resources in one pass (no list of 20,000 ids in the query); the change set counts
        # the pairs as its selection, so "the other N already have these values" speaks of matched ones only.
        change_set = bulk.build_change_set(
            user, Resource.objects.filter(integration_id=new.pk, removed_at__isnull=True, archived=False),
            edit={"migration": {"old": old.pk, "new": new.pk, "renames": [list(map(list, r)) for r in renames],
                                "fields": list(fields), "overwrite": overwrite}},
            summary=describe(old, new, fields, overwrite),
            filter_label=f"{len(pairs):,} resources of {new.name or new.pk} matched with {old.name or old.pk}",
            planned=planned)
        change_set.selected = len(pairs)
        change_set.save(update_fields=["selected"])
        return MigrationPlan.objects.create(
            created_by=user, old_integration=old, new_integration=new,
            renames=[list(map(list, r)) for r in renames], picks=picks, fields=list(fields), overwrite=overwrite,
            pairs=len(pairs), change_set=change_set)


class PickError(ValueError):
    def __init__(self, errors):
        super().__init__(" ".join(errors))
        self.errors = errors


@dataclass
class EndCheck:
    """What is left before the old integration can go: pairs whose new resource is undocumented while the old
    one is documented, and documented old resources without a counterpart (no match, or an ambiguous one left
    unresolved). Each list holds its first SHOWN rows; the counts are whole."""
    undocumented: list  # [{"old", "new", "type", "old_path", "new_path"}]
    undocumented_count: int
    unpaired: list  # [{"old", "type", "old_path", "why"}]
    unpaired_count: int
    old_documented: int

    @property
    def clear(self):
        return not self.undocumented_count and not self.unpaired_count


def end_check(matching, picks=None):
    pairs, _ = resolve(matching, usable_picks(matching, picks))
    old_nodes, new_nodes = matching.old_nodes, matching.new_nodes
    ambiguous = {node.id for group in matching.ambiguous for node in group.old}

    def path(paths, pk):
        return ".".join(paths[pk])

    def order(pk):
        return type_order(old_nodes[pk].entity_type), path(matching.old_paths, pk).casefold()

    left = sorted((old for old, new in pairs.items() if old_nodes[old].documented and not new_nodes[new].documented),
                  key=order)
    unpaired = sorted((pk for pk, node in old_nodes.items() if node.documented and pk not in pairs), key=order)
    return EndCheck(
        undocumented=[{"old": old, "new": pairs[old], "type": old_nodes[old].entity_type,
                       "old_path": path(matching.old_paths, old), "new_path": path(matching.new_paths, pairs[old])}
                      for old in left[:SHOWN]],
        undocumented_count=len(left),
        unpaired=[{"old": pk, "type": old_nodes[pk].entity_type, "old_path": path(matching.old_paths, pk),
                   "why": "ambiguous, no counterpart chosen" if pk in ambiguous else "no match in the new integration"}
                  for pk in unpaired[:SHOWN]],
        unpaired_count=len(unpaired),
        old_documented=sum(1 for node in old_nodes.values() if node.documented),
    )
