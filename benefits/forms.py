"""The benefit form: one form for every kind, showing and keeping only the fields the kind uses, with the
database's check constraints repeated as form errors."""

from typing import Any

from django import forms
from django.db.models import Q
from django.utils.dates import WEEKDAYS
from django.utils.translation import gettext_lazy as _

from assets.forms import WholeNumberField
from assets.models import CouponTemplate
from benefits.models import Benefit
from members.forms import OfficeFormMixin
from members.models import PaidPlan
from tiers.models import Tier

Kind = Benefit.Kind
BY_WEEKDAY, BY_DAY_OF_MONTH = "weekday", "day_of_month"


class BenefitForm(OfficeFormMixin, forms.Form):
    kind = forms.ChoiceField(label=_("Kind"), choices=Kind.choices)
    name = forms.CharField(label=_("Benefit name"), max_length=100)
    description = forms.CharField(
        label=_("What members read"), required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    discount_percent = WholeNumberField(
        # xgettext:no-python-format
        label=_("Pay (% of price)"),
        required=False,
        min_value=1,
        max_value=99,
        # xgettext:no-python-format
        help_text=_("95 means 5% off (九五折)."),
    )
    multiplier_percent = WholeNumberField(
        # xgettext:no-python-format
        label=_("Points multiplier (%)"),
        required=False,
        min_value=101,
        max_value=1_000,
        help_text=_("150 means 1.5 times the points."),
    )
    additive = forms.BooleanField(
        label=_("Adds to other multipliers"),
        required=False,
        help_text=_("Otherwise the highest multiplier wins."),
    )
    birthday_when = forms.ChoiceField(
        label=_("When"), choices=Benefit.BirthdayWhen.choices, initial=Benefit.BirthdayWhen.MONTH, required=False
    )
    gift_points = WholeNumberField(label=_("Gift: points"), required=False, max_value=100_000_000)
    coupon_template = forms.ModelChoiceField(label=_("Coupon"), queryset=CouponTemplate.objects.none(), required=False)
    coupons_per_month = WholeNumberField(label=_("Coupons per month"), required=False, min_value=1, max_value=31)
    member_day_by = forms.ChoiceField(
        label=_("Member day"),
        choices=[(BY_WEEKDAY, _("A day of the week")), (BY_DAY_OF_MONTH, _("A day of the month"))],
        initial=BY_WEEKDAY,
        required=False,
    )
    weekday = forms.TypedChoiceField(
        label=_("Weekday"), choices=list(WEEKDAYS.items()), coerce=int, required=False, empty_value=None
    )
    day_of_month = WholeNumberField(
        label=_("Day of the month"),
        required=False,
        min_value=1,
        max_value=31,
        help_text=_("In a shorter month, 31 falls on its last day."),
    )
    tiers = forms.ModelMultipleChoiceField(label=_("Tiers"), queryset=Tier.objects.none(), required=False)
    plans = forms.ModelMultipleChoiceField(
        label=_("Paid plans"),
        queryset=PaidPlan.objects.none(),
        required=False,
        help_text=_("With neither tiers nor plans, the benefit applies to nobody yet."),
    )
    is_active = forms.BooleanField(label=_("Active"), required=False, initial=True)

    def __init__(self, *args: Any, benefit: Benefit | None = None, **kwargs: Any) -> None:
        self.benefit = benefit
        if benefit is not None and "initial" not in kwargs:
            kwargs["initial"] = self._initial(benefit)
        super().__init__(*args, **kwargs)
        saved = benefit is not None and benefit.pk is not None
        tiers = self.fields["tiers"]
        assert isinstance(tiers, forms.ModelMultipleChoiceField)
        tiers.queryset = Tier.objects.order_by("rank")
        plans = self.fields["plans"]
        assert isinstance(plans, forms.ModelMultipleChoiceField)
        linked = Q(pk__in=benefit.plans.all()) if saved and benefit else Q(pk__in=[])
        plans.queryset = PaidPlan.objects.filter(Q(is_active=True) | linked).order_by("name", "pk")
        coupon = self.fields["coupon_template"]
        assert isinstance(coupon, forms.ModelChoiceField)
        chosen = Q(pk=benefit.coupon_template_id) if benefit is not None and benefit.coupon_template_id else Q(pk=None)
        coupon.queryset = CouponTemplate.objects.filter(Q(is_active=True) | chosen).order_by("name", "pk")

    @staticmethod
    def _initial(b: Benefit) -> dict[str, Any]:
        return {
            "kind": b.kind,
            "name": b.name,
            "description": b.description,
            "discount_percent": b.discount_percent,
            "multiplier_percent": b.multiplier_percent,
            "additive": b.additive,
            "birthday_when": b.birthday_when or Benefit.BirthdayWhen.MONTH,
            "gift_points": b.gift_points or None,
            "coupon_template": b.coupon_template,
            "coupons_per_month": b.coupons_per_month or None,
            "member_day_by": BY_DAY_OF_MONTH if b.day_of_month is not None else BY_WEEKDAY,
            "weekday": b.weekday,
            "day_of_month": b.day_of_month,
            "tiers": list(b.tiers.all()) if b.pk else [],
            "plans": list(b.plans.all()) if b.pk else [],
            "is_active": b.is_active,
        }

    def _missing(self, data: dict[str, Any], name: str) -> bool:
        """Empty, and not already reported as unparsable."""
        return data.get(name) in (None, "") and name not in self.errors

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        kind = data.get("kind")
        if kind == Kind.DISCOUNT and self._missing(data, "discount_percent"):
            self.add_error("discount_percent", _("Enter the share of the price the member pays, from 1 to 99."))
        elif kind == Kind.POINTS_MULTIPLIER and self._missing(data, "multiplier_percent"):
            self.add_error("multiplier_percent", _("Enter the multiplier in percent, from 101 to 1,000."))
        elif kind == Kind.BIRTHDAY:
            if not data.get("birthday_when"):
                self.add_error("birthday_when", _("Choose the birthday month or the birthday itself."))
            gives = data.get("gift_points") or data.get("coupon_template") or data.get("multiplier_percent")
            if not gives and not self.errors:
                self.add_error(None, _("A birthday gift needs points, a coupon or a points multiplier."))
        elif kind == Kind.MEMBER_DAY:
            by_weekday = data.get("member_day_by") != BY_DAY_OF_MONTH
            if by_weekday and self._missing(data, "weekday"):
                self.add_error("weekday", _("Choose the day of the week."))
            elif not by_weekday and self._missing(data, "day_of_month"):
                self.add_error("day_of_month", _("Enter the day of the month, from 1 to 31."))
            gives = data.get("discount_percent") or data.get("multiplier_percent")
            if not gives and not self.errors:
                self.add_error(None, _("A member day needs a discount, a points multiplier or both."))
        elif kind == Kind.MONTHLY_COUPONS:
            if self._missing(data, "coupon_template"):
                self.add_error("coupon_template", _("Choose the coupon members receive."))
            if self._missing(data, "coupons_per_month"):
                self.add_error("coupons_per_month", _("Enter how many coupons a member may claim each month."))
        elif kind == Kind.INFO and not (data.get("description") or "").strip():
            self.add_error("description", _("Write what members read about this benefit."))
        return data

    def apply(self, benefit: Benefit) -> tuple[list[Tier], list[PaidPlan]]:
        """Copy the cleaned values onto `benefit`, clearing what its kind does not use; returns its tiers and plans."""
        data = self.cleaned_data
        kind = data["kind"]
        uses_discount = kind in (Kind.DISCOUNT, Kind.MEMBER_DAY)
        uses_multiplier = kind in (Kind.POINTS_MULTIPLIER, Kind.MEMBER_DAY, Kind.BIRTHDAY)
        by_weekday = data["member_day_by"] != BY_DAY_OF_MONTH
        benefit.kind = kind
        benefit.name = data["name"]
        benefit.description = data["description"]
        benefit.discount_percent = data["discount_percent"] if uses_discount else None
        benefit.multiplier_percent = data["multiplier_percent"] if uses_multiplier else None
        benefit.additive = bool(data["additive"]) and uses_multiplier and benefit.multiplier_percent is not None
        benefit.birthday_when = data["birthday_when"] if kind == Kind.BIRTHDAY else ""
        benefit.gift_points = (data["gift_points"] or 0) if kind == Kind.BIRTHDAY else 0
        uses_coupon = kind in (Kind.BIRTHDAY, Kind.MONTHLY_COUPONS)
        benefit.coupon_template = data["coupon_template"] if uses_coupon else None
        benefit.coupons_per_month = (data["coupons_per_month"] or 0) if kind == Kind.MONTHLY_COUPONS else 0
        benefit.weekday = data["weekday"] if kind == Kind.MEMBER_DAY and by_weekday else None
        benefit.day_of_month = data["day_of_month"] if kind == Kind.MEMBER_DAY and not by_weekday else None
        benefit.is_active = data["is_active"]
        return list(data["tiers"]), list(data["plans"])
