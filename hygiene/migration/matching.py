"""Matching an old integration's resources with a new one's by path: pure functions, no database.

A resource's path is its ancestry's titles, root first (database, schema, table, column in a warehouse); two
resources match when their entity types are the same and their paths are, without regard to case, once the
old path's renamed database or schema is replaced by its new name. Everything is a hash join: one pass over
each side, so 20,000 pairs take a fraction of a second.
"""
from dataclasses import dataclass, field

MAX_DEPTH = 16  # a parent chain longer than this is a loop in the data, not a catalog
MAPPING_LINES = 200
ARROWS = ("=>", "->", "→")


class MappingError(ValueError):
    """A mapping line that cannot be read; the message names the line."""


@dataclass
class Node:
    """What matching needs of one resource."""
    id: str
    entity_type: str
    title: str
    title_full: str
    parent_id: str | None
    in_scope: bool = True  # present and not archived: a candidate (others only lend their titles to paths)
    documented: bool = False


def split_names(text):
    """'db.schema' -> ['db', 'schema']; a name with a dot is written in double quotes ("my.db".schema, and "" for
    a quote inside one). Raises ValueError on an unclosed quote or an empty name."""
    names, current, quoted, i = [], [], False, 0
    text = text.strip()
    while i < len(text):
        ch = text[i]
        if quoted:
            if ch == '"' and text[i + 1:i + 2] == '"':
                current.append('"')
                i += 1
            elif ch == '"':
                quoted = False
            else:
                current.append(ch)
        elif ch == '"':
            quoted = True
        elif ch == ".":
            names.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
        i += 1
    if quoted:
        raise ValueError("a quote is not closed")
    names.append("".join(current).strip())
    if any(not name for name in names):
        raise ValueError("a name is empty")
    return names


def parse_mapping(text):
    """Renames, one a line, `old => new` (or -> or →): a database (legacy_db => warehouse) or a database's schema
    (analytics.staging => analytics.stg). Returns [(old names, new names)], as written; raises MappingError."""
    pairs, seen = [], {}
    lines = (text or "").splitlines()
    if len(lines) > MAPPING_LINES:
        raise MappingError(f"At most {MAPPING_LINES} renames, one a line ({len(lines)} given).")
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        arrow = next((a for a in ARROWS if a in line), None)
        if arrow is None or line.count(arrow) != 1:
            raise MappingError(f"Line {number} (“{line[:80]}”): write one rename a line as old => new, "
                               f"e.g. legacy_db => warehouse or analytics.staging => analytics.stg.")
        left, right = line.split(arrow)
        try:
            old, new = split_names(left), split_names(right)
        except ValueError as exc:
            raise MappingError(f"Line {number} (“{line[:80]}”): {exc}.") from None
        if len(old) > 2 or len(new) > 2 or len(old) != len(new):
            raise MappingError(f"Line {number} (“{line[:80]}”): both sides name a database, or a database and "
                               f"its schema (database.schema).")
        key = tuple(name.casefold() for name in old)
        target = tuple(name.casefold() for name in new)
        if key in seen and seen[key][1] != target:
            raise MappingError(f"Line {number}: “{'.'.join(old)}” is renamed twice (line {seen[key][0]} "
                               f"says otherwise).")
        seen[key] = (number, target)
        pairs.append((old, new))
    return pairs


def format_mapping(pairs):
    """The text form of `parse_mapping`'s answer (quotes where a name needs them)."""
    def names(parts):
        return ".".join(f'"{p.replace(chr(34), chr(34) * 2)}"' if ("." in p or '"' in p or p != p.strip()) else p
                        for p in parts)
    return "\n".join(f"{names(old)} => {names(new)}" for old, new in pairs)


