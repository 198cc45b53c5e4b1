"""Purchase history import: template download, upload and dry run, confirmation, progress, error report."""

from typing import Any

from django import forms
from django.db import transaction
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRefresh

from assets import imports, tasks
from assets.models import PurchaseImport
from assets.views.common import SUPERVISORS
from members import spreadsheets
from members.forms import OfficeFormMixin
from members.models import Store
from members.permissions import OfficeRequest, staff_role_required


class PurchaseImportForm(OfficeFormMixin, forms.Form):
    file = forms.FileField(
        label=_("File"),
        help_text=_("Excel (.xlsx) or CSV in UTF-8 or GB18030, with the columns of the template."),
        widget=forms.ClearableFileInput(attrs={"accept": ".xlsx,.csv,text/csv"}),
    )
    default_store = forms.ModelChoiceField(
        label=_("Store for rows without a store code"),
        queryset=Store.objects.order_by("code"),
        required=False,
        empty_label=_("None: every row gives its store"),
    )
    create_members = forms.BooleanField(
        label=_("Create members the register does not have (channel: import)"),
        required=False,
        help_text=_("Otherwise rows naming an unknown phone or external id are errors."),
    )
    earn_growth = forms.BooleanField(
        label=_("Count the purchases for growth value (tiers)"),
        required=False,
        initial=True,
        help_text=_("Dated when each purchase happened, so a rolling window counts it then."),
    )
    earn_points = forms.BooleanField(
        label=_("Let the purchases earn points"),
        required=False,
        help_text=_("Usually off: the previous system settled its own points."),
    )

    def clean_file(self) -> Any:
        return spreadsheets.upload_checked(self.cleaned_data["file"], imports.table_read)


@staff_role_required(*SUPERVISORS)
def purchase_import_view(request: OfficeRequest) -> HttpResponse:
    form = PurchaseImportForm(
        request.POST or None, request.FILES or None, initial={"default_store": request.office_store}
    )
    if request.method == "POST" and form.is_valid():
        uploaded = form.cleaned_data["file"]
        assert request.staff is not None
        purchase_import = imports.import_create(
            uploaded=uploaded,
            file_name=uploaded.name,
            by=request.staff.user,
            default_store=form.cleaned_data["default_store"],
            create_members=form.cleaned_data["create_members"],
            earn_growth=form.cleaned_data["earn_growth"],
            earn_points=form.cleaned_data["earn_points"],
        )
        if purchase_import.total_rows <= imports.SYNC_CHECK_MAX_ROWS:
            imports.import_check(purchase_import=purchase_import)
        else:
            transaction.on_commit(lambda: tasks.purchase_import_check_task.delay(import_id=purchase_import.pk))
        return redirect("assets:purchase-import-detail", pk=purchase_import.pk)
    recent = PurchaseImport.objects.select_related("created_by").order_by("-created_at", "-pk")[:10]
    context = {"form": form, "recent": recent, "columns": _column_help(), "active_section": "balance"}
    return render(request, "assets/purchase_import_upload.html", context)


def _column_help() -> list[tuple[str, Any]]:
    return [
        ("member_no", _("The member's number. Rows are matched by member_no, then phone, then external_id.")),
        ("phone", _("Mobile number; +86 may be left out.")),
        ("external_id", _("The member's id in the previous system.")),
        ("occurred_at", _("YYYY-MM-DD or YYYY-MM-DD HH:MM (ISO 8601), local time; a date alone means noon.")),
        ("amount", _("Amount paid in yuan, e.g. 29.33.")),
        ("store", _("Store code, e.g. SH-01; empty means the store chosen here.")),
        ("external_ref", _("The order number in the previous system, unique in its store (at most 64 characters).")),
        ("category", _("Optional: the goods' category.")),
        ("quantity", _("Optional: how many items, a whole number.")),
    ]


@staff_role_required(*SUPERVISORS)
def purchase_import_template_view(request: OfficeRequest, fmt: str) -> HttpResponse:
    if fmt not in spreadsheets.FORMATS:
        raise Http404
    return spreadsheets.export_response(
        filename="purchase-import-template", headers=imports.template_headers(), rows=[], fmt=fmt
    )


@staff_role_required(*SUPERVISORS)
def purchase_import_detail_view(request: OfficeRequest, pk: int) -> HttpResponse:
    purchase_import = get_object_or_404(PurchaseImport.objects.select_related("created_by", "default_store"), pk=pk)
    context = {"purchase_import": purchase_import, "active_section": "balance"}
    return render(request, "assets/purchase_import_detail.html", context)


@staff_role_required(*SUPERVISORS)
def purchase_import_status_view(request: OfficeRequest, pk: int) -> HttpResponse:
    """Polled every 2 s while a job runs; once it has finished, the whole page reloads to show the outcome."""
    purchase_import = get_object_or_404(PurchaseImport, pk=pk)
    if not purchase_import.is_busy and request.htmx:
        return HttpResponseClientRefresh()
    return render(request, "assets/partials/purchase_import_status.html", {"purchase_import": purchase_import})


@require_POST
@staff_role_required(*SUPERVISORS)
def purchase_import_confirm_view(request: OfficeRequest, pk: int) -> HttpResponse:
    purchase_import = get_object_or_404(PurchaseImport, pk=pk)
    if imports.import_confirm(purchase_import=purchase_import):
        transaction.on_commit(lambda: tasks.purchase_import_apply_task.delay(import_id=purchase_import.pk))
    return redirect("assets:purchase-import-detail", pk=purchase_import.pk)


@require_POST
@staff_role_required(*SUPERVISORS)
def purchase_import_resume_view(request: OfficeRequest, pk: int) -> HttpResponse:
    purchase_import = get_object_or_404(PurchaseImport, pk=pk)
    if imports.import_resume(purchase_import=purchase_import):
        transaction.on_commit(lambda: tasks.purchase_import_apply_task.delay(import_id=purchase_import.pk))
    return redirect("assets:purchase-import-detail", pk=purchase_import.pk)


@staff_role_required(*SUPERVISORS)
def purchase_import_errors_view(request: OfficeRequest, pk: int) -> HttpResponse:
    purchase_import = get_object_or_404(PurchaseImport, pk=pk)
    response = HttpResponse(
        imports.error_report_bytes(purchase_import=purchase_import), content_type=spreadsheets.CSV_CONTENT_TYPE
    )
    response["Content-Disposition"] = f'attachment; filename="purchase-import-{purchase_import.pk}-errors.csv"'
    return response
