"""Coupons: issue (stock and per-member limits), redeem, restore, void and expire."""

import secrets
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, models, transaction
from django.utils import timezone

from assets.models import (
    Asset,
    Coupon,
    CouponTemplate,
    LedgerTransaction,
)
from assets.services.core import _lock_accounts, _require_active, _scope, _transaction, _write
from assets.services.errors import (
    CouponLimitReached,
    CouponNotUsable,
    CouponOutOfStock,
    CouponTemplateClosed,
    NotReversible,
    ReasonRequired,
)
from assets.services.points import local_midnight_after
from members.models import Member, Staff, Store

Kind = LedgerTransaction.Kind


def coupon_code_new() -> str:
    """16 random digits: unguessable (53 bits), and easy to type or scan at the counter."""
    return f"{secrets.randbelow(10**16):016d}"


def coupon_window(template: CouponTemplate, issued_at: datetime) -> tuple[datetime, datetime]:
    """[starts, expires) of a coupon issued at `issued_at`; "N days" counts the day of issue as the first."""
    if template.validity == CouponTemplate.Validity.FIXED:
        assert template.valid_until is not None
        zone = ZoneInfo(settings.TIME_ZONE)
        starts = issued_at
        if template.valid_from is not None:
            starts = datetime.combine(template.valid_from, datetime.min.time(), tzinfo=zone)
        return starts, local_midnight_after(template.valid_until)
    assert template.valid_days
    return issued_at, local_midnight_after(timezone.localdate(issued_at) + timedelta(days=template.valid_days - 1))


def coupon_issue(
    *,
    template: CouponTemplate,
    member: Member,
    idempotency_key: str,
    channel: str = Coupon.Channel.MANUAL,
    store: Store | None = None,
    staff: Staff | None = None,
    actor: str = "",
) -> Coupon:
    """Issue one coupon of `template` to `member`. Stock and the per-member limit are guarded UPDATEs, so
    concurrent issuing never exceeds either. Returns the coupon. Raises CouponOutOfStock,
    CouponLimitReached, CouponTemplateClosed, MemberFrozen, MemberCancelled."""
    request = {"template": template.pk, "member": member.pk, "channel": channel}

    def body() -> Coupon:
        now = timezone.now()
        _lock_accounts(member, (Asset.POINTS,))  # serialises this member's ledger work and re-reads status
        _require_active(member)
        template.refresh_from_db()
        starts, expires = coupon_window(template, now)
        if not template.is_active or expires <= now:
            raise CouponTemplateClosed()
        took = (
            CouponTemplate.objects.filter(pk=template.pk)
            .filter(models.Q(stock__isnull=True) | models.Q(issued__lt=models.F("stock")))
            .update(issued=models.F("issued") + 1)
        )
        if not took:
            raise CouponOutOfStock()
        if template.per_member_limit is not None:
            with connection.cursor() as cursor:
                cursor.execute(
                    "INSERT INTO assets_couponholding (member_id, template_id, issued) VALUES (%s, %s, 1)"
                    " ON CONFLICT (member_id, template_id) DO UPDATE SET issued = assets_couponholding.issued + 1"
                    " WHERE assets_couponholding.issued < %s RETURNING issued",
                    [member.pk, template.pk, template.per_member_limit],
                )
                if cursor.fetchone() is None:
                    raise CouponLimitReached()
        coupon = Coupon.objects.create(
            code=coupon_code_new(),
            template=template,
            member=member,
            channel=channel,
            issued_at=now,
            starts_at=starts,
            expires_at=expires,
        )
        _transaction(
            Kind.COUPON_ISSUE,
            member=member,
            store=store,
            staff=staff,
            actor=actor,
            coupon=coupon,
            now=now,
            details={"channel": channel},
        )
        return coupon

    return _write("coupon_issue", scope=_scope(staff, actor), key=idempotency_key, request=request, body=body)


def coupon_redeem(
    *,
    coupon: Coupon,
    idempotency_key: str,
    member: Member,
    store: Store | None = None,
    order_amount_fen: int | None = None,
    external_ref: str = "",
    staff: Staff | None = None,
    actor: str = "",
) -> LedgerTransaction:
    """Use a coupon (one guarded UPDATE: of many concurrent redemptions exactly one succeeds). Checks the
    member, the store and the threshold when given. Returns the redemption. Raises CouponNotUsable,
    MemberFrozen, MemberCancelled."""
    request = {
        "coupon": coupon.pk,
        "member": member.pk,
        "order": order_amount_fen,
        "ref": external_ref,
        "store": store.pk if store else None,
    }

    def body() -> LedgerTransaction:
        now = timezone.now()
        if member.pk != coupon.member_id:
            raise CouponNotUsable(reason="other_member")
        owner = coupon.member
        _lock_accounts(owner, (Asset.POINTS,))
        _require_active(owner)
        template = coupon.template
        if store is not None and template.stores.exists() and not template.stores.filter(pk=store.pk).exists():
            raise CouponNotUsable(reason="store")
        if (
            order_amount_fen is not None
            and template.kind == CouponTemplate.Kind.CASH_OFF
            and order_amount_fen < template.threshold_fen
        ):
            raise CouponNotUsable(reason="threshold")
        tx = _transaction(
            Kind.COUPON_REDEEM,
            member=owner,
            store=store,
            staff=staff,
            actor=actor,
            coupon=coupon,
            external_ref=external_ref,
            amount=1,
            now=now,
        )
        used = Coupon.objects.filter(
            pk=coupon.pk, status=Coupon.Status.AVAILABLE, starts_at__lte=now, expires_at__gt=now
        ).update(status=Coupon.Status.USED, redeemed_by=tx, redeemed_at=now, order_ref=external_ref[:64])
        if not used:
            coupon.refresh_from_db()
            if coupon.status == Coupon.Status.AVAILABLE:
                raise CouponNotUsable(reason="not_started" if coupon.starts_at > now else "expired")
            raise CouponNotUsable(reason=coupon.status)
        coupon.refresh_from_db()
        return tx

    return _write("coupon_redeem", scope=_scope(staff, actor), key=idempotency_key, request=request, body=body)


