"""The anticipated refusals of the ledger services: typed, translated, with stable codes."""

from typing import Any

from django.utils.translation import gettext_lazy as _

from members.forms import yuan_text


class LedgerError(Exception):
    """An anticipated refusal; str(exc) is a translated message safe to show. `code` is stable (API)."""

    code = "LEDGER_REFUSED"
    message: Any = _("The ledger refused this operation.")

    def __init__(self, **params: object) -> None:
        super().__init__(self.code)
        self.params = params

    def __str__(self) -> str:
        return str(self.message) % self.params if self.params else str(self.message)


class MemberFrozen(LedgerError):
    code = "MEMBER_FROZEN"
    message = _("This member's assets are frozen.")


class MemberCancelled(LedgerError):
    code = "MEMBER_CANCELLED"
    message = _("This membership has been cancelled.")


class InsufficientBalance(LedgerError):
    code = "INSUFFICIENT_BALANCE"
    message = _("The balance is ¥%(available)s, less than ¥%(wanted)s.")


class InsufficientPoints(LedgerError):
    code = "INSUFFICIENT_POINTS"
    message = _("Only %(available)s points are available, less than %(wanted)s.")


class CouponNotUsable(LedgerError):
    code = "COUPON_NOT_USABLE"
    REASONS: dict[str, Any] = {
        "used": _("This coupon has been used."),
        "expired": _("This coupon has expired."),
        "void": _("This coupon has been voided."),
        "not_started": _("This coupon is not valid yet."),
        "other_member": _("This coupon belongs to another member."),
        "store": _("This coupon cannot be used in this store."),
        "threshold": _("The order does not reach this coupon's minimum."),
        "gift": _("A gift coupon is used on its own, not on a purchase."),
        "purchase_only": _("This coupon takes money off a purchase: use it there."),
        "unknown": _("No coupon has this code."),
    }

    def __str__(self) -> str:
        return str(self.REASONS.get(str(self.params.get("reason")), _("This coupon cannot be used.")))


class CouponOutOfStock(LedgerError):
    code = "COUPON_OUT_OF_STOCK"
    message = _("This coupon has run out.")


class CouponLimitReached(LedgerError):
    code = "COUPON_LIMIT_REACHED"
    message = _("This member already has as many of this coupon as allowed.")


class CouponTemplateClosed(LedgerError):
    code = "COUPON_NOT_ISSUABLE"
    message = _("This coupon is no longer being issued.")


class RefundExceedsPaid(LedgerError):
    code = "REFUND_EXCEEDS_PAID"
    message = _("That is more than is left to refund (%(left)s).")


class NotReversible(LedgerError):
    code = "NOT_REVERSIBLE"
    message = _("This transaction cannot be reversed.")


class TopUpAlreadySpent(LedgerError):
    code = "TOP_UP_ALREADY_SPENT"
    message = _("Part of this top-up has been spent; only a manager can refund it, with a reason.")


class PackageNotOnSale(LedgerError):
    code = "PACKAGE_NOT_ON_SALE"
    message = _("This recharge package is not on sale.")


class PackageAmountMismatch(LedgerError):
    code = "PACKAGE_AMOUNT_MISMATCH"
    message = _("This recharge package costs ¥%(price)s.")


class ReasonRequired(LedgerError):
    code = "REASON_REQUIRED"
    message = _("Give a reason.")


class NotAllowed(LedgerError):
    code = "NOT_ALLOWED"
    message = _("Only a manager can do this.")


class IdempotencyConflict(LedgerError):
    """The key was used before for a different request. Never remembered: the first answer stands."""

    code = "IDEMPOTENCY_KEY_REUSED"
    message = _("This request key was already used for a different request.")


REFUSALS: dict[str, type[LedgerError]] = {
    cls.code: cls
    for cls in (
        LedgerError,
        MemberFrozen,
        MemberCancelled,
        InsufficientBalance,
        InsufficientPoints,
        CouponNotUsable,
        CouponOutOfStock,
        CouponLimitReached,
        CouponTemplateClosed,
        RefundExceedsPaid,
        NotReversible,
        TopUpAlreadySpent,
        PackageNotOnSale,
        PackageAmountMismatch,
        ReasonRequired,
        NotAllowed,
    )
}


yuan = yuan_text  # amounts in refusal messages read as on the forms
