"""Roles: viewers read; stewards also change things (edits, snoozes); admins run the admin."""
STEWARDS = "Stewards"
VIEWERS = "Viewers"


def ensure_roles():
    from django.contrib.auth.models import Group

    stewards, _ = Group.objects.get_or_create(name=STEWARDS)
    viewers, _ = Group.objects.get_or_create(name=VIEWERS)
    return stewards, viewers


def is_steward(user):
    if not user.is_authenticated:
        return False
    return user.is_superuser or user.groups.filter(name=STEWARDS).exists()
