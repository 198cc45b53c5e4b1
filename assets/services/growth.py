"""Growth value: added by purchases and top-ups, clawed back by refunds."""

from datetime import datetime

from django.utils import timezone

from assets.models import (
    Asset,
    LedgerTransaction,
    SystemAccount,
)
from assets.services.core import (
    _lock_accounts,
    _positive,
    _require_active,
    _reverse_guard,
    _scope,
    _system,
    _transaction,
    _write,
)
from assets.services.errors import NotReversible, RefundExceedsPaid
from members.models import Member, Staff, Store

Kind = LedgerTransaction.Kind


def growth_add(
    *,
    member: Member,
    amount: int,
    idempotency_key: str,
    store: Store | None = None,
    staff: Staff | None = None,
    actor: str = "",
    external_ref: str = "",
    reason: str = "",
    occurred_at: datetime | None = None,
) -> LedgerTransaction:
    """Add growth value. Returns the addition. `occurred_at` dates it in the past (purchase history imported
    from another system: a rolling window counts it when it happened). Raises MemberFrozen, MemberCancelled."""
    _positive(amount, "amount")
    if occurred_at is not None and occurred_at > timezone.now():
        raise ValueError("growth value cannot be dated in the future")
    request = {
        "member": member.pk,
        "amount": amount,
        "ref": external_ref,
        "at": occurred_at.isoformat() if occurred_at else None,
    }

    def body() -> LedgerTransaction:
        accounts = _lock_accounts(member, (Asset.GROWTH,))
        _require_active(member)
        tx = _transaction(
            Kind.GROWTH_ADD,
            member=member,
            amount=amount,
            store=store,
            staff=staff,
            actor=actor,
            external_ref=external_ref,
            reason=reason,
            lines=[(accounts[Asset.GROWTH], amount), (_system(Asset.GROWTH, SystemAccount.GROWTH_ISSUED), -amount)],
            now=occurred_at,
        )
        return tx

    return _write(
        "growth_add",
        scope=_scope(staff, actor),
        key=idempotency_key,
        request=request,
        body=body,
        savepoint=False,
        lock=(member, (Asset.GROWTH,)),
    )


def growth_claw_back(
    *,
    add: LedgerTransaction,
    idempotency_key: str,
    amount: int | None = None,
    store: Store | None = None,
    staff: Staff | None = None,
    actor: str = "",
    reason: str = "",
) -> LedgerTransaction:
    """Take back (part of) a growth addition on a refund; never below zero. Raises RefundExceedsPaid,
    NotReversible."""
    if amount is not None:
        _positive(amount, "amount")
    request = {"add": add.pk, "amount": amount}

    def body() -> LedgerTransaction:
        if add.kind != Kind.GROWTH_ADD or add.member is None:
            raise NotReversible()
        accounts = _lock_accounts(add.member, (Asset.GROWTH,))
        add.refresh_from_db(fields=["reversed_amount"])
        wanted = amount if amount is not None else add.amount - add.reversed_amount
        if wanted <= 0:
            raise RefundExceedsPaid(left=add.amount - add.reversed_amount)
        full = _reverse_guard(add, wanted)
        taken = min(wanted, accounts[Asset.GROWTH].balance)
        tx = _transaction(
            Kind.GROWTH_CLAW_BACK,
            member=add.member,
            amount=wanted,
            store=store or add.store,
            staff=staff,
            actor=actor,
            reason=reason,
            external_ref=add.external_ref,
            reverses=add,
            is_full_reversal=full,
            details={"taken": taken},
            lines=[(accounts[Asset.GROWTH], -taken), (_system(Asset.GROWTH, SystemAccount.GROWTH_ISSUED), taken)],
        )
        return tx

    return _write("growth_claw_back", scope=_scope(staff, actor), key=idempotency_key, request=request, body=body)
