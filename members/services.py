from django.contrib.auth.models import Group, User
from django.db import connection, transaction
from django.utils.translation import gettext as _

from members.models import Staff, Store
from members.roles import Role


class StaffError(Exception):
    """A refused staff change; str(exc) is safe to show."""


def with_check_digit(digits: str) -> str:
    """Append the Luhn check digit, so a mistyped card number is caught at the counter."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return digits + str((10 - total % 10) % 10)


def is_valid_member_no(value: str) -> bool:
    return value.isascii() and value.isdigit() and len(value) >= 10 and with_check_digit(value[:-1]) == value


def member_no_next() -> str:
    """A fresh 10-digit member number from a PostgreSQL sequence (no two sessions ever get the same one)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval('members_member_no_seq')")
        (n,) = cursor.fetchone()
    return with_check_digit(f"{100_000_000 + n:09d}")


def _check_store(role: str, store: Store | None) -> None:
    if role == Role.CASHIER and store is None:
        raise StaffError(_("A cashier must belong to a store."))


@transaction.atomic
def staff_create(
    *, username: str, password: str, role: str, store: Store | None, first_name: str = "", email: str = ""
) -> Staff:
    """Create a back-office user with one role. Raises StaffError."""
    _check_store(role, store)
    if User.objects.filter(username__iexact=username).exists():
        raise StaffError(_("This username is taken."))
    user = User.objects.create_user(username=username, password=password, first_name=first_name, email=email)
    user.groups.set([Group.objects.get(name=role)])
    return Staff.objects.create(user=user, store=store)


@transaction.atomic
def staff_update(
    *, staff: Staff, role: str, store: Store | None, first_name: str, email: str, is_active: bool
) -> Staff:
    """Change a staff member's role, store, name or access. Raises StaffError."""
    _check_store(role, store)
    user = staff.user
    if not is_active and user.is_superuser:
        raise StaffError(_("A superuser cannot be deactivated here."))
    user.first_name, user.email, user.is_active = first_name, email, is_active
    user.save(update_fields=["first_name", "email", "is_active"])
    user.groups.set([Group.objects.get(name=role)])
    staff.store = store
    staff.save(update_fields=["store"])
    return staff


def staff_set_password(*, staff: Staff, password: str) -> None:
    staff.user.set_password(password)
    staff.user.save(update_fields=["password"])


def store_save(*, store: Store) -> Store:
    store.full_clean()
    store.save()
    return store
