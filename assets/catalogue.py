"""Writes of the ledgers' configuration: coupon templates, recharge packages, the loyalty settings, and
starting a coupon issue to a filtered member list. Value itself moves only through assets.services."""

from collections.abc import Iterable

import pghistory
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Q

from assets import batch, tasks
from assets.models import CouponIssueBatch, CouponTemplate, LoyaltySettings, RechargePackage
from members.models import Member, Store


class StockBelowIssued(Exception):
    def __init__(self, *, issued: int) -> None:
        super().__init__(issued)
        self.issued = issued


def coupon_template_save(
    *, template: CouponTemplate, stores: Iterable[Store], by: User | None = None
) -> CouponTemplate:
    """Create or change a template and the stores it is valid in (audited by pghistory). The issued count
    is the coupon services' guarded counter, so it is never written from here."""
    is_new = template.pk is None
    with transaction.atomic(), pghistory.context(user=by.pk if by else None, action="coupon_template_save"):
        if is_new:
            template.save()
        else:
            fields = [f.attname for f in CouponTemplate._meta.concrete_fields if f.name not in ("id", "issued")]
            # a stock below what was issued in the meantime is refused here, not by a constraint error
            updated = (
                CouponTemplate.objects.filter(pk=template.pk)
                .filter(Q(issued__lte=template.stock) if template.stock is not None else Q())
                .update(**{name: getattr(template, name) for name in fields})
            )
            if not updated:
                raise StockBelowIssued(issued=CouponTemplate.objects.get(pk=template.pk).issued)
            template.refresh_from_db(fields=["issued"])
        template.stores.set(list(stores))
    return template


def recharge_package_save(
    *, package: RechargePackage, coupon_templates: Iterable[CouponTemplate], by: User | None = None
) -> RechargePackage:
    with transaction.atomic(), pghistory.context(user=by.pk if by else None, action="recharge_package_save"):
        package.save()
        package.coupon_templates.set(list(coupon_templates))
    return package


def loyalty_settings_save(*, settings_obj: LoyaltySettings, by: User | None = None) -> LoyaltySettings:
    settings_obj.pk = 1  # one row (a check constraint says so too)
    with transaction.atomic(), pghistory.context(user=by.pk if by else None, action="loyalty_settings_save"):
        settings_obj.save()
    return settings_obj


def coupon_issue_batch_members(filters: dict[str, object]) -> int:
    """How many members a batch with these member-list filters would try: the active ones among them."""
    return batch.batch_members(filters).filter(status=Member.Status.ACTIVE).count()


def coupon_issue_batch_start(
    *, template: CouponTemplate, filters: dict[str, object], by: User, idempotency_key: str
) -> CouponIssueBatch:
    """Record a batch issue of `template` to the members matching the member-list `filters`, and queue the
    job that issues it once this transaction commits. A double submit (same key) returns the batch it started."""
    earlier = CouponIssueBatch.objects.filter(idempotency_key=idempotency_key).first()
    if earlier is not None:
        return earlier
    try:
        with transaction.atomic():
            started = CouponIssueBatch.objects.create(
                template=template,
                filters=filters,
                total=coupon_issue_batch_members(filters),
                created_by=by,
                idempotency_key=idempotency_key,
            )
            transaction.on_commit(lambda: tasks.coupon_issue_batch_task.delay(batch_id=started.pk))
    except IntegrityError:  # the other submit got there first
        return CouponIssueBatch.objects.get(idempotency_key=idempotency_key)
    return started
