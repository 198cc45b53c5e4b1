"""Member import: template download, upload and dry run, confirmation, progress, error report."""

from typing import Any

from django import forms
from django.db import transaction
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRefresh

from members import importing, spreadsheets, tasks
from members.forms import OfficeFormMixin
from members.models import MemberImport, Store
from members.permissions import OfficeRequest, staff_role_required
from members.roles import Role

IMPORTERS = (Role.OWNER, Role.MANAGER)


class ImportUploadForm(OfficeFormMixin, forms.Form):
    file = forms.FileField(
        label=_("File"),
        help_text=_("Excel (.xlsx) or CSV in UTF-8 or GB18030, with the columns of the template."),
        widget=forms.ClearableFileInput(attrs={"accept": ".xlsx,.csv,text/csv"}),
    )
    default_store = forms.ModelChoiceField(
        label=_("Store for rows without a store code"),
        queryset=Store.objects.filter(is_active=True).order_by("code"),
        required=False,
        empty_label=_("No store"),
    )

    def clean_file(self) -> Any:
        return spreadsheets.upload_checked(self.cleaned_data["file"], importing.table_read)


@staff_role_required(*IMPORTERS)
def member_import_view(request: OfficeRequest) -> HttpResponse:
    form = ImportUploadForm(
        request.POST or None, request.FILES or None, initial={"default_store": request.office_store}
    )
    if request.method == "POST" and form.is_valid():
        uploaded = form.cleaned_data["file"]
        assert request.staff is not None
        member_import = importing.import_create(
            uploaded=uploaded,
            file_name=uploaded.name,
            by=request.staff.user,
            default_store=form.cleaned_data["default_store"],
        )
        if member_import.total_rows <= importing.SYNC_CHECK_MAX_ROWS:
            importing.import_check(member_import=member_import)
        else:
            transaction.on_commit(lambda: tasks.member_import_check_task.delay(import_id=member_import.pk))
        return redirect("members:import-detail", pk=member_import.pk)
    recent = MemberImport.objects.select_related("created_by").order_by("-created_at", "-pk")[:10]
    context = {"form": form, "recent": recent, "columns": _column_help(), "active_section": "members"}
    return render(request, "members/import_upload.html", context)


def _column_help() -> list[tuple[str, Any]]:
    return [
        ("member_no", _("Matches an existing member by member number (leave empty for new members).")),
        ("phone", _("Mobile number; +86 may be left out. Matches an existing member.")),
        ("name", _("Name.")),
        ("gender", _("female, male or unknown (also 女 / 男).")),
        ("birthday", _("YYYY-MM-DD.")),
        ("email", _("E-mail address.")),
        ("external_id", _("The member's id in the previous system. Matches an existing member.")),
        ("store_code", _("Code of the store of registration, e.g. SH-01.")),
        ("marketing_consent", _("yes or no.")),
        ("notes", _("Free text.")),
        ("registered_at", _("YYYY-MM-DD or YYYY-MM-DD HH:MM; empty means now. Only for new members.")),
    ]


@staff_role_required(*IMPORTERS)
def member_import_template_view(request: OfficeRequest, fmt: str) -> HttpResponse:
    if fmt not in spreadsheets.FORMATS:
        raise Http404
    return spreadsheets.export_response(
        filename="member-import-template", headers=importing.template_headers(), rows=[], fmt=fmt
    )


@staff_role_required(*IMPORTERS)
def member_import_detail_view(request: OfficeRequest, pk: int) -> HttpResponse:
    member_import = get_object_or_404(MemberImport.objects.select_related("created_by", "default_store"), pk=pk)
    context = {"member_import": member_import, "active_section": "members"}
    return render(request, "members/import_detail.html", context)


@staff_role_required(*IMPORTERS)
def member_import_status_view(request: OfficeRequest, pk: int) -> HttpResponse:
    """Polled every 2 s while a job runs; once it has finished, the whole page reloads to show the outcome."""
    member_import = get_object_or_404(MemberImport, pk=pk)
    if not member_import.is_busy and request.htmx:
        return HttpResponseClientRefresh()
    return render(request, "members/partials/import_status.html", {"member_import": member_import})


@require_POST
@staff_role_required(*IMPORTERS)
def member_import_confirm_view(request: OfficeRequest, pk: int) -> HttpResponse:
    member_import = get_object_or_404(MemberImport, pk=pk)
    if importing.import_confirm(member_import=member_import):
        transaction.on_commit(lambda: tasks.member_import_apply_task.delay(import_id=member_import.pk))
    return redirect("members:import-detail", pk=member_import.pk)


@staff_role_required(*IMPORTERS)
def member_import_errors_view(request: OfficeRequest, pk: int) -> HttpResponse:
    member_import = get_object_or_404(MemberImport, pk=pk)
    response = HttpResponse(
        importing.error_report_bytes(member_import=member_import), content_type=spreadsheets.CSV_CONTENT_TYPE
    )
    response["Content-Disposition"] = f'attachment; filename="member-import-{member_import.pk}-errors.csv"'
    return response
