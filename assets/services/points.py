"""Points: earning into expiring lots, spending first-expiring-first, claw-backs, restores, expiry."""

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, models
from django.db.models import Sum
from django.utils import timezone

from assets.models import (
    Account,
    Asset,
    LedgerTransaction,
    LotAllocation,
    LoyaltySettings,
    PointLot,
    PointsExpiryNotice,
    SystemAccount,
)
from assets.services.core import (
    Locked,
    _lock_accounts,
    _positive,
    _require_active,
    _require_manager,
    _reverse_guard,
    _scope,
    _system,
    _transaction,
    _write,
    run_in_transaction,
)
from assets.services.errors import InsufficientPoints, NotReversible, RefundExceedsPaid
from members.models import Member, Staff, Store

Kind = LedgerTransaction.Kind


def loyalty_settings() -> LoyaltySettings:
    return LoyaltySettings.objects.get_or_create(pk=1)[0]


def local_midnight_after(day: date) -> datetime:
    """The exclusive end of a local calendar day: everything valid "until `day`" ends at this instant."""
    zone = ZoneInfo(settings.TIME_ZONE)  # the merchant's zone, whatever zone a request has activated
    return datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=zone)


def points_expiry(earned_at: datetime, *, policy: str, days: int) -> datetime | None:
    """When points earned at `earned_at` expire under `policy` (exclusive instant, merchant's zone)."""
    earned_on = timezone.localdate(earned_at)
    if policy == LoyaltySettings.Expiry.NEVER:
        return None
    if policy == LoyaltySettings.Expiry.DAYS:
        return local_midnight_after(earned_on + timedelta(days=days))
    return local_midnight_after(date(earned_on.year + 1, 12, 31))


def points_for_paid(paid_fen: int, *, per_yuan: int | None = None, multiplier_percent: int = 100) -> int:
    """Points earned on an amount paid: paid * rate * multiplier, rounded down once, at the end (so ¥12.99 at
    1 point per yuan and *1.5 earns 19, not 12 * 1.5 = 18). Integers only: the multiplier is in percent."""
    if paid_fen < 0 or multiplier_percent < 0:
        raise ValueError("paid_fen and multiplier_percent cannot be negative")
    rate = loyalty_settings().points_per_yuan if per_yuan is None else per_yuan
    return paid_fen * rate * multiplier_percent // (100 * 100)


def points_earn(
    *,
    member: Member,
    points: int,
    idempotency_key: str,
    store: Store | None = None,
    staff: Staff | None = None,
    actor: str = "",
    external_ref: str = "",
    reason: str = "",
    expiry: str | None = None,
    expiry_days: int | None = None,
) -> LedgerTransaction:
    """Credit points as a lot expiring by the configured policy (or the one given). A points debt is
    repaid first; only the rest makes a lot. Returns the earning. Raises MemberFrozen, MemberCancelled."""
    _positive(points, "points")
    request = {"member": member.pk, "points": points, "ref": external_ref, "expiry": expiry, "days": expiry_days}

    def body() -> LedgerTransaction:
        now = timezone.now()
        accounts = _lock_accounts(member, (Asset.POINTS, Asset.POINTS_DEBT))
        _require_active(member)
        lines, lot, details = _earning(accounts, points, now, expiry=expiry, expiry_days=expiry_days)
        return _transaction(
            Kind.POINTS_EARN,
            member=member,
            amount=points,
            store=store,
            staff=staff,
            actor=actor,
            external_ref=external_ref,
            reason=reason,
            details=details,
            lines=lines,
            lot=lot,
            now=now,
        )

    return _write(
        "points_earn",
        scope=_scope(staff, actor),
        key=idempotency_key,
        request=request,
        body=body,
        savepoint=False,
        lock=(member, (Asset.POINTS, Asset.POINTS_DEBT)),
    )


