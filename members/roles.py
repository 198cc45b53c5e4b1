"""Staff roles are Django groups; this module names them and decides what each may do."""

from django.db import models
from django.utils.translation import gettext_lazy as _

OUR_APPS = ("members", "tiers", "assets", "benefits", "promotions", "tags", "reports")


class Role(models.TextChoices):
    OWNER = "owner", _("Owner")
    MANAGER = "manager", _("Manager")
    CASHIER = "cashier", _("Cashier")
    AUDITOR = "auditor", _("Auditor")


# Cashiers work the counter: find and register members, nothing else in the back office.
CASHIER_PERMISSIONS = {"members.view_member", "members.add_member", "members.change_member", "members.view_store"}
# Staff management stays with owners.
OWNER_ONLY_PERMISSIONS = {"members.add_staff", "members.change_staff", "members.delete_staff"}


def role_permissions(role: str, codenames: list[tuple[str, str]]) -> set[str]:
    """Which of the given (app_label, codename) permissions a role gets."""
    names = {f"{app}.{code}" for app, code in codenames if app in OUR_APPS or app == "django_celery_beat"}
    if role == Role.OWNER:
        return names
    if role == Role.MANAGER:
        return names - OWNER_ONLY_PERMISSIONS
    if role == Role.AUDITOR:
        return {n for n in names if n.split(".", 1)[1].startswith("view_")}
    return names & CASHIER_PERMISSIONS


def sync_role_groups(apps, schema_editor=None) -> None:  # type: ignore[no-untyped-def]
    """Create the role groups and (re)grant their permissions; migrations call it as models arrive."""
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    all_perms = list(Permission.objects.values_list("pk", "content_type__app_label", "codename"))
    for role in Role.values:
        group, _created = Group.objects.get_or_create(name=role)
        wanted = role_permissions(role, [(app, code) for _pk, app, code in all_perms])
        group.permissions.set([pk for pk, app, code in all_perms if f"{app}.{code}" in wanted])
