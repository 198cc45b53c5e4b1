"""Stored balance: top-ups (with recharge packages), payments, refunds and adjustments."""

import contextlib
from datetime import datetime

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from assets.models import (
    MEMBER_ASSETS,
    Asset,
    Coupon,
    LedgerTransaction,
    RechargePackage,
    SystemAccount,
)
from assets.services.core import (
    _lock_accounts,
    _positive,
    _require_active,
    _require_manager,
    _reverse_guard,
    _scope,
    _system,
    _transaction,
    _write,
)
from assets.services.coupons import coupon_issue, coupon_void
from assets.services.errors import (
    CouponLimitReached,
    CouponNotUsable,
    CouponOutOfStock,
    CouponTemplateClosed,
    InsufficientBalance,
    MemberFrozen,
    NotReversible,
    PackageAmountMismatch,
    PackageNotOnSale,
    RefundExceedsPaid,
    TopUpAlreadySpent,
    yuan,
)
from assets.services.growth import growth_add, growth_claw_back
from assets.services.points import points_claw_back, points_earn
from members.models import Member, Staff, Store

Kind = LedgerTransaction.Kind


def package_on_sale(package: RechargePackage, at: datetime) -> bool:
    return (
        package.is_active
        and (package.starts_at is None or package.starts_at <= at)
        and (package.ends_at is None or at < package.ends_at)
    )


def balance_top_up(
    *,
    member: Member,
    idempotency_key: str,
    amount_fen: int | None = None,
    package: RechargePackage | None = None,
    store: Store | None = None,
    staff: Staff | None = None,
    actor: str = "",
    external_ref: str = "",
    tender: str = "cash",
) -> LedgerTransaction:
    """Add paid-in principal (and a package's bonus, points, growth and coupons). Returns the top-up.
    Raises MemberFrozen, MemberCancelled, PackageNotOnSale, PackageAmountMismatch."""
    request = {
        "member": member.pk,
        "amount": amount_fen,
        "package": package.pk if package else None,
        "ref": external_ref,
    }

    def body() -> LedgerTransaction:
        now = timezone.now()
        amount = amount_fen
        if package is not None:
            if not package_on_sale(package, now):
                raise PackageNotOnSale()
            if amount is not None and amount != package.pay_fen:
                raise PackageAmountMismatch(price=yuan(package.pay_fen))
            amount = package.pay_fen
        _positive(amount or 0, "amount_fen")
        assert amount is not None
        bonus = package.bonus_fen if package else 0
        accounts = _lock_accounts(member, MEMBER_ASSETS)
        _require_active(member)
        tx = _transaction(
            Kind.TOP_UP,
            member=member,
            amount=amount,
            store=store,
            staff=staff,
            actor=actor,
            external_ref=external_ref,
            package=package,
            now=now,
            details={"principal_fen": amount, "bonus_fen": bonus, "tender": tender},
            lines=[
                (accounts[Asset.PRINCIPAL], amount),
                (_system(Asset.PRINCIPAL, SystemAccount.CASH_RECEIVED), -amount),
                (accounts[Asset.BONUS], bonus),
                (_system(Asset.BONUS, SystemAccount.BONUS_EXPENSE), -bonus),
            ],
        )
        if package is not None:
            tx.details |= _package_extras(tx, package, member=member, store=store, staff=staff, actor=actor)
            tx.save(update_fields=["details"])
        if member.member_type == Member.Type.REGISTERED or member.stored_value_at is None:
            _mark_stored_value(member, now)
        return tx

    return _write(
        "balance_top_up", scope=_scope(staff, actor), key=idempotency_key, request=request, body=body
    )  # with a savepoint: a package's points, growth or coupons may still be refused after the money is in


def _mark_stored_value(member: Member, now: datetime) -> None:
    """A first top-up makes a registered member a stored-value member (a paid member keeps that type)."""
    Member.objects.filter(pk=member.pk, member_type=Member.Type.REGISTERED).update(member_type=Member.Type.STORED_VALUE)
    Member.objects.filter(pk=member.pk, stored_value_at__isnull=True).update(stored_value_at=now)