class Renamer:
    """Applies the mapping to an old path (case-folded): the schema rename when one names the path's database and
    schema, else the database's. Answers the new path and how many of its first names were renamed."""

    def __init__(self, pairs):
        self.databases, self.schemas = {}, {}
        for old, new in pairs:
            key, target = tuple(n.casefold() for n in old), tuple(n.casefold() for n in new)
            (self.schemas if len(key) == 2 else self.databases)[key] = target

    def __call__(self, path):
        if len(path) >= 2 and path[:2] in self.schemas:
            return self.schemas[path[:2]] + path[2:], 2
        if path and path[:1] in self.databases:
            return self.databases[path[:1]] + path[1:], 1
        return path, 0


def paths(nodes):
    """{id: tuple of titles, root first} for every node. The parent chain gives the titles (a dot in a title is
    no trouble); where it breaks (a parent the mirror does not hold) the rest comes from `title_full`."""
    by_id = {node.id: node for node in nodes}
    found = {}
    for node in nodes:
        if node.id in found:
            continue
        chain, current = [], node
        while current is not None and current.id not in found and len(chain) < MAX_DEPTH:
            chain.append(current)
            parent = by_id.get(current.parent_id) if current.parent_id else None
            if current.parent_id and parent is None:  # the chain breaks here: Secoda's path says the rest
                found[current.id] = prefix_from_title_full(current)
                chain.pop()
                break
            current = parent
        for item in reversed(chain):
            parent_path = found.get(item.parent_id, ()) if item.parent_id else ()
            found[item.id] = parent_path + (item.title,)
    return found


def prefix_from_title_full(node):
    """The path `title_full` spells ('db.schema.table'), its last name being the title (which may hold a dot)."""
    full, title = node.title_full or "", node.title or ""
    if title and full.endswith(title):
        head = full[:-len(title)].rstrip(".")
        return (tuple(head.split(".")) if head else ()) + (title,)
    return tuple(full.split(".")) if full else (title,)


@dataclass
class Ambiguous:
    """Resources of one type whose paths agree: several old for one new, one old for several new, or more."""
    entity_type: str
    path: str
    old: list  # [Node]
    new: list  # [Node]
    suggested: dict = field(default_factory=dict)  # old id -> the plainly closest new id (see `suggest`)


@dataclass
class Matching:
    pairs: dict  # old id -> new id, one to one
    ambiguous: list  # [Ambiguous]
    unmatched_old: list  # [Node]
    unmatched_new: list  # [Node]
    old_nodes: dict  # id -> Node (in scope)
    new_nodes: dict
    old_paths: dict  # id -> path as titled
    new_paths: dict

    def counts(self):
        """[(entity type, {matched, ambiguous_old, ambiguous_new, unmatched_old, unmatched_new})], by type."""
        table = {}

        def row(kind):
            return table.setdefault(kind, {"matched": 0, "ambiguous_old": 0, "ambiguous_new": 0,
                                           "unmatched_old": 0, "unmatched_new": 0})
        for old_id in self.pairs:
            row(self.old_nodes[old_id].entity_type)["matched"] += 1
        for group in self.ambiguous:
            row(group.entity_type)["ambiguous_old"] += len(group.old)
            row(group.entity_type)["ambiguous_new"] += len(group.new)
        for node in self.unmatched_old:
            row(node.entity_type)["unmatched_old"] += 1
        for node in self.unmatched_new:
            row(node.entity_type)["unmatched_new"] += 1
        return sorted(table.items(), key=lambda item: type_order(item[0]))

    def candidates(self):
        """{ambiguous old id: [new ids it may take]}."""
        return {node.id: [other.id for other in group.new] for group in self.ambiguous for node in group.old}


TYPE_ORDER = ("database", "schema", "table", "column")


def type_order(kind):
    return (TYPE_ORDER.index(kind), "") if kind in TYPE_ORDER else (len(TYPE_ORDER), kind)