def coupon_restore(
    *,
    redemption: LedgerTransaction,
    idempotency_key: str,
    staff: Staff | None = None,
    actor: str = "",
    reason: str = "",
) -> LedgerTransaction:
    """Give back the coupon `redemption` used, on a refund of that order: available again while within its
    validity, expired after. Only while that redemption is the coupon's current use (a coupon restored and
    used again on another order is not freed by a late refund of the first). Returns the restoration.
    Raises NotReversible."""
    request = {"redemption": redemption.pk}

    def body() -> LedgerTransaction:
        if redemption.kind != Kind.COUPON_REDEEM or redemption.coupon_id is None or redemption.member is None:
            raise NotReversible()
        now = timezone.now()
        _lock_accounts(redemption.member, (Asset.POINTS,))
        coupon = Coupon.objects.get(pk=redemption.coupon_id)  # read under the member's lock
        if coupon.status != Coupon.Status.USED or coupon.redeemed_by_id != redemption.pk:
            raise NotReversible()
        if not LedgerTransaction.objects.filter(pk=redemption.pk, reversed_amount=0).update(reversed_amount=1):
            raise NotReversible()
        still_valid = coupon.expires_at > now
        changed = Coupon.objects.filter(pk=coupon.pk, status=Coupon.Status.USED, redeemed_by=redemption).update(
            status=Coupon.Status.AVAILABLE if still_valid else Coupon.Status.EXPIRED,
            redeemed_by=None,
            redeemed_at=None,
            closed_at=None if still_valid else now,
        )
        if not changed:
            raise NotReversible()
        return _transaction(
            Kind.COUPON_RESTORE,
            member=redemption.member,
            staff=staff,
            actor=actor,
            coupon=coupon,
            reason=reason,
            reverses=redemption,
            is_full_reversal=True,
            amount=1,
            now=now,
            external_ref=redemption.external_ref,
            details={} if still_valid else {"expired": True},
        )

    return _write("coupon_restore", scope=_scope(staff, actor), key=idempotency_key, request=request, body=body)


def coupon_void(
    *,
    coupon: Coupon,
    reason: str,
    idempotency_key: str,
    staff: Staff | None = None,
    actor: str = "",
) -> LedgerTransaction:
    """Withdraw an available coupon. Returns the voiding. Raises CouponNotUsable, ReasonRequired."""
    request = {"coupon": coupon.pk, "reason": reason}

    def body() -> LedgerTransaction:
        if not reason.strip():
            raise ReasonRequired()
        now = timezone.now()
        _lock_accounts(coupon.member, (Asset.POINTS,))
        tx = _transaction(
            Kind.COUPON_VOID, member=coupon.member, staff=staff, actor=actor, coupon=coupon, reason=reason, now=now
        )
        changed = Coupon.objects.filter(pk=coupon.pk, status=Coupon.Status.AVAILABLE).update(
            status=Coupon.Status.VOID, closed_at=now
        )
        if not changed:
            coupon.refresh_from_db()
            raise CouponNotUsable(reason=coupon.status)
        coupon.refresh_from_db()
        return tx

    return _write("coupon_void", scope=_scope(staff, actor), key=idempotency_key, request=request, body=body)


def coupon_expire_due(*, business_date: date, run: object = None, batch: int = 1000) -> tuple[int, int]:
    """Expire available coupons whose validity ended by the end of `business_date`, in batches (SKIP
    LOCKED, so overlapping runs share the work). Returns (coupons expired, coupons expired)."""
    cutoff = local_midnight_after(business_date)
    total = 0
    while True:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(
                    """
                    UPDATE assets_coupon c SET status = 'expired', closed_at = now()
                    WHERE c.id IN (SELECT id FROM assets_coupon WHERE status = 'available' AND expires_at <= %s
                                   ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED)
                    AND c.status = 'available'
                    RETURNING c.id, c.member_id
                    """,
                    [cutoff, batch],
                )
                rows = cursor.fetchall()
            if not rows:
                return total, total
            now = timezone.now()
            LedgerTransaction.objects.bulk_create(
                LedgerTransaction(
                    kind=Kind.COUPON_EXPIRE,
                    member_id=member_id,
                    coupon_id=coupon_id,
                    actor="job:coupons_expire",
                    business_date=business_date,
                    created_at=now,
                )
                for coupon_id, member_id in rows
            )
        total += len(rows)