def _package_extras(
    tx: LedgerTransaction,
    package: RechargePackage,
    *,
    member: Member,
    store: Store | None,
    staff: Staff | None,
    actor: str,
) -> dict[str, object]:
    """The points, growth and coupons a package gives, each through its own service under a key derived
    from the top-up's, so they happen exactly once with it. A coupon out of stock is skipped, not fatal."""
    key = f"tx{tx.pk}"
    extras: dict[str, object] = {}
    if package.points:
        earn = points_earn(
            member=member,
            points=package.points,
            idempotency_key=f"{key}:points",
            store=store,
            staff=staff,
            actor=actor,
            reason=str(package),
        )
        extras["points_tx"] = earn.pk
    if package.growth:
        extras["growth_tx"] = growth_add(
            member=member,
            amount=package.growth,
            idempotency_key=f"{key}:growth",
            store=store,
            staff=staff,
            actor=actor,
            reason=str(package),
        ).pk
    coupons, skipped = [], []
    for template in package.coupon_templates.order_by("pk"):
        try:
            coupons.append(
                coupon_issue(
                    template=template,
                    member=member,
                    channel=Coupon.Channel.PACKAGE,
                    idempotency_key=f"{key}:coupon:{template.pk}",
                    store=store,
                    staff=staff,
                    actor=actor,
                ).pk
            )
        except (CouponOutOfStock, CouponLimitReached, CouponTemplateClosed):
            skipped.append(template.pk)
    if coupons or skipped:
        extras |= {"coupons": coupons, "coupons_skipped": skipped}
    return extras


def balance_spend(
    *,
    member: Member,
    amount_fen: int,
    idempotency_key: str,
    store: Store | None = None,
    staff: Staff | None = None,
    actor: str = "",
    external_ref: str = "",
) -> LedgerTransaction:
    """Pay from the balance, principal and bonus in proportion to what the member holds (the bonus part
    rounds down). Returns the payment. Raises InsufficientBalance, MemberFrozen, MemberCancelled."""
    _positive(amount_fen, "amount_fen")
    request = {"member": member.pk, "amount": amount_fen, "ref": external_ref}

    def body() -> LedgerTransaction:
        accounts = _lock_accounts(member, (Asset.PRINCIPAL, Asset.BONUS))
        _require_active(member)
        principal, bonus = accounts[Asset.PRINCIPAL], accounts[Asset.BONUS]
        total = principal.balance + bonus.balance
        if amount_fen > total:
            raise InsufficientBalance(available=yuan(total), wanted=yuan(amount_fen))
        bonus_part = amount_fen * bonus.balance // total  # the bonus part rounds down (spec)
        principal_part = amount_fen - bonus_part
        tx = _transaction(
            Kind.BALANCE_SPEND,
            member=member,
            amount=amount_fen,
            store=store,
            staff=staff,
            actor=actor,
            external_ref=external_ref,
            details={"principal_fen": principal_part, "bonus_fen": bonus_part},
            lines=[
                (principal, -principal_part),
                (_system(Asset.PRINCIPAL, SystemAccount.SALES), principal_part),
                (bonus, -bonus_part),
                (_system(Asset.BONUS, SystemAccount.SALES), bonus_part),
            ],
        )
        return tx

    return _write(
        "balance_spend",
        scope=_scope(staff, actor),
        key=idempotency_key,
        request=request,
        body=body,
        savepoint=False,
        lock=(member, (Asset.PRINCIPAL, Asset.BONUS)),
    )


