"""The stored-balance section: what members hold (a liability), by store, and the recharge packages."""

from typing import cast

from django.contrib import messages
from django.contrib.auth.models import User
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _

from assets import catalogue, selectors, services
from assets.forms import RechargePackageForm
from assets.models import RechargePackage
from assets.views.common import READERS, SUPERVISORS
from members.permissions import OfficeRequest, staff_role_required


@staff_role_required(*READERS)
def balance_view(request: OfficeRequest) -> HttpResponse:
    lines, total = selectors.liabilities_by_store()
    packages = list(selectors.recharge_package_list())
    now = timezone.now()
    for package in packages:
        package.on_sale_now = services.package_on_sale(package, now)  # type: ignore[attr-defined]
        package.last_day = selectors.last_valid_date(package.ends_at)  # type: ignore[attr-defined]
    context = {
        "lines": lines,
        "total": total,
        "packages": packages,
        "can_edit": request.role in SUPERVISORS,
        "active_section": "balance",
    }
    return render(request, "assets/balance.html", context)


@staff_role_required(*SUPERVISORS)
def package_edit_view(request: OfficeRequest, pk: int | None = None) -> HttpResponse:
    package = get_object_or_404(RechargePackage, pk=pk) if pk else None
    form = RechargePackageForm(request.POST or None, package=package)
    if request.method == "POST" and form.is_valid():
        saved = package or RechargePackage()
        templates = form.apply(saved)
        catalogue.recharge_package_save(package=saved, coupon_templates=templates, by=cast(User, request.user))
        messages.success(request, _("Recharge package %(name)s saved.") % {"name": saved.name})
        return redirect("assets:balance")
    context = {"form": form, "package": package, "active_section": "balance"}
    return render(request, "assets/package_form.html", context)
