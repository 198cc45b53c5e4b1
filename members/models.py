import pghistory
from django.conf import settings
from django.db import models
from django.db.models.functions import Upper
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from phonenumber_field.modelfields import PhoneNumberField

from members.roles import Role


@pghistory.track()
class Store(models.Model):
    code = models.SlugField(_("code"), max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=100)
    address = models.CharField(_("address"), max_length=200, blank=True)
    phone = models.CharField(_("phone"), max_length=32, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("store")
        verbose_name_plural = _("stores")
        constraints = [models.UniqueConstraint(Upper("code"), name="store_code_unique_any_case")]

    def __str__(self) -> str:
        return self.name


@pghistory.track()
class Staff(models.Model):
    """A back-office user. The role is the user's group (members.roles.Role); cashiers belong to one store."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff")
    store = models.ForeignKey(Store, verbose_name=_("store"), null=True, blank=True, on_delete=models.PROTECT)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("staff member")
        verbose_name_plural = _("staff")

    def __str__(self) -> str:
        return self.user.get_full_name() or self.user.get_username()

    @property
    def role(self) -> str | None:
        # Groups are prefetched by the middleware, so this is query-free. Only role groups count;
        # a user put in several by hand gets the most powerful one, never an arbitrary one.
        names = {g.name for g in self.user.groups.all()}
        return next((role for role in Role.values if role in names), None)

    @property
    def role_label(self) -> str:
        return str(Role(self.role).label) if self.role else ""


@pghistory.track()
class Member(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        FROZEN = "frozen", _("Frozen")
        CANCELLED = "cancelled", _("Cancelled")

    member_no = models.CharField(_("member number"), max_length=20, unique=True)
    phone = PhoneNumberField(_("phone"), unique=True, null=True, blank=True)
    name = models.CharField(_("name"), max_length=100, blank=True)
    registered_store = models.ForeignKey(
        Store, verbose_name=_("store of registration"), null=True, blank=True, on_delete=models.PROTECT
    )
    registered_at = models.DateTimeField(_("registered at"), default=timezone.now)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.ACTIVE)

    class Meta:
        verbose_name = _("member")
        verbose_name_plural = _("members")
        indexes = [
            models.Index(fields=["registered_at"], name="member_registered_at_idx"),
            models.Index(fields=["registered_store", "registered_at"], name="member_store_reg_idx"),
        ]

    def __str__(self) -> str:
        return self.member_no
