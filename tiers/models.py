"""The tier ladder, the rules that place members on it, each member's tier and its history, and the
upgrade gift packs already granted. Tiers change only through tiers.services."""

import pghistory
from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from assets.models import CouponTemplate
from members.models import Member, PaidPlan, Staff


@pghistory.track()
class Tier(models.Model):
    """One rung of the ladder. Rank 0 is where every member starts (threshold 0)."""

    name = models.CharField(_("name"), max_length=50)
    rank = models.PositiveSmallIntegerField(_("rank"), unique=True)
    threshold = models.BigIntegerField(_("growth value to reach it"), default=0)
    colour = models.CharField(_("colour"), max_length=7, default="#8c8c8c")
    icon = models.CharField(_("icon"), max_length=40, default="award")
    description = models.TextField(_("description"), blank=True)
    # the stored-value route: a single top-up of at least X, or top-ups adding up to Y, reach this tier
    top_up_single_fen = models.BigIntegerField(_("a single top-up of at least"), null=True, blank=True)
    top_up_total_fen = models.BigIntegerField(_("top-ups adding up to"), null=True, blank=True)
    # the paid route: an active paid plan of these grants this tier for its period
    plans = models.ManyToManyField(PaidPlan, verbose_name=_("paid plans granting it"), blank=True, related_name="+")
    # the upgrade gift pack, granted once per member and tier
    gift_points = models.PositiveIntegerField(_("gift: points"), default=0)
    gift_bonus_fen = models.BigIntegerField(_("gift: balance bonus"), default=0)
    gift_coupons = models.ManyToManyField(CouponTemplate, verbose_name=_("gift: coupons"), blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("tier")
        verbose_name_plural = _("tiers")
        constraints = [
            models.CheckConstraint(condition=Q(threshold__gte=0), name="tier_threshold_not_negative"),
            models.CheckConstraint(condition=~Q(rank=0) | Q(threshold=0), name="tier_base_has_no_threshold"),
            models.CheckConstraint(condition=Q(gift_bonus_fen__gte=0), name="tier_gift_bonus_not_negative"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def has_gift(self) -> bool:
        return bool(self.gift_points or self.gift_bonus_fen) or self.gift_coupons.exists()


@pghistory.track()
class TierRules(models.Model):
    """How members qualify, one row (pk=1), edited by managers."""

    class Mode(models.TextChoices):
        CUMULATIVE = "cumulative", _("Cumulative (lifetime growth value)")
        ROLLING = "rolling", _("Rolling window (growth value of the last months)")

    class Timing(models.TextChoices):
        REALTIME = "realtime", _("At once, on the purchase or top-up")
        EVALUATION = "evaluation", _("At the next evaluation")

    class Downgrade(models.TextChoices):
        NONE = "none", pgettext_lazy("downgrade rule", "Never")
        QUALIFIED = "qualified", _("To the tier qualified for")
        ONE_STEP = "one_step", _("One step at a time")

    mode = models.CharField(_("qualification"), max_length=16, choices=Mode.choices, default=Mode.CUMULATIVE)
    window_months = models.PositiveSmallIntegerField(_("window (months)"), default=12)
    evaluation_day = models.PositiveSmallIntegerField(_("evaluated on day of month"), default=1)
    upgrade_timing = models.CharField(_("upgrades"), max_length=16, choices=Timing.choices, default=Timing.REALTIME)
    downgrade = models.CharField(_("downgrades"), max_length=16, choices=Downgrade.choices, default=Downgrade.NONE)
    hold_months = models.PositiveSmallIntegerField(_("a tier is kept at least (months)"), default=0)
    # growth value rules
    growth_per_yuan = models.PositiveIntegerField(_("growth value per yuan paid"), default=1)
    growth_per_yuan_top_up = models.PositiveIntegerField(_("growth value per yuan topped up"), default=0)
    growth_profile_complete = models.PositiveIntegerField(_("growth value for completing the profile"), default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("tier rules")
        verbose_name_plural = _("tier rules")
        constraints = [
            models.CheckConstraint(condition=Q(pk=1), name="tierrules_single_row"),
            models.CheckConstraint(condition=Q(window_months__gte=1), name="tierrules_window_positive"),
            models.CheckConstraint(
                condition=Q(evaluation_day__gte=1, evaluation_day__lte=28), name="tierrules_evaluation_day"
            ),
        ]

    def __str__(self) -> str:
        return "tier rules"


# who set or removed a floor, and why, is on record even when nobody moves; tier moves have TierChange rows
@pghistory.track(pghistory.UpdateEvent("floor_changed", condition=pghistory.AnyChange("floor", "floor_reason")))
class MemberTier(models.Model):
    """Where a member stands: the tier, since when, until when it is held, and a manager's floor."""

    member = models.OneToOneField(Member, on_delete=models.CASCADE, primary_key=True, related_name="tier_state")
    tier = models.ForeignKey(Tier, on_delete=models.PROTECT, related_name="+")
    reached_at = models.DateTimeField(_("reached"))
    # what holds the member there: a paid plan's tier ends with the plan, whatever the downgrade rule
    source = models.CharField(_("reached by"), max_length=16, default="growth")
    # a manual tier acts as a floor until it is removed
    floor = models.ForeignKey(Tier, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    floor_reason = models.CharField(_("reason"), max_length=200, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["tier"], name="membertier_tier_idx")]

    def __str__(self) -> str:
        return f"{self.member_id}: {self.tier_id}"


class TierChange(models.Model):
    """The tier history: every move, why, when, and who or which job run made it."""

    class Reason(models.TextChoices):
        GROWTH = "growth", _("Growth value")
        TOP_UP = "top_up", _("Top-up")
        PAID_PLAN = "paid_plan", _("Paid plan")
        DOWNGRADE = "downgrade", _("Downgrade")
        MANUAL = "manual", _("Set by staff")
        PLAN_EXPIRED = "plan_expired", _("Paid plan ended")

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="tier_changes")
    from_tier = models.ForeignKey(Tier, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    to_tier = models.ForeignKey(Tier, on_delete=models.PROTECT, related_name="+")
    reason = models.CharField(_("reason"), max_length=16, choices=Reason.choices)
    note = models.CharField(_("note"), max_length=200, blank=True)
    changed_at = models.DateTimeField(_("when"), default=timezone.now)
    business_date = models.DateField(_("business date"))
    job_run = models.ForeignKey("reports.JobRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    staff = models.ForeignKey(Staff, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        verbose_name = _("tier change")
        verbose_name_plural = _("tier changes")
        indexes = [
            models.Index(fields=["member", "-changed_at", "-id"], name="tierchange_member_idx"),
            models.Index(fields=["business_date"], name="tierchange_day_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.member_id}: {self.from_tier_id} → {self.to_tier_id}"


class TierGift(models.Model):
    """An upgrade gift pack given: at most one per member and tier, whatever raced to give it."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    tier = models.ForeignKey(Tier, on_delete=models.PROTECT, related_name="+")
    change = models.ForeignKey(TierChange, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    granted_at = models.DateTimeField(default=timezone.now)
    details = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["member", "tier"], name="tiergift_once_per_member_tier")]

    def __str__(self) -> str:
        return f"{self.member_id}/{self.tier_id}"


class TierSimulation(models.Model):
    """A dry run of a changed ladder or rules over every member, done by a worker while staff wait on the preview:
    how many members would move from which tier to which, with the change and without it. Nothing else is
    written."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    # the draft Ladder's fields, and the name, rank, colour and icon of each of its tiers by the id it gives them
    # (a new tier's id is negative)
    draft = models.JSONField()
    tiers = models.JSONField()
    as_of = models.DateField()
    evaluation_day = models.DateField(null=True, blank=True)  # rolling mode: the evaluation simulated
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    # [from tier id, to tier id, members moving with the change, members the saved ladder moves anyway]
    moves = models.JSONField(default=list, blank=True)
    members = models.PositiveIntegerField(default=0)
    seconds = models.FloatField(default=0.0)
    error = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"simulation {self.pk} ({self.status})"

    @property
    def finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED)
