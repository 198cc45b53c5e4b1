"""The ledgers: member asset accounts, journal transactions and their append-only entries, points lots,
coupons and recharge packages. Value moves only through assets.services; PostgreSQL enforces the
invariants it can (see the migrations for the triggers)."""

import pghistory
from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from members.models import Member, Staff, Store


class Asset(models.TextChoices):
    PRINCIPAL = "principal", _("Balance (principal)")
    BONUS = "bonus", _("Balance (bonus)")
    POINTS = "points", _("Points")
    POINTS_DEBT = "points_debt", _("Points debt")
    GROWTH = "growth", _("Growth value")


MEMBER_ASSETS = tuple(Asset.values)


class SystemAccount(models.TextChoices):
    """The other side of every member entry. Never locked; their balance is a SUM, for reports."""

    CASH_RECEIVED = "cash_received", _("Cash received for top-ups")
    SALES = "sales", _("Sales paid with balance")
    BONUS_EXPENSE = "bonus_expense", _("Bonus given")
    ADJUSTMENTS = "adjustments", _("Manual adjustments")
    POINTS_ISSUED = "points_issued", _("Points issued")
    POINTS_REDEEMED = "points_redeemed", _("Points redeemed")
    POINTS_EXPIRED = "points_expired", _("Points expired")
    POINTS_DEBT = "points_debt", _("Points owed by members")
    GROWTH_ISSUED = "growth_issued", _("Growth value issued")


class Account(models.Model):
    """One row per member and asset (member set, code empty), or a system account (no member, a code).
    A member account caches its balance and the sequence number of its last entry; both change only in
    the transaction that appends the entry, under a row lock."""

    # (member, asset) is unique, which also serves lookups by member
    member = models.ForeignKey(
        Member, null=True, blank=True, on_delete=models.PROTECT, related_name="accounts", db_index=False
    )
    asset = models.CharField(max_length=16, choices=Asset.choices)
    code = models.CharField(max_length=32, blank=True)
    balance = models.BigIntegerField(default=0)
    seq = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["member", "asset"], condition=Q(member__isnull=False), name="account_one_per_member_asset"
            ),
            models.UniqueConstraint(
                fields=["asset", "code"], condition=Q(member__isnull=True), name="account_one_system_per_code"
            ),
            models.CheckConstraint(
                condition=Q(member__isnull=True, code__gt="") | Q(member__isnull=False, code=""),
                name="account_member_xor_system",
            ),
            # the heart of it: a member can never hold less than nothing (points debt has its own account)
            models.CheckConstraint(
                condition=Q(member__isnull=True) | Q(balance__gte=0), name="account_member_balance_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.member_id or self.code}:{self.asset}"


class LedgerTransaction(models.Model):
    """One business event that moves value: its entries sum to zero per asset (checked at commit)."""

    class Kind(models.TextChoices):
        TOP_UP = "top_up", _("Top-up")
        TOP_UP_REFUND = "top_up_refund", _("Top-up refund")
        BALANCE_SPEND = "balance_spend", _("Balance payment")
        BALANCE_REFUND = "balance_refund", _("Balance refund")
        BALANCE_ADJUST = "balance_adjust", _("Balance adjustment")
        BONUS_GRANT = "bonus_grant", _("Bonus given")
        POINTS_EARN = "points_earn", _("Points earned")
        POINTS_SPEND = "points_spend", _("Points spent")
        POINTS_CLAW_BACK = "points_claw_back", _("Points clawed back")
        POINTS_RESTORE = "points_restore", _("Points restored")
        POINTS_ADJUST = "points_adjust", _("Points adjustment")
        POINTS_EXPIRE = "points_expire", _("Points expired")
        GROWTH_ADD = "growth_add", _("Growth value added")
        GROWTH_CLAW_BACK = "growth_claw_back", _("Growth value clawed back")
        COUPON_ISSUE = "coupon_issue", _("Coupon issued")
        COUPON_REDEEM = "coupon_redeem", _("Coupon used")
        COUPON_RESTORE = "coupon_restore", _("Coupon restored")
        COUPON_VOID = "coupon_void", _("Coupon voided")
        COUPON_EXPIRE = "coupon_expire", _("Coupon expired")

    # Every index here is paid on each purchase: foreign keys are indexed only where a query needs it (Meta).
    kind = models.CharField(_("kind"), max_length=24, choices=Kind.choices)
    member = models.ForeignKey(
        Member, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    store = models.ForeignKey(Store, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False)
    staff = models.ForeignKey(Staff, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False)
    # who else started it when no staff member did: "terminal:<id>", "job:<name>", "portal", "promotion:<id>"
    actor = models.CharField(_("by"), max_length=64, blank=True)
    business_date = models.DateField(_("business date"))
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    external_ref = models.CharField(_("order"), max_length=64, blank=True)
    # the headline amount in the kind's unit (fen, points, growth); reversals count against it
    amount = models.BigIntegerField(_("amount"), default=0)
    reversed_amount = models.BigIntegerField(default=0)
    reverses = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="reversals",
        verbose_name=_("reverses"),
        db_index=False,
    )
    is_full_reversal = models.BooleanField(default=False)
    coupon = models.ForeignKey(
        "Coupon", null=True, blank=True, on_delete=models.PROTECT, related_name="transactions", db_index=False
    )
    package = models.ForeignKey(
        "RechargePackage", null=True, blank=True, on_delete=models.PROTECT, related_name="transactions", db_index=False
    )
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    claim_id: int | None = None  # not stored: the request claim a service answered with this transaction

    class Meta:
        verbose_name = _("ledger transaction")
        verbose_name_plural = _("ledger transactions")
        indexes = [
            models.Index(fields=["member", "-created_at", "-id"], name="ledgertx_member_idx"),
            models.Index(fields=["business_date", "kind"], name="ledgertx_day_kind_idx"),
            models.Index(fields=["external_ref"], condition=~Q(external_ref=""), name="ledgertx_ref_idx"),
            models.Index(fields=["store", "business_date"], name="ledgertx_store_day_idx"),
            models.Index(fields=["reverses"], condition=Q(reverses__isnull=False), name="ledgertx_reverses_idx"),
            models.Index(fields=["coupon", "id"], condition=Q(coupon__isnull=False), name="ledgertx_coupon_idx"),
            models.Index(fields=["package"], condition=Q(package__isnull=False), name="ledgertx_package_idx"),
        ]
        constraints = [
            # partial refunds add up; they can never exceed what they refund (guarded UPDATE in the services)
            models.CheckConstraint(
                condition=Q(reversed_amount__gte=0) & Q(reversed_amount__lte=F("amount")),
                name="ledgertx_reversed_within_amount",
            ),
            models.UniqueConstraint(
                fields=["reverses"], condition=Q(is_full_reversal=True), name="ledgertx_fully_reversed_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk}"


class Entry(models.Model):
    """An append-only line of a transaction: PostgreSQL refuses UPDATE and DELETE. On a member account it
    carries the account's sequence number and the balance after it; system account lines carry neither."""

    transaction = models.ForeignKey(LedgerTransaction, on_delete=models.PROTECT, related_name="entries")
    # UNIQUE(account, seq) serves lookups by account
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="entries", db_index=False)
    asset = models.CharField(max_length=16, choices=Asset.choices)
    amount = models.BigIntegerField()  # fen for principal and bonus, whole points, whole growth value
    seq = models.BigIntegerField(null=True, blank=True)
    balance_after = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "seq"], name="entry_one_per_account_seq"),
            models.CheckConstraint(condition=~Q(amount=0), name="entry_amount_not_zero"),
            models.CheckConstraint(
                condition=Q(seq__isnull=True, balance_after__isnull=True) | Q(seq__isnull=False, balance_after__gte=0),
                name="entry_member_lines_numbered",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.asset} {self.amount:+d}"


