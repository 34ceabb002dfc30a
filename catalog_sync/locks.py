"""A lease-based lock in the database: one holder at a time across every
worker and host, and a crashed holder's lease simply expires."""
import os
import socket
import uuid
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from catalog_sync.models import Lease


SYNC_LOCK = "catalog-sync"  # held by the one sync that may write the mirror (all its slices included)


class LeaseLost(Exception):
    """Someone else took the lease (ours expired): stop before writing more."""


def new_holder():
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def acquire(name, holder, seconds):
    now = timezone.now()
    try:
        with transaction.atomic():
            Lease.objects.get_or_create(name=name, defaults={"expires_at": now - timedelta(seconds=1)})
    except IntegrityError:  # another process created it at the same moment
        pass
    taken = (
        Lease.objects.filter(name=name)
        .filter(Q(expires_at__lt=now) | Q(holder=holder))
        .update(holder=holder, acquired_at=now, expires_at=now + timedelta(seconds=seconds))
    )
    return taken == 1


def renew(name, holder, seconds):
    now = timezone.now()
    kept = Lease.objects.filter(name=name, holder=holder).update(expires_at=now + timedelta(seconds=seconds))
    if not kept:
        raise LeaseLost(f"The {name} lock was taken over by another worker.")


def release(name, holder):
    Lease.objects.filter(name=name, holder=holder).update(holder="", expires_at=timezone.now() - timedelta(seconds=1))


def current(name):
    """The live lease, or None."""
    return Lease.objects.filter(name=name, expires_at__gte=timezone.now()).exclude(holder="").first()
