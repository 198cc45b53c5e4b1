"""The coupons section: templates, and issuing one to a filtered list of members with its progress."""

from typing import Any, cast

from django import forms
from django.contrib import messages
from django.contrib.auth.models import User
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET
from django_htmx.http import HttpResponseClientRefresh

from assets import catalogue, selectors
from assets.forms import CouponBatchForm, CouponTemplateForm
from assets.models import CouponIssueBatch, CouponTemplate
from assets.views.common import READERS, SUPERVISORS, partial_wanted
from members import filters
from members import selectors as members_selectors
from members.models import Store
from members.permissions import OfficeRequest, staff_role_required

# the member list's filters that choose members (not its sorting or paging)
FILTER_PARAMS = ("q", "type", "status", "channel", "store", "registered_from", "registered_to", "consent", "tag")
BUSY = (CouponIssueBatch.Status.QUEUED, CouponIssueBatch.Status.RUNNING)


@staff_role_required(*READERS)
def coupons_view(request: OfficeRequest) -> HttpResponse:
    context = {
        "templates": selectors.coupon_template_list(),
        "batches": selectors.coupon_batch_list(),
        "can_edit": request.role in SUPERVISORS,
        "active_section": "coupons",
    }
    return render(request, "assets/coupons.html", context)


@staff_role_required(*SUPERVISORS)
def template_edit_view(request: OfficeRequest, pk: int | None = None) -> HttpResponse:
    template = get_object_or_404(CouponTemplate, pk=pk) if pk else None
    form = CouponTemplateForm(request.POST or None, template=template)
    if request.method == "POST" and form.is_valid():
        saved = template or CouponTemplate()
        stores = form.apply(saved)
        try:
            catalogue.coupon_template_save(template=saved, stores=stores, by=cast(User, request.user))
        except catalogue.StockBelowIssued as exc:
            message = _("%(n)s coupons were issued already; the stock cannot be lower.") % {"n": exc.issued}
            form.add_error("stock", message)
        else:
            messages.success(request, _("Coupon %(name)s saved.") % {"name": saved.name})
            return redirect("assets:coupons")
    context = {"form": form, "template": template, "active_section": "coupons"}
    return render(request, "assets/coupon_template_form.html", context)


def _filter_form(request: OfficeRequest, data: Any) -> filters.MemberFilterForm:
    form = filters.MemberFilterForm(data, stores=members_selectors.store_list(viewer=request.staff))
    form.is_valid()
    return form


def _filter_params(request: OfficeRequest, form: filters.MemberFilterForm) -> dict[str, object]:
    """The member-list filters as the batch keeps them: the values that parsed, in the list's own format.
    The store chosen in the switcher stands in when no store filter was given."""
    params: dict[str, object] = {}
    for name in FILTER_PARAMS:
        value = form.value(name)
        if value is None:
            continue
        if name == "tag":
            if value:
                params[name] = [int(v) for v in value]  # several tags: members holding any of them
            continue
        params[name] = value.pk if name == "store" else (value.isoformat() if hasattr(value, "isoformat") else value)
    if "store" not in params and request.office_store is not None:
        params["store"] = request.office_store.pk
    return params


@staff_role_required(*SUPERVISORS)
def coupon_batch_new_view(request: OfficeRequest) -> HttpResponse:
    """Choose members with the member list's filters and a coupon; the count is live. POST starts the job."""
    data = request.POST if request.method == "POST" else request.GET
    filter_form = _filter_form(request, data)
    if request.method == "POST":
        batch_form = CouponBatchForm(request.POST)
    else:  # the coupon already chosen survives a change of the filters
        batch_form = CouponBatchForm(initial={"template": request.GET.get("template") or None})
    params = _filter_params(request, filter_form)
    if request.method == "POST" and not filter_form.errors and batch_form.is_valid():
        started = catalogue.coupon_issue_batch_start(
            template=batch_form.cleaned_data["template"],
            filters=params,
            by=cast(User, request.user),
            idempotency_key=batch_form.cleaned_data["idempotency_key"],
        )
        return redirect("assets:coupon-batch", pk=started.pk)
    count = catalogue.coupon_issue_batch_members(params) if not filter_form.errors else 0
    context = {
        "filter_form": filter_form,
        "batch_form": batch_form,
        "params": params,
        "count": count,
        "filter_fields": FILTER_PARAMS,
        "active_section": "coupons",
    }
    if partial_wanted(request) and request.method == "GET":
        return render(request, "assets/partials/coupon_batch_preview.html", context)
    return render(request, "assets/coupon_batch_new.html", context)


def _filters_shown(batch: CouponIssueBatch) -> list[tuple[str, str]]:
    """The batch's member filters as staff read them: field labels and choice labels, store names."""
    form = filters.MemberFilterForm(stores=Store.objects.all())
    shown = []
    for name, value in batch.filters.items():
        field = form.fields.get(name)
        if field is None:
            continue
        text = str(value)
        if name == "store":
            text = str(Store.objects.filter(pk=value).first() or value)
        elif isinstance(field, forms.ChoiceField):
            text = str(dict(field.choices).get(value, value))  # type: ignore[arg-type]
        shown.append((str(field.label), text))
    return shown


def _batch_context(batch: CouponIssueBatch) -> dict[str, Any]:
    done = batch.issued + batch.skipped
    percent = min(100, 100 * done // batch.total) if batch.total else (100 if batch.status not in BUSY else 0)
    return {"batch": batch, "percent": percent, "busy": batch.status in BUSY}


@require_GET
@staff_role_required(*READERS)
def coupon_batch_view(request: OfficeRequest, pk: int) -> HttpResponse:
    batch = get_object_or_404(CouponIssueBatch.objects.select_related("template", "created_by"), pk=pk)
    context = {**_batch_context(batch), "filters_shown": _filters_shown(batch), "active_section": "coupons"}
    return render(request, "assets/coupon_batch.html", context)


@require_GET
@staff_role_required(*READERS)
def coupon_batch_status_view(request: OfficeRequest, pk: int) -> HttpResponse:
    """Polled while the job runs; once it has finished, the whole page reloads to show the outcome."""
    batch = get_object_or_404(CouponIssueBatch.objects.select_related("template"), pk=pk)
    if batch.status not in BUSY and request.htmx:
        return HttpResponseClientRefresh()
    return render(request, "assets/partials/coupon_batch_status.html", _batch_context(batch))