def balance_refund(
    *,
    spend: LedgerTransaction,
    idempotency_key: str,
    amount_fen: int | None = None,
    store: Store | None = None,
    staff: Staff | None = None,
    actor: str = "",
    reason: str = "",
) -> LedgerTransaction:
    """Give back (part of) a balance payment, principal and bonus in exactly the split it took: refunds of
    one payment add up to its split, whatever their number. Returns the refund. Raises RefundExceedsPaid,
    NotReversible."""
    if amount_fen is not None:
        _positive(amount_fen, "amount_fen")
    request = {"spend": spend.pk, "amount": amount_fen}

    def body() -> LedgerTransaction:
        if spend.kind != Kind.BALANCE_SPEND or spend.member is None:
            raise NotReversible()
        accounts = _lock_accounts(spend.member, (Asset.PRINCIPAL, Asset.BONUS))
        spend.refresh_from_db(fields=["reversed_amount"])
        amount = amount_fen if amount_fen is not None else spend.amount - spend.reversed_amount
        if amount <= 0:
            raise RefundExceedsPaid(left=yuan(spend.amount - spend.reversed_amount))
        before = spend.reversed_amount
        try:
            full = _reverse_guard(spend, amount)
        except RefundExceedsPaid:
            raise RefundExceedsPaid(left=yuan(spend.amount - spend.reversed_amount)) from None
        # cumulative rounding: the bonus given back so far is always floor(bonus * refunded / paid)
        bonus_taken = int(spend.details["bonus_fen"])
        bonus_part = bonus_taken * (before + amount) // spend.amount - bonus_taken * before // spend.amount
        principal_part = amount - bonus_part
        tx = _transaction(
            Kind.BALANCE_REFUND,
            member=spend.member,
            amount=amount,
            store=store or spend.store,
            staff=staff,
            actor=actor,
            reason=reason,
            external_ref=spend.external_ref,
            reverses=spend,
            is_full_reversal=full,
            details={"principal_fen": principal_part, "bonus_fen": bonus_part},
            lines=[
                (accounts[Asset.PRINCIPAL], principal_part),
                (_system(Asset.PRINCIPAL, SystemAccount.SALES), -principal_part),
                (accounts[Asset.BONUS], bonus_part),
                (_system(Asset.BONUS, SystemAccount.SALES), -bonus_part),
            ],
        )
        return tx

    return _write("balance_refund", scope=_scope(staff, actor), key=idempotency_key, request=request, body=body)


def top_up_refund(
    *,
    top_up: LedgerTransaction,
    idempotency_key: str,
    staff: Staff | None = None,
    actor: str = "",
    store: Store | None = None,
    reason: str = "",
    override: bool = False,
) -> LedgerTransaction:
    """Refund a top-up: its principal goes back, its package's bonus is taken back, and so are the
    package's points (clawed back), unused coupons (voided) and growth. When part of it has been spent,
    it is refused unless a manager overrides with a reason; then what is left of it is refunded.
    Raises TopUpAlreadySpent, NotAllowed, ReasonRequired, NotReversible, MemberFrozen."""
    request = {"top_up": top_up.pk, "override": override, "reason": reason}

    def body() -> LedgerTransaction:
        if top_up.kind != Kind.TOP_UP or top_up.member is None:
            raise NotReversible()
        member = top_up.member
        accounts = _lock_accounts(member, MEMBER_ASSETS)
        if member.status == Member.Status.FROZEN:
            raise MemberFrozen()  # no cash leaves a frozen account (a cancelled member's may: that is the point)
        principal_paid, bonus_given = int(top_up.details["principal_fen"]), int(top_up.details["bonus_fen"])
        principal, bonus = accounts[Asset.PRINCIPAL], accounts[Asset.BONUS]
        spent = principal.balance < principal_paid or bonus.balance < bonus_given
        if spent:
            if not override:
                raise TopUpAlreadySpent()
            _require_manager(staff, reason)
        updated = LedgerTransaction.objects.filter(pk=top_up.pk, reversed_amount=0).update(
            reversed_amount=models.F("amount")
        )
        if not updated:
            raise NotReversible()
        principal_back, bonus_back = min(principal_paid, principal.balance), min(bonus_given, bonus.balance)
        tx = _transaction(
            Kind.TOP_UP_REFUND,
            member=member,
            amount=principal_back,
            store=store or top_up.store,
            staff=staff,
            actor=actor,
            reason=reason,
            external_ref=top_up.external_ref,
            reverses=top_up,
            is_full_reversal=True,
            package=top_up.package,
            details={"principal_fen": principal_back, "bonus_fen": bonus_back, "override": spent},
            lines=[
                (principal, -principal_back),
                (_system(Asset.PRINCIPAL, SystemAccount.CASH_RECEIVED), principal_back),
                (bonus, -bonus_back),
                (_system(Asset.BONUS, SystemAccount.BONUS_EXPENSE), bonus_back),
            ],
        )
        key = f"tx{tx.pk}"
        if points_tx := top_up.details.get("points_tx"):
            earn = LedgerTransaction.objects.get(pk=points_tx)
            if earn.reversed_amount < earn.amount:
                points_claw_back(earn=earn, idempotency_key=f"{key}:points", staff=staff, actor=actor, store=store)
        if growth_tx := top_up.details.get("growth_tx"):
            add = LedgerTransaction.objects.get(pk=growth_tx)
            if add.reversed_amount < add.amount:
                growth_claw_back(add=add, idempotency_key=f"{key}:growth", staff=staff, actor=actor, store=store)
        for coupon in Coupon.objects.filter(pk__in=top_up.details.get("coupons", []), status=Coupon.Status.AVAILABLE):
            with contextlib.suppress(CouponNotUsable):  # used or expired meanwhile: nothing left to take back
                coupon_void(
                    coupon=coupon,
                    reason=str(_("Top-up refunded")),
                    idempotency_key=f"{key}:void:{coupon.pk}",
                    staff=staff,
                    actor=actor,
                )
        return tx

    return _write("top_up_refund", scope=_scope(staff, actor), key=idempotency_key, request=request, body=body)


