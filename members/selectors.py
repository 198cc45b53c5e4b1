from django.db.models import QuerySet

from members.models import Member, Staff, Store
from members.roles import Role


def store_list(*, viewer: Staff | None) -> QuerySet[Store]:
    """Stores the viewer may see: a cashier sees only their own."""
    qs = Store.objects.order_by("code", "pk")
    if viewer is not None and viewer.role == Role.CASHIER:
        return qs.filter(pk=viewer.store_id) if viewer.store_id else qs.none()
    return qs


def staff_list() -> QuerySet[Staff]:
    return Staff.objects.select_related("user", "store").prefetch_related("user__groups").order_by("user__username")


def member_list(*, viewer: Staff | None, store: Store | None = None) -> QuerySet[Member]:
    """Members visible to the viewer, optionally narrowed to the store chosen in the switcher."""
    qs = Member.objects.all()
    if viewer is not None and viewer.role == Role.CASHIER:
        return qs.filter(registered_store_id=viewer.store_id) if viewer.store_id else qs.none()
    if store is not None:
        return qs.filter(registered_store=store)
    return qs