def _earning(
    accounts: Locked,
    points: int,
    now: datetime,
    *,
    expiry: str | None,
    expiry_days: int | None,
    system: str = SystemAccount.POINTS_ISSUED,
) -> tuple[list[tuple[Account, int]], tuple[int, datetime | None] | None, dict[str, int]]:
    """The lines, the lot (points, expires_at) and the details of crediting `points`: a points debt is
    repaid first, only the rest makes a lot."""
    debt = accounts[Asset.POINTS_DEBT]
    repaid = min(points, debt.balance)
    credited = points - repaid
    lines = [(debt, -repaid), (_system(Asset.POINTS_DEBT, SystemAccount.POINTS_DEBT), repaid)]
    lot = None
    if credited:
        policy, days = accounts.expiry or (loyalty_settings().points_expiry, loyalty_settings().points_expiry_days)
        if expiry is not None:
            policy, days = expiry, expiry_days or days
        lot = (credited, points_expiry(now, policy=policy, days=days))
        lines += [(accounts[Asset.POINTS], credited), (_system(Asset.POINTS, system), -credited)]
    return lines, lot, ({"debt_repaid": repaid} if repaid else {})


def _live_lots(member: Member, now: datetime) -> list[tuple[int, int]]:
    """(lot id, remaining) of the member's spendable lots, first-expiring-first (never-expiring last).
    Lots already due are the expiry job's, even before it has run."""
    lots = (
        PointLot.objects.filter(member=member, remaining__gt=0)
        .exclude(expires_at__lte=now)
        .order_by(models.F("expires_at").asc(nulls_last=True), "pk")
        .values_list("pk", "remaining")
    )
    return list(lots)


def _take_from_lots(tx: LedgerTransaction, lots: list[tuple[int, int]], points: int, kind: str) -> None:
    """Take `points` from `lots` in their order, one allocation per lot touched. The caller holds the
    member's points account lock, which every writer of these lots takes first."""
    left, taken = points, []
    for pk, remaining in lots:
        take = min(left, remaining)
        taken.append((pk, take))
        left -= take
        if not left:
            break
    if left:
        raise AssertionError("points checked but not found in lots")  # the account lock makes this a bug
    LotAllocation.objects.bulk_create(
        LotAllocation(lot_id=pk, transaction=tx, kind=kind, amount=take) for pk, take in taken
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE assets_pointlot l SET remaining = l.remaining - v.take"
            " FROM unnest(%s::bigint[], %s::bigint[]) AS v(id, take) WHERE l.id = v.id",
            [[pk for pk, _t in taken], [t for _pk, t in taken]],
        )


def points_spend(
    *,
    member: Member,
    points: int,
    idempotency_key: str,
    store: Store | None = None,
    staff: Staff | None = None,
    actor: str = "",
    external_ref: str = "",
    reason: str = "",
) -> LedgerTransaction:
    """Spend points first-expiring-first. Returns the spending. Raises InsufficientPoints, MemberFrozen,
    MemberCancelled."""
    _positive(points, "points")
    request = {"member": member.pk, "points": points, "ref": external_ref}

    def body() -> LedgerTransaction:
        now = timezone.now()
        accounts = _lock_accounts(member, (Asset.POINTS,))
        _require_active(member)
        lots = _live_lots(member, now)
        available = sum(remaining for _pk, remaining in lots)
        if points > available:
            raise InsufficientPoints(available=available, wanted=points)
        tx = _transaction(
            Kind.POINTS_SPEND,
            member=member,
            amount=points,
            store=store,
            staff=staff,
            actor=actor,
            external_ref=external_ref,
            reason=reason,
            now=now,
            lines=[(accounts[Asset.POINTS], -points), (_system(Asset.POINTS, SystemAccount.POINTS_REDEEMED), points)],
        )
        _take_from_lots(tx, lots, points, LotAllocation.Kind.SPEND)
        return tx

    return _write(
        "points_spend", scope=_scope(staff, actor), key=idempotency_key, request=request, body=body, savepoint=False
    )