def match(old_nodes, new_nodes, renames=()):
    """Pair the old nodes with the new ones by entity type and path (renamed, case-folded)."""
    old_paths, new_paths = paths(old_nodes), paths(new_nodes)
    rename = Renamer(renames)
    groups, renamed = {}, {}
    for node in old_nodes:
        if node.in_scope:
            path, renamed[node.id] = rename(tuple(name.casefold() for name in old_paths[node.id]))
            groups.setdefault((node.entity_type, path), ([], []))[0].append(node)
    for node in new_nodes:
        if node.in_scope:
            key = (node.entity_type, tuple(name.casefold() for name in new_paths[node.id]))
            groups.setdefault(key, ([], []))[1].append(node)
    pairs, ambiguous, unmatched_old, unmatched_new = {}, [], [], []
    for (kind, _), (olds, news) in groups.items():
        if not news:
            unmatched_old.extend(olds)
        elif not olds:
            unmatched_new.extend(news)
        elif len(olds) == 1 and len(news) == 1:
            pairs[olds[0].id] = news[0].id
        else:
            # In the same order whatever order the database listed them in.
            olds = sorted(olds, key=lambda n: (".".join(old_paths[n.id]), n.id))
            news = sorted(news, key=lambda n: (".".join(new_paths[n.id]), n.id))
            label = max(".".join(new_paths[n.id]) for n in news)
            group = Ambiguous(kind, label, olds, news)
            group.suggested = suggest(olds, news, old_paths, new_paths, renamed)
            ambiguous.append(group)
    ambiguous.sort(key=lambda g: (type_order(g.entity_type), g.path.casefold()))
    return Matching(pairs, ambiguous, unmatched_old, unmatched_new,
                    {n.id: n for n in old_nodes if n.in_scope}, {n.id: n for n in new_nodes if n.in_scope},
                    old_paths, new_paths)


def suggest(olds, news, old_paths, new_paths, renamed):
    """{old id: new id} where one candidate is plainly closest: the most names written in the same case (the
    renamed ones aside). A new one two old ones are closest to goes to the closer, or to neither on a tie."""
    best = {}
    for node in olds:
        skip, path = renamed[node.id], old_paths[node.id]
        scores = {other.id: sum(a == b for a, b in zip(path[skip:], new_paths[other.id][skip:])) for other in news}
        top = max(scores.values())
        winners = [new_id for new_id, score in scores.items() if score == top]
        if len(winners) == 1:
            best[node.id] = (winners[0], top)
    suggested = {}
    for old_id, (new_id, score) in best.items():
        rivals = [s for o, (n, s) in best.items() if n == new_id and o != old_id]
        if all(score > rival for rival in rivals):
            suggested[old_id] = new_id
    return suggested


def resolve(matching, picks):
    """The pairs with the steward's picks for ambiguous old resources ({old id: new id, or "" to skip}).

    Returns (pairs, errors): a pick must name an ambiguous old resource and one of its candidates, and no new
    resource may be picked twice (two old descriptions cannot both land on it).
    """
    candidates = matching.candidates()
    errors, chosen = [], {}
    for old_id, new_id in picks.items():
        if old_id not in candidates:
            errors.append("A choice names a resource that is not ambiguous here (the page may be out of date, or "
                          "the form was changed); match again.")
            continue
        if not new_id:
            continue
        if new_id not in candidates[old_id]:
            errors.append(f"The choice for {'.'.join(matching.old_paths[old_id])} is not one of its candidates; "
                          f"choose one from the list.")
            continue
        chosen[old_id] = new_id
    by_new = {}
    for old_id, new_id in chosen.items():
        by_new.setdefault(new_id, []).append(old_id)
    for new_id, old_ids in by_new.items():
        if len(old_ids) > 1:
            names = " and ".join(".".join(matching.old_paths[o]) for o in sorted(old_ids))
            errors.append(f"{names} both point at {'.'.join(matching.new_paths[new_id])}: choose it for one "
                          f"of them and skip the other.")
    pairs = dict(matching.pairs)
    if not errors:
        pairs.update(chosen)
    return pairs, list(dict.fromkeys(errors))
