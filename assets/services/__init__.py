"""Every movement of value goes through these services: the one write path of the ledgers.

Each service claims its idempotency key (a unique row, same transaction), locks the member's account rows
in primary-key order, checks its rules, appends entries, updates the cached balances and leaves side
effects to on_commit. Called outside a transaction it retries itself on deadlock or serialization
failure; called inside one (an orchestrating service), the caller's transaction is the unit of retry."""

from assets.services.balance import (  # noqa: F401
    balance_adjust,
    balance_bonus_grant,
    balance_refund,
    balance_spend,
    balance_top_up,
    package_on_sale,
    top_up_refund,
)
from assets.services.core import (  # noqa: F401
    idempotency_purge,
    ledger_unit,
    run_in_transaction,
    system_accounts_forget,
)
from assets.services.coupons import (  # noqa: F401
    coupon_code_new,
    coupon_expire_due,
    coupon_issue,
    coupon_redeem,
    coupon_restore,
    coupon_void,
    coupon_window,
)
from assets.services.errors import (  # noqa: F401
    REFUSALS,
    CouponLimitReached,
    CouponNotUsable,
    CouponOutOfStock,
    CouponTemplateClosed,
    IdempotencyConflict,
    InsufficientBalance,
    InsufficientPoints,
    LedgerError,
    MemberCancelled,
    MemberFrozen,
    NotAllowed,
    NotReversible,
    PackageAmountMismatch,
    PackageNotOnSale,
    ReasonRequired,
    RefundExceedsPaid,
    TopUpAlreadySpent,
    yuan,
)
from assets.services.growth import (  # noqa: F401
    growth_add,
    growth_claw_back,
)
from assets.services.points import (  # noqa: F401
    local_midnight_after,
    loyalty_settings,
    points_adjust,
    points_claw_back,
    points_earn,
    points_expire_due,
    points_expiring_list,
    points_expiry,
    points_for_paid,
    points_restore,
    points_spend,
)
from assets.services.verify import (  # noqa: F401
    CHECKS,
    LedgersBroken,
    VerifyReport,
    Violation,
    ledgers_verify,
    ledgers_verify_job,
)
