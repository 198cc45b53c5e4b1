"""The benefit catalogue: what a tier or a paid plan gives its members."""

import pghistory
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from assets.models import CouponTemplate
from members.models import PaidPlan
from tiers.models import Tier


@pghistory.track()
class Benefit(models.Model):
    class Kind(models.TextChoices):
        DISCOUNT = "discount", _("Member discount")
        POINTS_MULTIPLIER = "points_multiplier", _("Points multiplier")
        BIRTHDAY = "birthday", _("Birthday gift")
        MEMBER_DAY = "member_day", _("Member day")
        MONTHLY_COUPONS = "monthly_coupons", _("Monthly coupons")
        UPGRADE_GIFT = "upgrade_gift", _("Upgrade gift pack")
        INFO = "info", _("Information (shown to members)")

    class BirthdayWhen(models.TextChoices):
        MONTH = "month", _("In the birthday month")
        DAY = "day", _("On the birthday")

    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    name = models.CharField(_("name"), max_length=100)
    description = models.TextField(_("what members read"), blank=True)
    # discount: the member pays this share of the price (95 = 5% off); on a member day, the extra discount
    # xgettext:no-python-format
    discount_percent = models.PositiveSmallIntegerField(_("pay (% of price)"), null=True, blank=True)
    # multiplier in percent (150 = 1.5 times); additive multipliers add their extra part instead of competing
    # xgettext:no-python-format
    multiplier_percent = models.PositiveIntegerField(_("points multiplier (%)"), null=True, blank=True)
    additive = models.BooleanField(_("adds to other multipliers"), default=False)
    # birthday
    birthday_when = models.CharField(_("birthday gift"), max_length=8, choices=BirthdayWhen.choices, blank=True)
    gift_points = models.PositiveIntegerField(_("gift: points"), default=0)
    coupon_template = models.ForeignKey(
        CouponTemplate, verbose_name=_("coupon"), null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    coupons_per_month = models.PositiveSmallIntegerField(_("coupons per month"), default=0)
    # member day: a weekday (0 = Monday) or a day of the month
    weekday = models.PositiveSmallIntegerField(_("weekday"), null=True, blank=True)
    day_of_month = models.PositiveSmallIntegerField(_("day of the month"), null=True, blank=True)
    tiers = models.ManyToManyField(Tier, verbose_name=_("tiers"), blank=True, related_name="benefits")
    plans = models.ManyToManyField(PaidPlan, verbose_name=_("paid plans"), blank=True, related_name="+")
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("benefit")
        verbose_name_plural = _("benefits")
        constraints = [
            models.CheckConstraint(
                condition=Q(discount_percent__isnull=True) | Q(discount_percent__gte=1, discount_percent__lte=99),
                name="benefit_discount_in_range",
            ),
            models.CheckConstraint(
                condition=~Q(kind="discount") | Q(discount_percent__isnull=False), name="benefit_discount_has_percent"
            ),
            models.CheckConstraint(
                condition=~Q(kind="points_multiplier") | Q(multiplier_percent__gte=100),
                name="benefit_multiplier_at_least_one",
            ),
            models.CheckConstraint(
                condition=~Q(kind="member_day")
                | Q(weekday__gte=0, weekday__lte=6, day_of_month__isnull=True)
                | Q(weekday__isnull=True, day_of_month__gte=1, day_of_month__lte=31),
                name="benefit_member_day_one_day",
            ),
            models.CheckConstraint(
                condition=~Q(kind="birthday") | ~Q(birthday_when=""), name="benefit_birthday_has_when"
            ),
        ]

    def __str__(self) -> str:
        return self.name
