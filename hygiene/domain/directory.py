"""Names for ids: Secoda keeps owners, teams and tags as ids; people read names."""
from catalog_sync.models import Integration, SecodaGroup, SecodaUser, Tag, Team


class Directory:
    """Every person, group, team, tag and integration by id: a few queries per request, whatever
    the page size (workspaces hold hundreds to a few thousand of these, not millions)."""

    def __init__(self):
        self.users = {u.pk: u.display_name for u in SecodaUser.objects.only("id", "first_name", "last_name", "email")}
        self.groups = {g.pk: g.name or g.pk for g in SecodaGroup.objects.only("id", "name")}
        self.teams = {t.pk: t.name or t.pk for t in Team.objects.only("id", "name")}
        self.tags = {t.pk: t.name or t.pk for t in Tag.objects.only("id", "name")}
        self.integrations = {i.pk: i.name or i.pk for i in Integration.objects.only("id", "name")}

    @staticmethod
    def _names(ids, table, unknown):
        return [table.get(i) or f"{unknown} {i[:8]}" for i in ids]

    def user_names(self, ids):
        return self._names(ids, self.users, "unknown user")

    def group_names(self, ids):
        return self._names(ids, self.groups, "unknown group")

    def owner_names(self, resource):
        return self.user_names(resource.owners) + [f"{name} (group)" for name in self.group_names(resource.owners_groups)]

    def team_names(self, ids):
        return self._names(ids, self.teams, "unknown team")

    def tag_names(self, ids):
        return self._names(ids, self.tags, "unknown tag")

    def owner_label(self, key):
        """'user:<id>' / 'group:<id>' -> a display name."""
        kind, _, ref_id = key.partition(":")
        if kind == "group":
            return f"{self.groups.get(ref_id) or 'Unknown group ' + ref_id[:8]} (group)"
        return self.users.get(ref_id) or f"Unknown user {ref_id[:8]}"
