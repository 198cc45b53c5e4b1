"""The points section: the program's rules, outstanding points and what expires soon."""

from typing import cast

from django.contrib import messages
from django.contrib.auth.models import User
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from assets import catalogue, selectors
from assets.forms import LoyaltySettingsForm
from assets.views.common import READERS, SUPERVISORS
from members.permissions import OfficeRequest, staff_role_required

EXPIRY_WINDOW_DAYS = 30


@staff_role_required(*READERS)
def points_view(request: OfficeRequest) -> HttpResponse:
    can_edit = request.role in SUPERVISORS
    settings_obj = selectors.loyalty_settings()
    form = LoyaltySettingsForm(
        request.POST if can_edit and request.method == "POST" else None, settings_obj=settings_obj
    )
    if not can_edit:
        for field in form.fields.values():
            field.disabled = True
    if can_edit and request.method == "POST" and form.is_valid():
        catalogue.loyalty_settings_save(settings_obj=form.apply(), by=cast(User, request.user))
        messages.success(request, _("Points rules saved."))
        return redirect("assets:points")
    outstanding, debt = selectors.points_outstanding()
    expiring_points, expiring_members, expiring_days = selectors.points_expiring(within_days=EXPIRY_WINDOW_DAYS)
    context = {
        "form": form,
        "can_edit": can_edit,
        "outstanding": outstanding,
        "debt": debt,
        "expiring_points": expiring_points,
        "expiring_members": expiring_members,
        "expiring_days": expiring_days,
        "window_days": EXPIRY_WINDOW_DAYS,
        "active_section": "points",
    }
    return render(request, "assets/points.html", context)
