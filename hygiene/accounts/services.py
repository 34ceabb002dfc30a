"""Which Secoda person a dashboard user is: linked by hand, or else by e-mail."""
from dataclasses import dataclass

from django.db.models import Q

from catalog_sync.models import ResourceRef, SecodaGroup, SecodaUser
from hygiene.accounts.models import PersonLink

BY_HAND, BY_EMAIL = "by hand", "by e-mail"


@dataclass
class Link:
    person: SecodaUser | None
    how: str = ""              # BY_HAND / BY_EMAIL, "" when not linked
    problem: str = ""          # why there is no link, in plain words

    def __bool__(self):
        return self.person is not None


def linked_person(user):
    """The user's Secoda person. A link by hand wins; otherwise the one present person with the user's
    e-mail (two with the same address are ambiguous: no guess)."""
    if not user.is_authenticated:
        return Link(None, problem="Not signed in.")
    cached = getattr(user, "_person_link", None)
    if cached is not None:
        return cached
    link = _find(user)
    user._person_link = link
    return link


def _find(user):
    manual = PersonLink.objects.filter(user=user).first()
    if manual is not None:
        person = SecodaUser.objects.present().filter(pk=manual.secoda_user_id).first()
        if person is not None:
            return Link(person, BY_HAND)
        return Link(None, problem=f"You were linked to Secoda user {manual.secoda_user_id}, who is no longer "
                                  f"in the workspace. Link yourself again below.")
    if not user.email:
        return Link(None, problem="Your account has no e-mail address to match with a Secoda person.")
    matches = list(SecodaUser.objects.present().filter(email__iexact=user.email)[:2])
    if len(matches) == 1:
        return Link(matches[0], BY_EMAIL)
    if matches:
        return Link(None, problem=f"Several Secoda people have the address {user.email}: choose yours below.")
    return Link(None, problem=f"No Secoda person has the address {user.email}.")


def find_people(text, limit=20):
    """Present Secoda people whose name or e-mail contains the text, for the link form."""
    text = text.strip()
    if not text:
        return []
    words = text.split()
    query = Q()
    for word in words:
        query &= Q(first_name__icontains=word) | Q(last_name__icontains=word) | Q(email__icontains=word)
    exact = SecodaUser.objects.present().filter(Q(email__iexact=text) | Q(pk=text))
    found = list(exact[:limit])
    if found:
        return found
    return list(SecodaUser.objects.present().filter(query).order_by("first_name", "last_name", "email")[:limit])


def link(user, person, by):
    PersonLink.objects.update_or_create(user=user, defaults={"secoda_user_id": person.pk, "linked_by": by})
    user.__dict__.pop("_person_link", None)


def unlink(user):
    """Back to matching by e-mail."""
    PersonLink.objects.filter(user=user).delete()
    user.__dict__.pop("_person_link", None)


def owned_by(person):
    """Q on Resource: assets the person owns by name, as the owner filter and the Owners page count them
    (assets their groups own are the groups' rows there)."""
    return Q(pk__in=ResourceRef.objects.filter(kind=ResourceRef.OWNER, ref_id=person.pk).values("resource_id"))


def groups_of(person):
    """The present Secoda groups the person belongs to."""
    return [g for g in SecodaGroup.objects.present().only("id", "name", "users") if person.pk in (g.users or [])]
