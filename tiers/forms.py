"""Back-office forms of the tier ladder, its rules and a manager's floor. A change of the ladder or the rules is
previewed before it is saved: the form is posted once to see who would move, then again with `confirmed`."""

from typing import Any

from django import forms
from django.db.models import Q
from django.http import QueryDict
from django.utils.translation import gettext_lazy as _

from assets.forms import WholeNumberField, YuanField
from assets.models import CouponTemplate
from members.forms import OfficeFormMixin
from members.models import PaidPlan
from tiers.models import Tier, TierRules

COLOUR = r"^#[0-9A-Fa-f]{6}\Z"
ICONS = [
    ("award", _("Award")),
    ("award-fill", _("Award (filled)")),
    ("star", _("Star")),
    ("star-fill", _("Star (filled)")),
    ("stars", _("Stars")),
    ("gem", _("Gem")),
    ("diamond-fill", _("Diamond")),
    ("trophy-fill", _("Trophy")),
    ("patch-check-fill", _("Seal")),
    ("shield-check", _("Shield")),
    ("heart-fill", _("Heart")),
    ("lightning-charge-fill", _("Lightning")),
    ("fire", _("Flame")),
    ("rocket-takeoff", _("Rocket")),
]


class PreviewedForm(OfficeFormMixin, forms.Form):
    """A change shown with its consequences before it is saved. `based_on` carries the version of the saved
    ladder the preview was computed on: a confirmation under another version is previewed again."""

    confirmed = forms.BooleanField(required=False, widget=forms.HiddenInput)
    based_on = forms.CharField(required=False, widget=forms.HiddenInput)

    def is_confirmed(self, data: QueryDict) -> bool:
        return bool(self.cleaned_data.get("confirmed")) and "edit" not in data

    def visible_names(self) -> list[str]:
        return [name for name in self.fields if name not in ("confirmed", "based_on")]


def versioned(data: QueryDict, version: str) -> QueryDict:
    """The posted data for the preview step: the version it was computed on, not yet confirmed."""
    fresh = data.copy()
    fresh["based_on"] = version
    fresh.pop("confirmed", None)
    return fresh


# ------------------------------------------------------------------ a tier