class IdempotencyRecord(models.Model):
    """The first answer to a request key: a retry gets it back, a different request under the key is refused.
    Refusals are kept too, so a retried refusal stays refused."""

    class Outcome(models.TextChoices):
        DONE = "done", _("Done")
        REFUSED = "refused", _("Refused")

    scope = models.CharField(max_length=64)  # "staff:<id>", "terminal:<id>", "job:<name>", "member:<id>"
    key = models.CharField(max_length=100)
    operation = models.CharField(max_length=40)
    fingerprint = models.CharField(max_length=64)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.DONE)
    result = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["scope", "key"], name="idempotency_one_per_scope_key")]
        indexes = [models.Index(fields=["created_at"], name="idempotency_created_idx")]

    def __str__(self) -> str:
        return f"{self.scope}/{self.key}"


class LoyaltySettings(models.Model):
    """The program's rules for points, one row (pk=1), edited by managers in the back office."""

    class Expiry(models.TextChoices):
        END_OF_NEXT_YEAR = "end_of_next_year", _("End of the following calendar year")
        DAYS = "days", _("A number of days after earning")
        NEVER = "never", _("Never")

    points_expiry = models.CharField(
        _("points expire"), max_length=20, choices=Expiry.choices, default=Expiry.END_OF_NEXT_YEAR
    )
    points_expiry_days = models.PositiveIntegerField(_("days until points expire"), default=365)
    points_per_yuan = models.PositiveIntegerField(_("points per yuan paid"), default=1)
    points_per_yuan_offset = models.PositiveIntegerField(_("points worth one yuan"), default=100)
    # xgettext:no-python-format
    points_offset_max_percent = models.PositiveSmallIntegerField(_("points pay at most (% of an order)"), default=50)
    points_offset_min = models.PositiveIntegerField(_("fewest points used at once"), default=100)
    balance_payments_earn = models.BooleanField(
        _("payments from the stored balance earn points and growth"), default=True
    )
    refund_approval_fen = models.BigIntegerField(_("refunds above this need a manager"), default=20_000)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("loyalty settings")
        verbose_name_plural = _("loyalty settings")
        constraints = [
            models.CheckConstraint(condition=Q(pk=1), name="loyaltysettings_single_row"),
            models.CheckConstraint(condition=Q(points_expiry_days__gte=1), name="loyaltysettings_days_positive"),
            models.CheckConstraint(condition=Q(points_per_yuan_offset__gte=1), name="loyaltysettings_offset_rate"),
            models.CheckConstraint(
                condition=Q(points_offset_max_percent__lte=100), name="loyaltysettings_offset_share"
            ),
        ]

    def __str__(self) -> str:
        return "loyalty settings"


