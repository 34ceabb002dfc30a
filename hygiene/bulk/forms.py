"""The bulk edit form: names in, ids out. An unknown or ambiguous name is refused before anything
reaches Secoda."""
from django import forms
from django.core import signing

from catalog_sync.models import SecodaGroup, SecodaUser, Tag, Team
from hygiene.bulk.edits import one_line_breaks, same_value

LIST_MODES = [("", "Leave as they are"), ("add", "Add these"), ("remove", "Remove these"),
              ("replace", "Replace the list with these")]
OWNER_MODES = LIST_MODES + [("clear", "Remove every owner")]
FLAG_CHOICES = [("", "Leave as it is"), ("true", "Yes"), ("false", "No")]
DESCRIPTION_MODES = [("", "Leave descriptions as they are"), ("blank", "Set it where the description is blank"),
                     ("all", "Set it on every selected resource")]


def split_names(text):
    return [part.strip() for part in (text or "").split(",") if part.strip()]


class Lookup:
    """Case-insensitive names -> ids for people, groups, tags and teams in the mirror."""

    def __init__(self):
        self.people = {}
        for user in SecodaUser.objects.present():
            for key in {user.display_name.lower(), user.email.lower()} - {""}:
                self.people.setdefault(key, set()).add(("user", user.pk))
        for group in SecodaGroup.objects.present():
            for key in {group.name.lower(), f"{group.name.lower()} (group)"} - {""}:
                self.people.setdefault(key, set()).add(("group", group.pk))
        self.tags = self._index(Tag.objects.present())
        self.teams = self._index(Team.objects.present())

    @staticmethod
    def _index(queryset):
        index = {}
        for obj in queryset:
            index.setdefault(obj.name.lower(), set()).add(obj.pk)
        return index

    def resolve(self, names, index, what):
        ids, errors = [], []
        for name in names:
            found = index.get(name.lower(), set())
            if not found:
                errors.append(f"No {what} called “{name}” in the mirror.")
            elif len(found) > 1:
                errors.append(f"“{name}” matches {len(found)} {what}s; use an e-mail address or a unique name.")
            else:
                ids.append(next(iter(found)))
        return ids, errors


