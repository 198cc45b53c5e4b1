"""The points section's member self-service pages: the daily sign-in's rules and the points exchange catalogue.
Owners and managers change them; auditors read them."""

from typing import cast

from django.contrib import messages
from django.contrib.auth.models import User
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _

from assets import self_service, self_service_selectors
from assets.forms import ExchangeItemForm, SignInSettingsForm
from assets.models import ExchangeItem
from assets.views.common import READERS, SUPERVISORS
from members.permissions import OfficeRequest, staff_role_required


@staff_role_required(*READERS)
def sign_in_settings_view(request: OfficeRequest) -> HttpResponse:
    can_edit = request.role in SUPERVISORS
    settings_obj = self_service.sign_in_settings()
    form = SignInSettingsForm(
        request.POST if can_edit and request.method == "POST" else None, settings_obj=settings_obj
    )
    if not can_edit:
        for field in form.fields.values():
            field.disabled = True
    if can_edit and request.method == "POST" and form.is_valid():
        self_service.sign_in_settings_save(settings_obj=form.apply(), by=cast(User, request.user))
        messages.success(request, _("Sign-in rules saved."))
        return redirect("assets:sign-in-settings")
    context = {
        "form": form,
        "can_edit": can_edit,
        "figures": self_service_selectors.sign_in_figures(at=timezone.now()),
        "points_tab": "sign_in",
        "active_section": "points",
    }
    return render(request, "assets/self_service/sign_in_settings.html", context)


@staff_role_required(*READERS)
def exchange_items_view(request: OfficeRequest) -> HttpResponse:
    context = {
        "items": self_service_selectors.exchange_item_list(),
        "can_edit": request.role in SUPERVISORS,
        "points_tab": "exchange",
        "active_section": "points",
    }
    return render(request, "assets/self_service/exchange_items.html", context)


@staff_role_required(*SUPERVISORS)
def exchange_item_edit_view(request: OfficeRequest, pk: int | None = None) -> HttpResponse:
    item = get_object_or_404(ExchangeItem.objects.select_related("coupon_template"), pk=pk) if pk else None
    form = ExchangeItemForm(request.POST or None, item=item)
    if request.method == "POST" and form.is_valid():
        saved = form.apply(item or ExchangeItem())
        try:
            self_service.exchange_item_save(item=saved, by=cast(User, request.user))
        except self_service.StockBelowExchanged as exc:
            message = _("%(n)s were exchanged already; the stock cannot be lower.") % {"n": exc.exchanged}
            form.add_error("stock", message)
        else:
            messages.success(request, _("Exchange item %(name)s saved.") % {"name": saved.name})
            return redirect("assets:exchange-items")
    context = {"form": form, "item": item, "points_tab": "exchange", "active_section": "points"}
    return render(request, "assets/self_service/exchange_item_form.html", context)