class PointLot(models.Model):
    """What one earning left: `remaining` goes down as points are spent, clawed back or expire.
    `expires_at` is the exclusive instant (local midnight after the expiry date); NULL never expires."""

    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="point_lots")
    earned_by = models.ForeignKey(LedgerTransaction, on_delete=models.PROTECT, related_name="lots")
    original = models.BigIntegerField()
    remaining = models.BigIntegerField()
    earned_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # spending: a member's live lots, first-expiring-first (never-expiring last)
            models.Index(
                F("member"),
                F("expires_at").asc(nulls_last=True),
                F("id"),
                condition=Q(remaining__gt=0),
                name="pointlot_live_idx",
            ),
            # expiry and the reminder list: due lots across members
            models.Index(fields=["expires_at", "id"], condition=Q(remaining__gt=0), name="pointlot_due_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(original__gt=0), name="pointlot_original_positive"),
            models.CheckConstraint(
                condition=Q(remaining__gte=0) & Q(remaining__lte=F("original")), name="pointlot_remaining_in_range"
            ),
        ]

    def __str__(self) -> str:
        return f"lot {self.pk}: {self.remaining}/{self.original}"


class LotAllocation(models.Model):
    """How much a transaction took from (positive) or gave back to (negative) a lot. Append-only.
    original - SUM(amount) = remaining for every lot."""

    class Kind(models.TextChoices):
        SPEND = "spend", _("Spent")
        CLAW_BACK = "claw_back", _("Clawed back")
        RESTORE = "restore", _("Restored")
        ADJUST = "adjust", _("Adjusted")
        EXPIRE = "expire", _("Expired")

    lot = models.ForeignKey(PointLot, on_delete=models.PROTECT, related_name="allocations")
    transaction = models.ForeignKey(LedgerTransaction, on_delete=models.PROTECT, related_name="allocations")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    amount = models.BigIntegerField()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=~Q(amount=0), name="lotallocation_amount_not_zero"),
            # two overlapping expiry runs can each see a lot as due: only one of them may expire it
            models.UniqueConstraint(fields=["lot"], condition=Q(kind="expire"), name="lotallocation_expire_once"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount} of lot {self.lot_id}"


class PointsExpiryNotice(models.Model):
    """Points about to expire, listed nightly per member for reminders: what expires within 30 days."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    business_date = models.DateField()
    points = models.BigIntegerField()
    first_expires_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["business_date", "member"], name="pointsexpirynotice_one_per_day")
        ]

    def __str__(self) -> str:
        return f"{self.member_id}: {self.points} on {self.business_date}"


@pghistory.track(exclude=["issued"])  # the configuration's audit, not one event per coupon issued
class CouponTemplate(models.Model):
    class Kind(models.TextChoices):
        CASH_OFF = "cash_off", _("Cash off above a threshold")
        PERCENT = "percent", _("Percentage discount with a cap")
        GIFT = "gift", _("Gift / exchange")

    class Validity(models.TextChoices):
        FIXED = "fixed", _("Fixed dates")
        RELATIVE = "relative", _("Days after issue")

    name = models.CharField(_("name"), max_length=100)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    description = models.TextField(_("description"), blank=True)
    # cash off: value_fen off when the order reaches threshold_fen; percent: pay percent_of_price % of the
    # order (85 = 15% off, 八五折), saving at most cap_fen (0 = no cap); gift: gift_name
    value_fen = models.BigIntegerField(_("value"), default=0)
    threshold_fen = models.BigIntegerField(_("minimum order"), default=0)
    # xgettext:no-python-format
    percent_of_price = models.PositiveSmallIntegerField(_("pay (% of price)"), null=True, blank=True)
    cap_fen = models.BigIntegerField(_("maximum discount"), default=0)
    gift_name = models.CharField(_("gift"), max_length=100, blank=True)
    validity = models.CharField(_("validity"), max_length=16, choices=Validity.choices, default=Validity.RELATIVE)
    valid_from = models.DateField(_("valid from"), null=True, blank=True)
    valid_until = models.DateField(_("valid until"), null=True, blank=True)
    valid_days = models.PositiveIntegerField(_("valid for (days)"), null=True, blank=True)
    stock = models.PositiveIntegerField(_("stock"), null=True, blank=True, help_text=_("Empty: unlimited."))
    issued = models.PositiveIntegerField(_("issued"), default=0)
    per_member_limit = models.PositiveIntegerField(
        _("per member"), null=True, blank=True, help_text=_("Empty: no limit.")
    )
    stores = models.ManyToManyField(Store, verbose_name=_("stores"), blank=True, help_text=_("None: every store."))
    stackable = models.BooleanField(_("stacks with other coupons"), default=False)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("coupon template")
        verbose_name_plural = _("coupon templates")
        constraints = [
            models.CheckConstraint(
                condition=Q(stock__isnull=True) | Q(issued__lte=F("stock")), name="coupontemplate_within_stock"
            ),
            models.CheckConstraint(
                condition=Q(value_fen__gte=0) & Q(threshold_fen__gte=0) & Q(cap_fen__gte=0),
                name="coupontemplate_amounts_not_negative",
            ),
            models.CheckConstraint(
                condition=~Q(kind="cash_off") | Q(value_fen__gt=0), name="coupontemplate_cash_off_has_value"
            ),
            models.CheckConstraint(
                condition=~Q(kind="percent") | Q(percent_of_price__gte=1, percent_of_price__lte=99),
                name="coupontemplate_percent_in_range",
            ),
            models.CheckConstraint(
                condition=Q(validity="fixed", valid_until__isnull=False) | Q(validity="relative", valid_days__gte=1),
                name="coupontemplate_validity_complete",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class CouponHolding(models.Model):
    """How many coupons of a template a member has received: the per-member limit's guarded counter."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    template = models.ForeignKey(CouponTemplate, on_delete=models.CASCADE, related_name="+")
    issued = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["member", "template"], name="couponholding_one_per_member")]

    def __str__(self) -> str:
        return f"{self.member_id}/{self.template_id}: {self.issued}"