class TierForm(PreviewedForm):
    """Every field of a tier, with the ladder's rules as form errors: ranks are unique, rank 0 is the base
    every member starts on (threshold 0), and thresholds rise with the rank."""

    name = forms.CharField(label=_("Tier name"), max_length=50)
    rank = WholeNumberField(label=_("Rank"), max_value=99, help_text=_("0 is the base tier; higher is better."))
    threshold = WholeNumberField(label=_("Growth value to reach it"), help_text=_("The base tier starts at 0."))
    colour = forms.RegexField(
        label=_("Colour"),
        regex=COLOUR,
        initial="#8c8c8c",
        error_messages={"invalid": _("Enter a colour as # and six hexadecimal digits, like #d4a017.")},
        widget=forms.TextInput(attrs={"type": "color"}),
    )
    icon = forms.ChoiceField(label=_("Icon"), choices=ICONS, initial="award")
    description = forms.CharField(
        label=_("Description"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Shown to members."),
    )
    top_up_single = YuanField(
        label=_("A single top-up of at least (yuan)"), required=False, help_text=_("Empty: no such route.")
    )
    top_up_total = YuanField(
        label=_("Top-ups adding up to (yuan)"), required=False, help_text=_("Refunded top-ups do not count.")
    )
    plans = forms.ModelMultipleChoiceField(
        label=_("Paid plans granting it"),
        queryset=PaidPlan.objects.none(),
        required=False,
        help_text=_("For the paid period; never lowers a higher tier."),
    )
    gift_points = WholeNumberField(label=_("Gift: points"), required=False, max_value=100_000_000)
    gift_bonus = YuanField(label=_("Gift: balance bonus (yuan)"), required=False, allow_zero=True)
    gift_coupons = forms.ModelMultipleChoiceField(
        label=_("Gift: coupons"), queryset=CouponTemplate.objects.none(), required=False, help_text=_("One of each.")
    )

    # what decides where members stand; the other fields move nobody
    PLACING = ("rank", "threshold", "top_up_single", "top_up_total", "plans")

    def __init__(self, *args: Any, tier: Tier | None = None, **kwargs: Any) -> None:
        self.tier = tier
        if tier is not None and "initial" not in kwargs:
            kwargs["initial"] = self.initial_for(tier)
        super().__init__(*args, **kwargs)
        self.fields["colour"].widget.attrs["class"] += " form-control-color"
        if tier is not None and tier.icon not in dict(ICONS):  # an icon set elsewhere stays choosable
            icon = self.fields["icon"]
            assert isinstance(icon, forms.ChoiceField)
            icon.choices = [*ICONS, (tier.icon, tier.icon)]
        linked = Q(pk__in=tier.plans.all()) if tier is not None else Q(pk__in=[])
        plans = self.fields["plans"]
        assert isinstance(plans, forms.ModelMultipleChoiceField)
        plans.queryset = PaidPlan.objects.filter(Q(is_active=True) | linked).order_by("name", "pk")
        linked = Q(pk__in=tier.gift_coupons.all()) if tier is not None else Q(pk__in=[])
        coupons = self.fields["gift_coupons"]
        assert isinstance(coupons, forms.ModelMultipleChoiceField)
        coupons.queryset = CouponTemplate.objects.filter(Q(is_active=True) | linked).order_by("name", "pk")

    @staticmethod
    def initial_for(t: Tier) -> dict[str, Any]:
        return {
            "name": t.name,
            "rank": t.rank,
            "threshold": t.threshold,
            "colour": t.colour,
            "icon": t.icon,
            "description": t.description,
            "top_up_single": t.top_up_single_fen,
            "top_up_total": t.top_up_total_fen,
            "plans": list(t.plans.all()) if t.pk else [],
            "gift_points": t.gift_points or None,
            "gift_bonus": t.gift_bonus_fen or None,
            "gift_coupons": list(t.gift_coupons.all()) if t.pk else [],
        }

    def _others(self) -> list[Tier]:
        others = Tier.objects.order_by("rank")
        return list(others.exclude(pk=self.tier.pk) if self.tier is not None else others)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        rank, threshold, name = data.get("rank"), data.get("threshold"), (data.get("name") or "").strip()
        others = self._others()
        if self.tier is not None and self.tier.rank == 0 and rank not in (None, 0):
            self.add_error("rank", _("The base tier keeps rank 0: every member starts on it."))
            return data
        if rank is not None and (taken := next((t for t in others if t.rank == rank), None)):
            self.add_error("rank", _("Rank %(rank)s is taken by %(tier)s.") % {"rank": rank, "tier": taken.name})
        elif rank == 0 and threshold:
            self.add_error("threshold", _("The base tier (rank 0) starts at 0: every member stands on it."))
        elif rank is not None and threshold is not None:
            below = [t for t in others if t.rank < rank]
            above = [t for t in others if t.rank > rank]
            if below and threshold <= below[-1].threshold:
                message = _("Thresholds rise with the rank: enter more than %(n)s, the threshold of %(tier)s.")
                self.add_error("threshold", message % {"n": f"{below[-1].threshold:,}", "tier": below[-1].name})
            elif above and threshold >= above[0].threshold:
                message = _("Thresholds rise with the rank: enter less than %(n)s, the threshold of %(tier)s.")
                self.add_error("threshold", message % {"n": f"{above[0].threshold:,}", "tier": above[0].name})
        if rank == 0 and (data.get("gift_points") or data.get("gift_bonus") or data.get("gift_coupons")):
            self.add_error(None, _("Every member starts on the base tier, so it has no upgrade gift pack."))
        if name and any(t.name.casefold() == name.casefold() for t in others):
            self.add_error("name", _("Another tier is called %(name)s.") % {"name": name})
        if data.get("colour"):
            data["colour"] = data["colour"].lower()
        return data

    def apply(self, tier: Tier) -> tuple[list[PaidPlan], list[CouponTemplate]]:
        """Copy the cleaned values onto `tier`; returns its paid plans and gift coupons."""
        data = self.cleaned_data
        tier.name = data["name"].strip()
        tier.rank = data["rank"]
        tier.threshold = data["threshold"]
        tier.colour = data["colour"]
        tier.icon = data["icon"]
        tier.description = data["description"]
        tier.top_up_single_fen = data["top_up_single"]
        tier.top_up_total_fen = data["top_up_total"]
        tier.gift_points = data["gift_points"] or 0
        tier.gift_bonus_fen = data["gift_bonus"] or 0
        return list(data["plans"]), list(data["gift_coupons"])

    def draft(self) -> tuple[Tier, list[PaidPlan]]:
        """The edited tier as an unsaved copy (the saved row untouched), and its paid plans."""
        copy = Tier(pk=self.tier.pk if self.tier is not None else None)
        plans, _coupons = self.apply(copy)
        return copy, plans

    def places_differently(self) -> bool:
        """Whether the change can move members (a new tier always can)."""
        if self.tier is None:
            return True
        data, saved = self.cleaned_data, self.initial_for(self.tier)
        return any(
            (set(data[name]) != set(saved[name])) if name == "plans" else data[name] != saved[name]
            for name in self.PLACING
        )


# ------------------------------------------------------------------ the rules


class TierRulesForm(PreviewedForm):
    mode = forms.ChoiceField(label=_("Qualification"), choices=TierRules.Mode.choices)
    window_months = WholeNumberField(
        label=_("Window (months)"), min_value=1, max_value=60, help_text=_("Growth value of the trailing months.")
    )
    evaluation_day = WholeNumberField(
        label=_("Evaluated on day of month"),
        min_value=1,
        max_value=28,
        help_text=_("1 to 28, so that every month has it."),
    )
    upgrade_timing = forms.ChoiceField(label=_("Upgrades"), choices=TierRules.Timing.choices)
    downgrade = forms.ChoiceField(label=_("Downgrades"), choices=TierRules.Downgrade.choices)
    hold_months = WholeNumberField(
        label=_("A tier is kept at least (months)"), max_value=60, help_text=_("0: no minimum hold.")
    )
    growth_per_yuan = WholeNumberField(
        label=_("Growth value per yuan paid"), max_value=1_000, help_text=_("0 stops growth from purchases.")
    )
    growth_per_yuan_top_up = WholeNumberField(
        label=_("Growth value per yuan topped up"), max_value=1_000, help_text=_("0: top-ups give no growth value.")
    )
    growth_profile_complete = WholeNumberField(
        label=_("Growth value for completing the profile"), max_value=100_000, help_text=_("Once per member.")
    )

    FIELDS = (
        "mode",
        "window_months",
        "evaluation_day",
        "upgrade_timing",
        "downgrade",
        "hold_months",
        "growth_per_yuan",
        "growth_per_yuan_top_up",
        "growth_profile_complete",
    )
    # what the evaluation reads; the growth rates count from now on and move nobody today
    PLACING = ("mode", "window_months", "evaluation_day", "downgrade", "hold_months")

    def __init__(self, *args: Any, rules: TierRules, **kwargs: Any) -> None:
        kwargs.setdefault("initial", {name: getattr(rules, name) for name in self.FIELDS})
        super().__init__(*args, **kwargs)
        self.rules = rules

    def apply(self, rules: TierRules) -> TierRules:
        for name in self.FIELDS:
            setattr(rules, name, self.cleaned_data[name])
        return rules

    def draft(self) -> TierRules:
        return self.apply(TierRules(pk=1))

    def places_differently(self) -> bool:
        return any(self.cleaned_data[name] != getattr(self.rules, name) for name in self.PLACING)


# ------------------------------------------------------------------ a manager's floor on the member page


class TierFloorForm(OfficeFormMixin, forms.Form):
    """A manual tier: the member stands at least there until it is removed (no tier chosen)."""

    tier = forms.ModelChoiceField(
        label=_("Floor"),
        queryset=Tier.objects.none(),
        required=False,
        empty_label=_("No floor (remove it)"),
        help_text=_("The member stands at least on this tier until the floor is removed."),
    )
    reason = forms.CharField(label=_("Reason"), max_length=200)
    confirmed = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, current_floor: Tier | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.current_floor = current_floor
        field = self.fields["tier"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = Tier.objects.filter(rank__gt=0).order_by("rank")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if "tier" in data and data["tier"] is None and self.current_floor is None:
            self.add_error("tier", _("This member has no floor to remove; choose a tier."))
        return data

    def is_confirmed(self, data: QueryDict) -> bool:
        return bool(self.cleaned_data.get("confirmed")) and "edit" not in data
