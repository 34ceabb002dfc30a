from django.conf import settings
from django.db import models
from django.utils import timezone


class PersonLink(models.Model):
    """A dashboard user linked by hand to the Secoda person they are. Without one, the user is linked
    by e-mail: to the one Secoda person with the same address."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="person_link")
    secoda_user_id = models.CharField("Secoda person", max_length=64,
                                      help_text="The Secoda user id of this person.")
    linked_at = models.DateTimeField(default=timezone.now)
    linked_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="+")

    class Meta:
        verbose_name = "link to a Secoda person"

    def __str__(self):
        return f"{self.user} is Secoda user {self.secoda_user_id}"