def points_claw_back(
    *,
    earn: LedgerTransaction,
    idempotency_key: str,
    points: int | None = None,
    store: Store | None = None,
    staff: Staff | None = None,
    actor: str = "",
    reason: str = "",
) -> LedgerTransaction:
    """Take back (part of) an earning on a refund, from the lot it made. What has been spent of it becomes
    points debt that the next earnings repay first; what has expired of it is simply gone. Returns the
    claw-back. Raises RefundExceedsPaid, NotReversible."""
    if points is not None:
        _positive(points, "points")
    request = {"earn": earn.pk, "points": points}

    def body() -> LedgerTransaction:
        if earn.kind != Kind.POINTS_EARN or earn.member is None:
            raise NotReversible()
        member = earn.member
        accounts = _lock_accounts(member, (Asset.POINTS, Asset.POINTS_DEBT))
        earn.refresh_from_db(fields=["reversed_amount"])
        wanted = points if points is not None else earn.amount - earn.reversed_amount
        if wanted <= 0:
            raise RefundExceedsPaid(left=earn.amount - earn.reversed_amount)
        full = _reverse_guard(earn, wanted)
        lot = PointLot.objects.filter(earned_by=earn).first()
        take = min(wanted, lot.remaining) if lot is not None else 0
        # What is no longer in the lot was either spent (that becomes debt) or is gone: expired, or refunded
        # to it after it expired. Each gone point excuses one clawed-back point once, over all claw-backs.
        gone = _gone_from_lot(lot) if lot is not None else 0
        excused = sum(
            int(d.get("lapsed", 0))
            for d in LedgerTransaction.objects.filter(reverses=earn, kind=Kind.POINTS_CLAW_BACK).values_list(
                "details", flat=True
            )
        )
        lapsed = min(wanted - take, max(0, gone - excused))
        debt = wanted - take - lapsed
        tx = _transaction(
            Kind.POINTS_CLAW_BACK,
            member=member,
            amount=wanted,
            store=store or earn.store,
            staff=staff,
            actor=actor,
            reason=reason,
            external_ref=earn.external_ref,
            reverses=earn,
            is_full_reversal=full,
            details={"from_lot": take, "debt": debt, "lapsed": lapsed},
            lines=[
                (accounts[Asset.POINTS], -take),
                (_system(Asset.POINTS, SystemAccount.POINTS_ISSUED), take),
                (accounts[Asset.POINTS_DEBT], debt),
                (_system(Asset.POINTS_DEBT, SystemAccount.POINTS_DEBT), -debt),
            ],
        )
        if take:
            assert lot is not None
            LotAllocation.objects.create(lot=lot, transaction=tx, kind=LotAllocation.Kind.CLAW_BACK, amount=take)
            PointLot.objects.filter(pk=lot.pk).update(remaining=models.F("remaining") - take)
        return tx

    return _write("points_claw_back", scope=_scope(staff, actor), key=idempotency_key, request=request, body=body)


def _gone_from_lot(lot: PointLot) -> int:
    """Points of a lot that expired, or that a refund could not give back to it because it had expired."""
    expired = lot.allocations.filter(kind=LotAllocation.Kind.EXPIRE).aggregate(s=Sum("amount"))["s"] or 0
    lapsed = sum(
        int(d["lapsed_by_lot"][str(lot.pk)])
        for d in LedgerTransaction.objects.filter(
            member_id=lot.member_id, kind=Kind.POINTS_RESTORE, details__lapsed_by_lot__has_key=str(lot.pk)
        ).values_list("details", flat=True)
    )
    return int(expired) + lapsed


