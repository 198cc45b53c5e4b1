"""The benefit catalogue in the back office, under the tiers section: the list and a benefit's page."""

from typing import cast

from django.contrib import messages
from django.contrib.auth.models import User
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.dates import WEEKDAYS
from django.utils.translation import gettext as _

from assets.views.common import READERS, SUPERVISORS
from benefits.forms import BenefitForm
from benefits.models import Benefit
from members.permissions import OfficeRequest, staff_role_required
from tiers import catalogue

Kind = Benefit.Kind


def times(percent: int) -> str:
    """150 → 1.5 times, 200 → 2 times, 125 → 1.25 times, after a multiplication sign (integer arithmetic)."""
    whole, part = divmod(percent, 100)
    return f"\u00d7{whole}" + (f".{part:02d}".rstrip("0") if part else "")


def benefit_terms(b: Benefit) -> str:
    """What a benefit gives, in a few words."""
    parts: list[str] = []
    if b.kind == Kind.MEMBER_DAY:
        if b.weekday is not None:
            parts.append(_("every %(day)s") % {"day": WEEKDAYS[b.weekday]})
        elif b.day_of_month is not None:
            parts.append(_("on day %(day)s of each month") % {"day": b.day_of_month})
    if b.kind == Kind.BIRTHDAY:
        parts.append(b.get_birthday_when_display())
    if b.discount_percent:
        parts.append(_("pays %(percent)s%% of the price") % {"percent": b.discount_percent})
    if b.multiplier_percent:
        additive = _(", added to other multipliers") if b.additive else ""
        parts.append(_("points %(times)s%(additive)s") % {"times": times(b.multiplier_percent), "additive": additive})
    if b.gift_points:
        parts.append(_("%(n)s points") % {"n": f"{b.gift_points:,}"})
    if b.coupon_template_id:
        coupon = b.coupon_template.name if b.coupon_template else ""
        if b.kind == Kind.MONTHLY_COUPONS:
            parts.append(_("%(coupon)s, %(n)s a month") % {"n": b.coupons_per_month, "coupon": coupon})
        else:
            parts.append(_("coupon %(coupon)s") % {"coupon": coupon})
    if b.kind == Kind.UPGRADE_GIFT:
        parts.append(_("the gift pack set on each tier"))
    return "; ".join(parts) or "—"


@staff_role_required(*READERS)
def benefit_list_view(request: OfficeRequest) -> HttpResponse:
    benefits = list(
        Benefit.objects.select_related("coupon_template")
        .prefetch_related("tiers", "plans")
        .order_by("-is_active", "kind", "name", "pk")
    )
    for b in benefits:
        b.terms = benefit_terms(b)  # type: ignore[attr-defined]
    context = {
        "benefits": benefits,
        "can_edit": request.role in SUPERVISORS,
        "section_tab": "benefits",
        "active_section": "tiers",
    }
    return render(request, "benefits/benefit_list.html", context)


@staff_role_required(*SUPERVISORS)
def benefit_edit_view(request: OfficeRequest, pk: int | None = None) -> HttpResponse:
    benefit = get_object_or_404(Benefit, pk=pk) if pk else None
    form = BenefitForm(request.POST or None, benefit=benefit)
    if request.method == "POST" and form.is_valid():
        saved = benefit or Benefit()
        tiers, plans = form.apply(saved)
        catalogue.benefit_save(benefit=saved, tiers=tiers, plans=plans, by=cast(User, request.user))
        messages.success(request, _("Benefit %(name)s saved.") % {"name": saved.name})
        return redirect("tiers:benefits")
    context = {"form": form, "benefit": benefit, "section_tab": "benefits", "active_section": "tiers"}
    return render(request, "benefits/benefit_form.html", context)