class Coupon(models.Model):
    class Status(models.TextChoices):
        AVAILABLE = "available", _("Available")
        USED = "used", _("Used")
        EXPIRED = "expired", _("Expired")
        VOID = "void", _("Void")

    class Channel(models.TextChoices):
        MANUAL = "manual", _("Issued by staff")
        PACKAGE = "package", _("Recharge package")
        EXCHANGE = "exchange", _("Points exchange")
        PROMOTION = "promotion", _("Promotion")
        TIER_GIFT = "tier_gift", _("Tier gift")
        BENEFIT = "benefit", _("Benefit")
        PORTAL = "portal", _("Portal")

    code = models.CharField(_("code"), max_length=24, unique=True)
    template = models.ForeignKey(CouponTemplate, on_delete=models.PROTECT, related_name="coupons")
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="coupons")
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.AVAILABLE)
    channel = models.CharField(_("channel"), max_length=16, choices=Channel.choices)
    issued_at = models.DateTimeField(_("issued"))
    starts_at = models.DateTimeField(_("valid from"))
    expires_at = models.DateTimeField(_("valid until"))  # exclusive: local midnight after the last valid day
    redeemed_by = models.ForeignKey(
        LedgerTransaction, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    redeemed_at = models.DateTimeField(_("used"), null=True, blank=True)
    order_ref = models.CharField(_("order"), max_length=64, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)  # when it expired or was voided

    class Meta:
        verbose_name = _("coupon")
        verbose_name_plural = _("coupons")
        indexes = [
            models.Index(fields=["member", "status", "expires_at"], name="coupon_member_idx"),
            models.Index(fields=["expires_at", "id"], condition=Q(status="available"), name="coupon_due_idx"),
            models.Index(fields=["template", "status"], name="coupon_template_idx"),
        ]
        constraints = [
            # a used coupon names the redemption that used it, and only a used one does
            models.CheckConstraint(
                condition=Q(status="used", redeemed_by__isnull=False, redeemed_at__isnull=False)
                | (~Q(status="used") & Q(redeemed_by__isnull=True, redeemed_at__isnull=True)),
                name="coupon_used_iff_redeemed",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["available", "used"], closed_at__isnull=True)
                | Q(status__in=["expired", "void"], closed_at__isnull=False),
                name="coupon_closed_iff_expired_or_void",
            ),
            models.CheckConstraint(condition=Q(expires_at__gt=F("starts_at")), name="coupon_window_not_empty"),
        ]

    def __str__(self) -> str:
        return self.code