def points_restore(
    *,
    spend: LedgerTransaction,
    idempotency_key: str,
    points: int | None = None,
    store: Store | None = None,
    staff: Staff | None = None,
    actor: str = "",
    reason: str = "",
) -> LedgerTransaction:
    """Give back (part of) a points spending on a refund, into the lots it took them from, latest-expiring
    first. Points whose lot has expired meanwhile are not given back (they would have expired anyway); a
    points debt is repaid first.
    Returns the restoration. Raises RefundExceedsPaid, NotReversible."""
    if points is not None:
        _positive(points, "points")
    request = {"spend": spend.pk, "points": points}

    def body() -> LedgerTransaction:
        if spend.kind != Kind.POINTS_SPEND or spend.member is None:
            raise NotReversible()
        now = timezone.now()
        member = spend.member
        accounts = _lock_accounts(member, (Asset.POINTS, Asset.POINTS_DEBT))
        spend.refresh_from_db(fields=["reversed_amount"])
        wanted = points if points is not None else spend.amount - spend.reversed_amount
        if wanted <= 0:
            raise RefundExceedsPaid(left=spend.amount - spend.reversed_amount)
        full = _reverse_guard(spend, wanted)
        # what this spending took from each lot, less what earlier restorations of it gave back or let lapse
        open_by_lot: dict[int, int] = {}
        for lot_id, amount in LotAllocation.objects.filter(
            models.Q(transaction=spend) | models.Q(transaction__reverses=spend, kind=LotAllocation.Kind.RESTORE)
        ).values_list("lot_id", "amount"):
            open_by_lot[lot_id] = open_by_lot.get(lot_id, 0) + amount
        for earlier in LedgerTransaction.objects.filter(reverses=spend, kind=Kind.POINTS_RESTORE).values_list(
            "details", flat=True
        ):
            for lot_id, n in earlier.get("lapsed_by_lot", {}).items():
                open_by_lot[int(lot_id)] = open_by_lot.get(int(lot_id), 0) - int(n)
        # latest-expiring first: live lots before lots that have expired meanwhile
        lots = PointLot.objects.filter(pk__in=[k for k, v in open_by_lot.items() if v > 0]).order_by(
            models.F("expires_at").desc(nulls_first=True), "-pk"
        )
        left, back, lapsed_by_lot = wanted, [], {}  # type: ignore[var-annotated]
        for lot in lots:
            take = min(left, open_by_lot[lot.pk])
            left -= take
            if lot.expires_at is None or lot.expires_at > now:
                back.append((lot, take))
            else:
                lapsed_by_lot[str(lot.pk)] = take
            if not left:
                break
        restored = sum(t for _lot, t in back)
        # restored points repay a points debt first (as an earning does); only the rest goes back into lots
        repaid = min(restored, accounts[Asset.POINTS_DEBT].balance)
        given, to_give = [], restored - repaid
        for lot, take in back:
            if to_give:
                given.append((lot, min(take, to_give)))
                to_give -= given[-1][1]
        credited = restored - repaid
        details: dict[str, Any] = {"restored": restored, "lapsed": wanted - restored}
        if lapsed_by_lot:
            details["lapsed_by_lot"] = lapsed_by_lot
        if repaid:
            details["debt_repaid"] = repaid
        tx = _transaction(
            Kind.POINTS_RESTORE,
            member=member,
            amount=wanted,
            store=store or spend.store,
            staff=staff,
            actor=actor,
            reason=reason,
            external_ref=spend.external_ref,
            reverses=spend,
            is_full_reversal=full,
            now=now,
            details=details,
            lines=[
                (accounts[Asset.POINTS], credited),
                (_system(Asset.POINTS, SystemAccount.POINTS_REDEEMED), -credited),
                (accounts[Asset.POINTS_DEBT], -repaid),
                (_system(Asset.POINTS_DEBT, SystemAccount.POINTS_DEBT), repaid),
            ],
        )
        LotAllocation.objects.bulk_create(
            LotAllocation(lot=lot, transaction=tx, kind=LotAllocation.Kind.RESTORE, amount=-take) for lot, take in given
        )
        for lot, take in given:
            PointLot.objects.filter(pk=lot.pk).update(remaining=models.F("remaining") + take)
        return tx

    return _write("points_restore", scope=_scope(staff, actor), key=idempotency_key, request=request, body=body)


def points_adjust(
    *,
    member: Member,
    points: int,
    reason: str,
    staff: Staff | None,
    idempotency_key: str,
    store: Store | None = None,
) -> LedgerTransaction:
    """A manager's correction: positive makes a lot (the configured expiry), negative takes from lots
    first-expiring-first. Raises NotAllowed, ReasonRequired, InsufficientPoints."""
    if not isinstance(points, int) or isinstance(points, bool) or points == 0:
        raise ValueError("points must be a non-zero integer")
    request = {"member": member.pk, "points": points, "reason": reason}

    def body() -> LedgerTransaction:
        _require_manager(staff, reason)
        now = timezone.now()
        accounts = _lock_accounts(member, (Asset.POINTS, Asset.POINTS_DEBT))
        fields: dict[str, Any] = {
            "member": member,
            "amount": abs(points),
            "store": store,
            "staff": staff,
            "reason": reason,
            "now": now,
        }
        if points > 0:
            lines, lot, details = _earning(
                accounts, points, now, expiry=None, expiry_days=None, system=SystemAccount.ADJUSTMENTS
            )
            return _transaction(
                Kind.POINTS_ADJUST, lines=lines, lot=lot, details={"delta": points, **details}, **fields
            )
        lots = _live_lots(member, now)
        available = sum(remaining for _pk, remaining in lots)
        if -points > available:
            raise InsufficientPoints(available=available, wanted=-points)
        tx = _transaction(
            Kind.POINTS_ADJUST,
            lines=[(accounts[Asset.POINTS], points), (_system(Asset.POINTS, SystemAccount.ADJUSTMENTS), -points)],
            details={"delta": points},
            **fields,
        )
        _take_from_lots(tx, lots, -points, LotAllocation.Kind.ADJUST)
        return tx

    return _write("points_adjust", scope=_scope(staff, ""), key=idempotency_key, request=request, body=body)


