"""Back-office pages of the paid plans: the list, and creating or editing a plan."""

from typing import cast

from django.contrib import messages
from django.contrib.auth.models import User
from django.db.models import Count, Q
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _

from members import services
from members.forms import PaidPlanForm, yuan_text
from members.models import PaidPlan
from members.permissions import OfficeRequest, staff_role_required
from members.roles import Role


@staff_role_required(Role.OWNER, Role.MANAGER, Role.AUDITOR)
def plan_list_view(request: OfficeRequest) -> HttpResponse:
    now = timezone.now()
    current = Q(periods__starts_at__lte=now, periods__ends_at__gt=now)
    plans = PaidPlan.objects.annotate(members_now=Count("periods__member", filter=current, distinct=True)).order_by(
        "-is_active", "name", "pk"
    )
    for plan in plans:
        plan.price_yuan = yuan_text(plan.price_fen)  # type: ignore[attr-defined]
    can_edit = request.role in (Role.OWNER, Role.MANAGER)
    return render(
        request,
        "members/plan_list.html",
        {"plans": plans, "can_edit": can_edit, "area_tab": "plans", "active_section": "members"},
    )


@staff_role_required(Role.OWNER, Role.MANAGER)
def plan_edit_view(request: OfficeRequest, pk: int | None = None) -> HttpResponse:
    plan = get_object_or_404(PaidPlan, pk=pk) if pk else None
    form = PaidPlanForm.for_plan(plan, request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        saved = services.plan_save(
            plan=plan,
            by=cast(User, request.user),
            name=data["name"],
            price_fen=data["price"],
            duration=data["duration"],
            is_active=data["is_active"],
            description=data["description"],
        )
        messages.success(request, _("Paid plan %(name)s saved.") % {"name": saved.name})
        return redirect("members:plan-list")
    return render(
        request,
        "members/plan_form.html",
        {"form": form, "plan": plan, "area_tab": "plans", "active_section": "members"},
    )