class BulkEditForm(forms.Form):
    owners_mode = forms.ChoiceField(choices=OWNER_MODES, required=False, label="What to do")
    owners = forms.CharField(required=False, label="People or groups",
                             help_text="Names or e-mail addresses, separated by commas.",
                             widget=forms.TextInput(attrs={"list": "people-names", "autocomplete": "off",
                                                           "placeholder": "e.g. Ada Lovelace, data-eng (group)"}))
    tags_mode = forms.ChoiceField(choices=LIST_MODES, required=False, label="What to do")
    tags = forms.CharField(required=False, label="Tag names", help_text="Tag names, separated by commas.",
                           widget=forms.TextInput(attrs={"list": "tag-names", "autocomplete": "off",
                                                         "placeholder": "e.g. Deprecated, Finance"}))
    teams_mode = forms.ChoiceField(choices=LIST_MODES, required=False, label="What to do")
    teams = forms.CharField(required=False, label="Team names", help_text="Team names, separated by commas.",
                            widget=forms.TextInput(attrs={"list": "team-names", "autocomplete": "off",
                                                          "placeholder": "e.g. Data"}))
    description_mode = forms.ChoiceField(choices=DESCRIPTION_MODES, required=False, label="What to do")
    description = forms.CharField(required=False, label="New description", max_length=5000,
                                  help_text="The new description, set as plain text.",
                                  widget=forms.Textarea(attrs={"rows": 3}))
    verified = forms.ChoiceField(choices=FLAG_CHOICES, required=False, label="Verified")
    pii = forms.ChoiceField(choices=FLAG_CHOICES, required=False, label="PII")
    published = forms.ChoiceField(choices=FLAG_CHOICES, required=False, label="Published")

    def __init__(self, *args, lookup=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lookup = lookup or Lookup()

    def clean(self):
        data = super().clean()
        edit, errors = {}, []
        mode = data.get("owners_mode")
        if mode:
            names = split_names(data.get("owners"))
            if mode != "clear" and not names:
                self.add_error("owners", "Name at least one person or group.")
            resolved, problems = self.lookup.resolve(names, self.lookup.people, "person or group")
            for problem in problems:
                self.add_error("owners", problem)
            edit["owners"] = {"mode": mode, "users": [i for kind, i in resolved if kind == "user"],
                              "groups": [i for kind, i in resolved if kind == "group"]}
        for field, index_name, what in (("tags", "tags", "tag"), ("teams", "teams", "team")):
            mode = data.get(f"{field}_mode")
            if not mode:
                continue
            names = split_names(data.get(field))
            if not names:
                self.add_error(field, f"Name at least one {what}.")
            ids, problems = self.lookup.resolve(names, getattr(self.lookup, index_name), what)
            for problem in problems:
                self.add_error(field, problem)
            edit[field] = {"mode": mode, "ids": ids}
        if data.get("description_mode"):
            text = one_line_breaks(data.get("description")).strip()
            if not text:
                self.add_error("description", "Write the description to set.")
            edit["description"] = {"text": text, "only_blank": data["description_mode"] == "blank"}
        for flag in ("verified", "pii", "published"):
            if data.get(flag):
                edit[flag] = data[flag] == "true"
        if not edit and not self.errors:
            errors.append("Choose at least one change to make.")
        if errors:
            raise forms.ValidationError(errors)
        data["edit"] = edit
        data["summary"] = self.describe()
        return data

    def describe(self):
        data = self.cleaned_data
        words = {"add": "add", "remove": "remove", "replace": "set", "clear": "clear"}
        parts = []
        for field, label in (("owners", "owners"), ("tags", "tags"), ("teams", "teams")):
            mode = data.get(f"{field}_mode")
            if mode == "clear":
                parts.append(f"clear {label}")
            elif mode:
                parts.append(f"{words[mode]} {label} {', '.join(split_names(data.get(field)))}")
        if data.get("description_mode"):
            where = " where blank" if data["description_mode"] == "blank" else ""
            parts.append(f"set description{where}")
        for flag, label in (("verified", "verified"), ("pii", "PII"), ("published", "published")):
            if data.get(flag):
                parts.append(f"{label} {'on' if data[flag] == 'true' else 'off'}")
        text = "; ".join(parts)
        return text[:1].upper() + text[1:]


YES_NO = [("true", "Yes"), ("false", "No")]


class ResourceEditForm(forms.Form):
    """One resource's editable fields, filled with what the mirror holds. Only the fields the steward
    changed become the edit (the rest is neither resolved nor sent), and a signed copy of what the form
    showed lets the view refuse an edit of a field Secoda changed meanwhile."""

    LIST_FIELDS = ("owners", "tags", "teams")
    FLAGS = ("verified", "pii", "published")
    # Form field -> the resource fields it stands for.
    SOURCES = {"owners": ("owners", "owners_groups"), "tags": ("tags",), "teams": ("teams",),
               "description": ("description",), "verified": ("verified",), "pii": ("pii",),
               "published": ("published",)}
    SALT = "hygiene.resource-edit"

    owners = forms.CharField(required=False, label="Owners", max_length=20_000,
                             help_text="People or groups, by name or e-mail, separated by commas. Empty: no owner.",
                             widget=forms.TextInput(attrs={"list": "people-names", "autocomplete": "off"}))
    tags = forms.CharField(required=False, label="Tags", max_length=20_000, help_text="Separated by commas.",
                           widget=forms.TextInput(attrs={"list": "tag-names", "autocomplete": "off"}))
    teams = forms.CharField(required=False, label="Teams", max_length=20_000, help_text="Separated by commas.",
                            widget=forms.TextInput(attrs={"list": "team-names", "autocomplete": "off"}))
    description = forms.CharField(required=False, label="Description", max_length=200_000, strip=False,
                                  widget=forms.Textarea(attrs={"rows": 4}))
    verified = forms.ChoiceField(choices=YES_NO, label="Verified")
    pii = forms.ChoiceField(choices=YES_NO, label="PII")
    published = forms.ChoiceField(choices=YES_NO, label="Published")
    shown = forms.CharField(widget=forms.HiddenInput)

    def __init__(self, *args, lookup=None, resource_id=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lookup = lookup or Lookup()
        self.resource_id = resource_id
        for name, field in self.fields.items():
            if field.help_text:
                field.widget.attrs["aria-describedby"] = f"id_{name}_help"

    def full_clean(self):
        super().full_clean()
        first = True
        for name in self.errors:  # screen readers announce the field's error with it
            if name in self.fields:
                if first:  # focus lands on the first field to fix, not at the top of the page
                    self.fields[name].widget.attrs["autofocus"] = True
                    first = False
                attrs = self.fields[name].widget.attrs
                attrs["aria-invalid"] = "true"
                attrs["aria-describedby"] = " ".join(filter(None, [attrs.get("aria-describedby"), f"id_{name}_error"]))

    @classmethod
    def initial_for(cls, resource, directory):
        """The form's starting values (names a steward reads) and the signed copy of them and of the
        mirror's values they stand for."""
        people = SecodaUser.objects.in_bulk(resource.owners)
        owners = [(people[i].email or people[i].display_name) if i in people else i for i in resource.owners]
        owners += [f"{name} (group)" for name in directory.group_names(resource.owners_groups)]
        values = {
            "owners": ", ".join(owners), "tags": ", ".join(directory.tag_names(resource.tags)),
            "teams": ", ".join(directory.team_names(resource.teams)), "description": resource.description,
            **{flag: "true" if getattr(resource, flag) else "false" for flag in cls.FLAGS},
        }
        mirror = {name: getattr(resource, name) for sources in cls.SOURCES.values() for name in sources}
        return {**values, "shown": signing.dumps({"id": resource.pk, "values": values, "mirror": mirror},
                                                 salt=cls.SALT, compress=True)}

    @classmethod
    def comparable(cls, field, value):
        if field in cls.LIST_FIELDS:
            return sorted(name.lower() for name in split_names(value))
        if field == "description":
            return one_line_breaks(value).strip()
        return value or ""

    def clean_shown(self):
        try:
            shown = signing.loads(self.cleaned_data["shown"], salt=self.SALT)
        except signing.BadSignature:
            raise forms.ValidationError("This form was damaged on the way back. Open the resource's edit "
                                        "page again.")
        if shown.get("id") != self.resource_id:
            raise forms.ValidationError("This form belongs to another resource. Open its edit page again.")
        return shown

    def changed_fields(self):
        shown = self.cleaned_data.get("shown") or {}
        values = shown.get("values", {})
        return [name for name in self.SOURCES
                if self.comparable(name, self.data.get(name)) != self.comparable(name, values.get(name))]

    def clean(self):
        data = super().clean()
        if "shown" not in data:
            return data
        changed = self.changed_fields()
        edit = {}
        if "owners" in changed:
            resolved, problems = self.lookup.resolve(split_names(data.get("owners")), self.lookup.people,
                                                     "person or group")
            for problem in problems:
                self.add_error("owners", problem)
            edit["owners"] = {"mode": "replace", "users": [i for kind, i in resolved if kind == "user"],
                              "groups": [i for kind, i in resolved if kind == "group"]}
        for field, what in (("tags", "tag"), ("teams", "team")):
            if field in changed:
                ids, problems = self.lookup.resolve(split_names(data.get(field)), getattr(self.lookup, field), what)
                for problem in problems:
                    self.add_error(field, problem)
                edit[field] = {"mode": "replace", "ids": ids}
        if "description" in changed:
            edit["description"] = {"text": one_line_breaks(data.get("description")).strip(), "only_blank": False}
        for flag in self.FLAGS:
            if flag in changed and data.get(flag):
                edit[flag] = data[flag] == "true"
        data["edit"], data["changed"] = edit, changed
        return data

    def conflicts(self, resource):
        """The form fields the steward changed that Secoda changed too since the form was opened (the mirror
        has moved on)."""
        mirror = self.cleaned_data["shown"].get("mirror", {})
        found = []
        for name in self.cleaned_data["changed"]:
            if any(not same_value(source, mirror.get(source), getattr(resource, source))
                   for source in self.SOURCES[name]):
                found.append(name)
        return found