def points_expire_due(*, business_date: date, run: object = None, batch: int = 500) -> tuple[int, int]:
    """Expire every lot due by the end of `business_date` (merchant's zone). Returns (lots examined, points
    expired). Safe to run twice at once: each batch claims its lots with SKIP LOCKED, re-checks them under
    the member's account lock, and PostgreSQL allows one expiry allocation per lot."""
    cutoff = local_midnight_after(business_date)
    examined = changed = 0
    while True:
        lots, points = run_in_transaction(lambda: _expire_batch(business_date, cutoff, batch))
        if not lots:
            return examined, changed
        examined += lots
        changed += points


def _expire_batch(business_date: date, cutoff: datetime, batch: int) -> tuple[int, int]:
    due = list(
        PointLot.objects.select_for_update(skip_locked=True)
        .filter(expires_at__lte=cutoff, remaining__gt=0)
        .order_by("pk")
        .values_list("pk", "member_id")[:batch]
    )
    if not due:
        return 0, 0
    member_ids = sorted({m for _pk, m in due})
    accounts = {
        a.member_id: a
        for a in Account.objects.select_for_update().filter(member_id__in=member_ids, asset=Asset.POINTS).order_by("pk")
    }
    # re-read under the account locks: a claw-back may have changed a lot since it was picked
    lots = list(PointLot.objects.filter(pk__in=[pk for pk, _m in due], remaining__gt=0).order_by("member_id", "pk"))
    now = timezone.now()
    by_member: dict[int, list[PointLot]] = {}
    for lot in lots:
        by_member.setdefault(lot.member_id, []).append(lot)
    allocations, expired, changed = [], _system(Asset.POINTS, SystemAccount.POINTS_EXPIRED), 0
    for member_id, member_lots in by_member.items():
        total = sum(lot.remaining for lot in member_lots)
        tx = _transaction(
            Kind.POINTS_EXPIRE,
            member=Member(pk=member_id),
            amount=total,
            actor="job:points_expire",
            day=business_date,  # the points expired at the end of that day
            now=now,
            lines=[(accounts[member_id], -total), (expired, total)],
        )
        allocations += [
            LotAllocation(lot=lot, transaction=tx, kind=LotAllocation.Kind.EXPIRE, amount=lot.remaining)
            for lot in member_lots
        ]
        changed += total
    LotAllocation.objects.bulk_create(allocations)
    PointLot.objects.filter(pk__in=[lot.pk for lot in lots]).update(remaining=0)
    return len(due), changed


def points_expiring_list(*, business_date: date, run: object = None, days: int = 30) -> tuple[int, int]:
    """List, per member, the points that will expire within `days` after `business_date` (for reminders).
    Returns (members listed, rows written); a re-run of the date writes nothing new."""
    start = local_midnight_after(business_date)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO assets_pointsexpirynotice (member_id, business_date, points, first_expires_at)
            SELECT member_id, %(day)s, sum(remaining), min(expires_at)
            FROM assets_pointlot
            WHERE remaining > 0 AND expires_at > %(start)s AND expires_at <= %(end)s
            GROUP BY member_id
            ON CONFLICT (business_date, member_id) DO NOTHING
            """,
            {"day": business_date, "start": start, "end": start + timedelta(days=days)},
        )
        written = cursor.rowcount
    return PointsExpiryNotice.objects.filter(business_date=business_date).count(), written