def balance_adjust(
    *,
    member: Member,
    asset: str,
    amount_fen: int,
    reason: str,
    staff: Staff | None,
    idempotency_key: str,
    store: Store | None = None,
) -> LedgerTransaction:
    """A manager's correction of principal or bonus (signed). Raises NotAllowed, ReasonRequired,
    InsufficientBalance."""
    if asset not in (Asset.PRINCIPAL, Asset.BONUS):
        raise ValueError("asset must be principal or bonus")
    if not isinstance(amount_fen, int) or isinstance(amount_fen, bool) or amount_fen == 0:
        raise ValueError("amount_fen must be a non-zero integer")
    request = {"member": member.pk, "asset": asset, "amount": amount_fen, "reason": reason}

    def body() -> LedgerTransaction:
        _require_manager(staff, reason)
        accounts = _lock_accounts(member, (asset,))
        account = accounts[asset]
        if account.balance + amount_fen < 0:
            raise InsufficientBalance(available=yuan(account.balance), wanted=yuan(-amount_fen))
        tx = _transaction(
            Kind.BALANCE_ADJUST,
            member=member,
            amount=abs(amount_fen),
            store=store,
            staff=staff,
            reason=reason,
            details={"asset": asset, "delta_fen": amount_fen},
            lines=[(account, amount_fen), (_system(asset, SystemAccount.ADJUSTMENTS), -amount_fen)],
        )
        return tx

    return _write("balance_adjust", scope=_scope(staff, ""), key=idempotency_key, request=request, body=body)


def balance_bonus_grant(
    *,
    member: Member,
    amount_fen: int,
    idempotency_key: str,
    actor: str,
    staff: Staff | None = None,
    store: Store | None = None,
    reason: str = "",
) -> LedgerTransaction:
    """Give bonus balance as a reward (a tier's gift pack, a campaign), not for money paid. Returns the grant.
    Raises MemberFrozen, MemberCancelled."""
    _positive(amount_fen, "amount_fen")
    request = {"member": member.pk, "amount": amount_fen, "reason": reason}

    def body() -> LedgerTransaction:
        accounts = _lock_accounts(member, (Asset.BONUS,))
        _require_active(member)
        return _transaction(
            Kind.BONUS_GRANT,
            member=member,
            amount=amount_fen,
            store=store,
            staff=staff,
            actor=actor,
            reason=reason,
            details={"bonus_fen": amount_fen},
            lines=[
                (accounts[Asset.BONUS], amount_fen),
                (_system(Asset.BONUS, SystemAccount.BONUS_EXPENSE), -amount_fen),
            ],
        )

    return _write(
        "balance_bonus_grant",
        scope=_scope(staff, actor),
        key=idempotency_key,
        request=request,
        body=body,
        savepoint=False,
    )