@pghistory.track()
class RechargePackage(models.Model):
    """Pay X, get Y bonus, and optionally points, growth value and coupons; on sale in a time window."""

    name = models.CharField(_("name"), max_length=100)
    pay_fen = models.BigIntegerField(_("pay"))
    bonus_fen = models.BigIntegerField(_("bonus"), default=0)
    points = models.PositiveIntegerField(_("points"), default=0)
    growth = models.PositiveIntegerField(_("growth value"), default=0)
    coupon_templates = models.ManyToManyField(CouponTemplate, verbose_name=_("coupons"), blank=True)
    starts_at = models.DateTimeField(_("on sale from"), null=True, blank=True)
    ends_at = models.DateTimeField(_("on sale until"), null=True, blank=True)
    is_active = models.BooleanField(_("on sale"), default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("recharge package")
        verbose_name_plural = _("recharge packages")
        constraints = [
            models.CheckConstraint(condition=Q(pay_fen__gt=0) & Q(bonus_fen__gte=0), name="rechargepackage_amounts"),
            models.CheckConstraint(
                condition=Q(starts_at__isnull=True) | Q(ends_at__isnull=True) | Q(ends_at__gt=F("starts_at")),
                name="rechargepackage_window",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class CouponIssueBatch(models.Model):
    """A manual issuance to a filtered list of members, run as a Celery job with its progress."""

    # minted when the page is shown: a double submit finds the batch it started instead of starting another
    idempotency_key = models.CharField(max_length=100, unique=True, null=True, blank=True)

    class Status(models.TextChoices):
        QUEUED = "queued", _("Waiting to start")
        RUNNING = "running", _("Issuing")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    template = models.ForeignKey(CouponTemplate, on_delete=models.PROTECT, related_name="+")
    filters = models.JSONField(default=dict, blank=True)  # the member list's query string, as a dict
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.QUEUED)
    total = models.PositiveIntegerField(default=0)
    cursor = models.BigIntegerField(default=0)  # last member id done, committed with each batch
    issued = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    message = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("coupon issue")
        verbose_name_plural = _("coupon issues")

    def __str__(self) -> str:
        return f"{self.template_id} → {self.total}"


# ------------------------------------------------------------------ the counter's documents


class Tender(models.TextChoices):
    """How a purchase is paid: the balance moves value; the others are recorded, not processed."""

    BALANCE = "balance", _("Stored balance")
    CASH = "cash", _("Cash")
    CARD = "card", _("Bank card")
    WECHAT = "wechat", _("WeChat Pay")
    ALIPAY = "alipay", _("Alipay")
    OTHER = "other", _("Other (imported)")


TENDER_FIELDS = {t: f"{t}_fen" for t in Tender.values}
# what the counter and the POS take; "other" is for purchases imported without their payment method
COUNTER_TENDERS = (Tender.BALANCE, Tender.CASH, Tender.CARD, Tender.WECHAT, Tender.ALIPAY)


class Purchase(models.Model):
    """A sale: at the counter, through a POS, or imported from another system. What was charged, in the
    pricing pipeline's order (member discount, coupon, points), how it was paid, what it earned, and how much
    of it has been refunded. A guest's purchase has no member. Its ledger transactions carry its order number
    as their external reference."""

    class Source(models.TextChoices):
        COUNTER = "counter", _("Counter")
        API = "api", _("POS")
        IMPORT = "import", _("Import")

    order_no = models.CharField(_("order"), max_length=32, unique=True)
    store = models.ForeignKey(Store, on_delete=models.PROTECT, related_name="+")
    member = models.ForeignKey(Member, null=True, blank=True, on_delete=models.PROTECT, related_name="purchases")
    staff = models.ForeignKey(Staff, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    actor = models.CharField(_("by"), max_length=64, blank=True)  # "terminal:<id>", "import:<id>"
    source = models.CharField(_("source"), max_length=8, choices=Source.choices, default=Source.COUNTER)
    external_ref = models.CharField(_("external reference"), max_length=64, blank=True)
    occurred_at = models.DateTimeField(_("when"), default=timezone.now)
    business_date = models.DateField(_("business date"))
    gross_fen = models.BigIntegerField(_("amount"))
    discount_fen = models.BigIntegerField(_("member discount"), default=0)
    coupon_fen = models.BigIntegerField(_("coupon"), default=0)
    points_used = models.BigIntegerField(_("points used"), default=0)
    points_offset_fen = models.BigIntegerField(_("paid with points"), default=0)
    payable_fen = models.BigIntegerField(_("paid"))
    balance_fen = models.BigIntegerField(_("stored balance"), default=0)
    cash_fen = models.BigIntegerField(_("cash"), default=0)
    card_fen = models.BigIntegerField(_("bank card"), default=0)
    wechat_fen = models.BigIntegerField(_("WeChat Pay"), default=0)
    alipay_fen = models.BigIntegerField(_("Alipay"), default=0)
    other_fen = models.BigIntegerField(_("other"), default=0)
    points_earned = models.BigIntegerField(_("points earned"), default=0)
    growth_earned = models.BigIntegerField(_("growth value earned"), default=0)
    multiplier_percent = models.PositiveIntegerField(default=100)
    coupon = models.ForeignKey("Coupon", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    refunded_fen = models.BigIntegerField(_("refunded"), default=0)
    # the quote's lines as shown, the benefits applied and the ledger transactions by role
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name = _("purchase")
        verbose_name_plural = _("purchases")
        indexes = [
            models.Index(fields=["member", "-occurred_at"], name="purchase_member_idx"),
            models.Index(fields=["store", "business_date"], name="purchase_store_day_idx"),
            models.Index(fields=["business_date"], name="purchase_day_idx"),
            # the nightly RFM, lifecycle and rule-tag passes read members' paid purchases by date from this
            # index alone (index-only scans), never the wide purchase rows
            models.Index(
                fields=["business_date", "member"],
                include=["payable_fen", "id"],
                condition=Q(member__isnull=False, payable_fen__gt=0),
                name="purchase_paid_day_idx",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["store", "external_ref"], condition=~Q(external_ref=""), name="purchase_external_ref_per_store"
            ),
            models.CheckConstraint(
                condition=Q(gross_fen__gte=0)
                & Q(discount_fen__gte=0)
                & Q(coupon_fen__gte=0)
                & Q(points_used__gte=0)
                & Q(points_offset_fen__gte=0)
                & Q(payable_fen__gte=0)
                & Q(balance_fen__gte=0)
                & Q(cash_fen__gte=0)
                & Q(card_fen__gte=0)
                & Q(wechat_fen__gte=0)
                & Q(alipay_fen__gte=0)
                & Q(other_fen__gte=0),
                name="purchase_amounts_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(payable_fen=F("gross_fen") - F("discount_fen") - F("coupon_fen") - F("points_offset_fen")),
                name="purchase_pipeline_adds_up",
            ),
            models.CheckConstraint(
                condition=Q(
                    payable_fen=F("balance_fen")
                    + F("cash_fen")
                    + F("card_fen")
                    + F("wechat_fen")
                    + F("alipay_fen")
                    + F("other_fen")
                ),
                name="purchase_tenders_add_up",
            ),
            # refunds add up; they can never exceed what was paid (guarded UPDATE in the refund)
            models.CheckConstraint(
                condition=Q(refunded_fen__gte=0) & Q(refunded_fen__lte=F("payable_fen")),
                name="purchase_refunded_within_paid",
            ),
            models.CheckConstraint(
                condition=Q(member__isnull=False) | Q(balance_fen=0), name="purchase_guest_no_balance"
            ),
        ]

    def __str__(self) -> str:
        return self.order_no

    @property
    def refundable_fen(self) -> int:
        return self.payable_fen - self.refunded_fen

    def tenders(self) -> dict[str, int]:
        return {t: getattr(self, f) for t, f in TENDER_FIELDS.items() if getattr(self, f)}


class PurchaseLine(models.Model):
    """An item of a purchase, when the till sends them (SKU, category, quantity, price)."""

    purchase = models.ForeignKey(Purchase, on_delete=models.CASCADE, related_name="lines")
    sku = models.CharField(_("SKU"), max_length=64, blank=True)
    name = models.CharField(_("item"), max_length=100, blank=True)
    category = models.CharField(_("category"), max_length=64, blank=True)
    quantity = models.PositiveIntegerField(_("quantity"), default=1)
    unit_price_fen = models.BigIntegerField(_("price"))
    amount_fen = models.BigIntegerField(_("amount"))

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(unit_price_fen__gte=0) & Q(amount_fen=F("unit_price_fen") * F("quantity")),
                name="purchaseline_amount",
            )
        ]

    def __str__(self) -> str:
        return f"{self.sku or self.name} x{self.quantity}"


class PurchaseRefund(models.Model):
    """A refund of (part of) a purchase: the money given back by tender as it was taken, and what it undid in
    points, growth value and the coupon."""

    purchase = models.ForeignKey(Purchase, on_delete=models.PROTECT, related_name="refunds")
    amount_fen = models.BigIntegerField(_("amount"))
    balance_fen = models.BigIntegerField(default=0)
    cash_fen = models.BigIntegerField(default=0)
    card_fen = models.BigIntegerField(default=0)
    wechat_fen = models.BigIntegerField(default=0)
    alipay_fen = models.BigIntegerField(default=0)
    other_fen = models.BigIntegerField(default=0)
    points_restored = models.BigIntegerField(default=0)  # of the points that paid
    points_clawed_back = models.BigIntegerField(default=0)  # of the points earned
    growth_clawed_back = models.BigIntegerField(default=0)
    coupon_restored = models.BooleanField(default=False)
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    staff = models.ForeignKey(Staff, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    approved_by = models.ForeignKey(Staff, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    actor = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    business_date = models.DateField()
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name = _("refund")
        verbose_name_plural = _("refunds")
        constraints = [
            models.CheckConstraint(
                condition=Q(amount_fen__gt=0)
                & Q(
                    amount_fen=F("balance_fen")
                    + F("cash_fen")
                    + F("card_fen")
                    + F("wechat_fen")
                    + F("alipay_fen")
                    + F("other_fen")
                ),
                name="purchaserefund_tenders_add_up",
            )
        ]

    def __str__(self) -> str:
        return f"refund of {self.purchase_id}: {self.amount_fen}"


# ------------------------------------------------------------------ purchase history imports


def _purchase_import_upload_to(instance: "PurchaseImport", filename: str) -> str:
    return f"purchase-imports/{timezone.now():%Y/%m}/{filename}"


class PurchaseImport(models.Model):
    """One uploaded file of purchase history and what became of it: the dry run's counts and errors, then the
    import's progress. `processed` is the import's cursor (file rows done), committed with each batch, so a
    retried or redelivered job goes on where the last one stopped and never records a purchase twice."""

    class Status(models.TextChoices):
        CHECKING = "checking", _("Checking")
        CHECKED = "checked", _("Ready to import")
        QUEUED = "queued", _("Waiting to start")
        RUNNING = "running", _("Importing")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    file = models.FileField(_("file"), upload_to=_purchase_import_upload_to, max_length=300)
    file_name = models.CharField(_("file name"), max_length=200)
    default_store = models.ForeignKey(
        Store, verbose_name=_("store for rows without a store code"), null=True, blank=True, on_delete=models.PROTECT
    )
    create_members = models.BooleanField(_("create unknown members"), default=False)
    earn_growth = models.BooleanField(_("count for growth value"), default=True)
    earn_points = models.BooleanField(_("earn points"), default=False)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.CHECKING)
    total_rows = models.PositiveIntegerField(_("rows"), default=0)
    # the dry run's verdict
    to_import = models.PositiveIntegerField(default=0)
    to_import_fen = models.BigIntegerField(default=0)
    already_imported = models.PositiveIntegerField(default=0)
    members_to_create = models.PositiveIntegerField(default=0)
    invalid = models.PositiveIntegerField(default=0)
    preview = models.JSONField(default=list, blank=True)
    # the import's outcome
    processed = models.PositiveIntegerField(default=0)
    imported = models.PositiveIntegerField(default=0)
    imported_fen = models.BigIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    members_created = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    # [{"row": 7, "column": "amount", "message": "...", "values": [...]}]: the dry run's, then the import's
    errors = models.JSONField(default=list, blank=True)
    message = models.TextField(_("message"), blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("purchase import")
        verbose_name_plural = _("purchase imports")
        indexes = [models.Index(F("created_at").desc(), name="purchaseimport_created_idx")]

    def __str__(self) -> str:
        return self.file_name

    @property
    def is_busy(self) -> bool:
        return self.status in (self.Status.CHECKING, self.Status.QUEUED, self.Status.RUNNING)

    @property
    def percent(self) -> int:
        return 100 if not self.total_rows else min(100, self.processed * 100 // self.total_rows)


# ------------------------------------------------------------------ member self-service


@pghistory.track()
class SignInSettings(models.Model):
    """The daily sign-in's rules, one row (pk=1), edited by managers. The streak bonuses are a list in the row,
    so that each version of the rules is one audit event."""

    MAX_BONUS_DAY = 366

    is_enabled = models.BooleanField(_("daily sign-in is open"), default=False)
    points = models.PositiveIntegerField(_("points per sign-in"), default=5)
    growth = models.PositiveIntegerField(_("growth value per sign-in"), default=0)
    # [{"day": 7, "points": 20}, ...] by day: the sign-in on day N of a streak earns that much more
    streak_bonuses = models.JSONField(_("streak bonuses"), default=list, blank=True)
    missed_day_resets = models.BooleanField(_("a missed day starts the streak again"), default=True)
    bonuses_repeat = models.BooleanField(_("the bonuses start over after the last one"), default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("sign-in settings")
        verbose_name_plural = _("sign-in settings")
        constraints = [
            models.CheckConstraint(condition=Q(pk=1), name="signinsettings_single_row"),
            models.CheckConstraint(
                condition=models.lookups.Exact(
                    models.Func(F("streak_bonuses"), function="jsonb_typeof", output_field=models.CharField()),
                    "array",
                ),
                name="signinsettings_bonuses_list",
            ),
        ]

    def __str__(self) -> str:
        return "sign-in settings"

    @property
    def bonuses(self) -> dict[int, int]:
        """The streak bonuses as {day of the streak: extra points}."""
        return {int(b["day"]): int(b["points"]) for b in self.streak_bonuses}


class SignIn(models.Model):
    """A member's sign-in on one business day (merchant's zone): at most one a day, which PostgreSQL enforces.
    What it earned went through the ledger with the external reference "sign-in:<date>"."""

    # UNIQUE(member, business_date) serves lookups by member
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="+", db_index=False)
    business_date = models.DateField(_("business date"))
    signed_at = models.DateTimeField(_("signed in at"))
    streak = models.PositiveIntegerField(_("day of the streak"))
    points = models.PositiveIntegerField(_("points"), default=0)  # everything it earned, the bonus included
    bonus_points = models.PositiveIntegerField(_("streak bonus"), default=0)
    growth = models.PositiveIntegerField(_("growth value"), default=0)

    class Meta:
        verbose_name = _("sign-in")
        verbose_name_plural = _("sign-ins")
        indexes = [models.Index(fields=["business_date"], name="signin_day_idx")]
        constraints = [
            models.UniqueConstraint(fields=["member", "business_date"], name="signin_one_per_member_day"),
            models.CheckConstraint(
                condition=Q(streak__gte=1) & Q(bonus_points__lte=F("points")), name="signin_streak_and_bonus"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.member_id} on {self.business_date}"


@pghistory.track(exclude=["exchanged"])  # the catalogue's audit, not one event per exchange
class ExchangeItem(models.Model):
    """Something members buy with points: a coupon, or a gift handed over at the counter against a gift coupon
    (a template of kind gift). Open between two dates and, optionally, only on some days of each month."""

    name = models.CharField(_("name"), max_length=100)
    description = models.TextField(_("what members read"), blank=True)
    icon = models.CharField(_("icon"), max_length=40, default="gift")
    coupon_template = models.ForeignKey(
        CouponTemplate, verbose_name=_("coupon"), on_delete=models.PROTECT, related_name="+"
    )
    points_price = models.PositiveIntegerField(_("price (points)"))
    stock = models.PositiveIntegerField(_("stock"), null=True, blank=True, help_text=_("Empty: unlimited."))
    exchanged = models.PositiveIntegerField(_("exchanged"), default=0)  # the stock's guarded counter
    per_member_limit = models.PositiveIntegerField(
        _("per member and month"), null=True, blank=True, help_text=_("Empty: no limit.")
    )
    available_from = models.DateField(_("from"), null=True, blank=True)
    available_until = models.DateField(_("until (last day)"), null=True, blank=True)
    # days of each month it is open (the 31st is a shorter month's last day); empty: every day
    month_day_from = models.PositiveSmallIntegerField(_("from day of the month"), null=True, blank=True)
    month_day_to = models.PositiveSmallIntegerField(_("to day of the month"), null=True, blank=True)
    is_active = models.BooleanField(_("offered"), default=True)
    sort_order = models.PositiveSmallIntegerField(_("order"), default=0)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("exchange item")
        verbose_name_plural = _("exchange items")
        constraints = [
            models.CheckConstraint(condition=Q(points_price__gte=1), name="exchangeitem_price_positive"),
            models.CheckConstraint(
                condition=Q(stock__isnull=True) | Q(exchanged__lte=F("stock")), name="exchangeitem_within_stock"
            ),
            models.CheckConstraint(
                condition=Q(per_member_limit__isnull=True) | Q(per_member_limit__gte=1),
                name="exchangeitem_limit_positive",
            ),
            models.CheckConstraint(
                condition=Q(available_from__isnull=True)
                | Q(available_until__isnull=True)
                | Q(available_until__gte=F("available_from")),
                name="exchangeitem_dates",
            ),
            models.CheckConstraint(
                condition=(Q(month_day_from__isnull=True) | Q(month_day_from__gte=1, month_day_from__lte=31))
                & (Q(month_day_to__isnull=True) | Q(month_day_to__gte=1, month_day_to__lte=31))
                & (
                    Q(month_day_from__isnull=True)
                    | Q(month_day_to__isnull=True)
                    | Q(month_day_to__gte=F("month_day_from"))
                ),
                name="exchangeitem_month_days",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Exchange(models.Model):
    """Points a member spent on an exchange item and the coupon they got, written in one transaction."""

    item = models.ForeignKey(ExchangeItem, on_delete=models.PROTECT, related_name="exchanges", db_index=False)
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="+", db_index=False)
    points = models.PositiveIntegerField(_("points"))
    spend = models.OneToOneField(LedgerTransaction, on_delete=models.PROTECT, related_name="+")
    coupon = models.OneToOneField(Coupon, on_delete=models.PROTECT, related_name="+")
    business_date = models.DateField(_("business date"))
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("points exchange")
        verbose_name_plural = _("points exchanges")
        indexes = [
            # the per-member limit: a member's exchanges of an item in a month
            models.Index(fields=["member", "item", "business_date"], name="exchange_member_item_idx"),
            models.Index(fields=["item", "business_date"], name="exchange_item_day_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.member_id}: {self.item_id}"


class MonthlyCouponClaim(models.Model):
    """One coupon of a member's monthly allowance: the n-th of its template in a calendar month (merchant's
    zone). The unique row makes the allowance claimable once a month."""

    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="+", db_index=False)
    template = models.ForeignKey(CouponTemplate, on_delete=models.PROTECT, related_name="+")
    month = models.DateField(_("month"))  # its first day
    n = models.PositiveSmallIntegerField()
    coupon = models.OneToOneField(Coupon, on_delete=models.PROTECT, related_name="+")
    claimed_at = models.DateTimeField(_("claimed"))

    class Meta:
        verbose_name = _("monthly coupon claim")
        verbose_name_plural = _("monthly coupon claims")
        constraints = [
            models.UniqueConstraint(fields=["member", "month", "template", "n"], name="monthlycoupon_nth_once"),
            models.CheckConstraint(condition=Q(month__day=1) & Q(n__gte=1), name="monthlycoupon_month_and_n"),
        ]

    def __str__(self) -> str:
        return f"{self.member_id}: {self.template_id} {self.month:%Y-%m} #{self.n}"
