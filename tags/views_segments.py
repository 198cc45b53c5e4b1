"""Segments in the back office: the list, the builder (conditions, a live count and the first members, as htmx
updates them), export as CSV, recount and delete. What a segment holds is tags.segments' business."""

from typing import Any, cast

from django.contrib import messages
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.http import HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from members import filters as members_filters
from members import spreadsheets
from members.permissions import OfficeRequest, staff_role_required
from members.roles import Role
from members.views import member_list as member_list_views
from tags import segments
from tags.models import Segment
from tags.segment_forms import SegmentConditionsForm, SegmentForm

# Marketing staff work as managers. Cashiers never see segments; auditors read the list only, because a
# segment's members (and its export) are personal data.
BUILDERS = (Role.OWNER, Role.MANAGER)
READERS = (Role.OWNER, Role.MANAGER, Role.AUDITOR)
PREVIEW_SIZE = 20


def _user(request: OfficeRequest) -> User | None:
    return cast(User, request.user) if request.user.is_authenticated else None


@require_GET
@staff_role_required(*READERS)
def segment_list_view(request: OfficeRequest) -> HttpResponse:
    context = {
        "segments": Segment.objects.select_related("created_by").order_by("name", "pk"),
        "can_build": request.role in BUILDERS,
        "active_section": "tags",
    }
    return render(request, "tags/segment_list.html", context)


def _live(
    request: OfficeRequest, definition: dict[str, Any] | None, form: SegmentConditionsForm | None
) -> dict[str, Any]:
    """The live panel: how many members the conditions hold and the newest of them (nothing while the
    conditions do not parse)."""
    if definition is None:
        return {"live_form": form, "count": None, "preview": []}
    try:
        count = segments.segment_count(definition)
    except ValidationError:  # a saved definition that no longer parses: the builder shows it to be fixed
        return {"live_form": form, "count": None, "preview": []}
    members = segments.segment_members(definition).select_related("registered_store")
    return {
        "live_form": form,
        "count": count,
        "preview": list(members.order_by("-registered_at", "-pk")[:PREVIEW_SIZE]),
        "preview_size": PREVIEW_SIZE,
        "full_phone": members_filters.shows_full_phone(request.staff),
    }


@require_GET
@staff_role_required(*BUILDERS)
def segment_count_view(request: OfficeRequest) -> HttpResponse:
    """The builder's live count: the form's conditions as GET parameters, the panel as a partial."""
    form = SegmentConditionsForm(request.GET)
    definition = form.cleaned_definition if form.is_valid() else None
    return render(request, "tags/partials/segment_count.html", _live(request, definition, form))


@require_http_methods(["GET", "POST"])
@staff_role_required(*BUILDERS)
def segment_edit_view(request: OfficeRequest, pk: int | None = None) -> HttpResponse:
    segment = get_object_or_404(Segment.objects.select_related("created_by"), pk=pk) if pk else None
    if request.method == "POST":
        form = SegmentForm(request.POST, segment=segment)
        if form.is_valid():
            saved = segment or Segment()
            saved.name = form.cleaned_data["name"]
            saved.description = form.cleaned_data["description"]
            saved.definition = form.cleaned_definition
            try:
                segments.segment_save(segment=saved, by=_user(request))
            except ValidationError as exc:
                form.add_definition_errors(exc)
            else:
                messages.success(request, _("Segment %(name)s saved.") % {"name": saved.name})
                return redirect("tags:segment-edit", pk=saved.pk)
        conditions = SegmentConditionsForm(request.POST)
        live = _live(request, conditions.cleaned_definition if conditions.is_valid() else None, conditions)
    else:
        form = SegmentForm(segment=segment)
        # a saved segment counts as saved: a tag deleted since holds nobody (the pickers no longer offer it)
        live = _live(request, segment.definition if segment else {"v": segments.SCHEMA_VERSION}, None)
    context = {"form": form, "segment": segment, "active_section": "tags", **live}
    return render(request, "tags/segment_form.html", context)


@require_GET
@staff_role_required(*BUILDERS)  # type: ignore[arg-type]  # its View type says HttpResponse; this one streams
def segment_export_view(request: OfficeRequest, pk: int) -> HttpResponseBase:
    """The segment's members as CSV (UTF-8 with BOM), streamed, with the member list's columns. Like the member
    list's export, a selection above its row limit is refused with a message."""
    segment = get_object_or_404(Segment, pk=pk)
    limit = member_list_views.EXPORT_MAX_ROWS
    members = segments.segment_members(segment)
    if members.order_by()[: limit + 1].count() > limit:
        messages.warning(
            request,
            _("The segment has more than %(n)s members, too many to download at once. Narrow its conditions.")
            % {"n": f"{limit:,}"},
        )
        return redirect("tags:segments")
    headers = [str(label) for _column, label in member_list_views.EXPORT_COLUMNS]
    rows = member_list_views._export_rows(members, full_phone=members_filters.shows_full_phone(request.staff))
    response = StreamingHttpResponse(
        spreadsheets._csv_chunks(headers, rows), content_type=spreadsheets.CSV_CONTENT_TYPE
    )
    filename = f"segment-{segment.pk}-{timezone.localtime():%Y%m%d-%H%M}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@require_GET
@staff_role_required()
def tag_options_view(request: OfficeRequest) -> HttpResponse:
    """Every tag as <option>s grouped by tag group, the `tag` parameters selected: the member list's tag picker
    loads them after the page, so the list itself reads no tags."""
    selected = {int(value) for value in request.GET.getlist("tag") if value.isdigit() and len(value) < 19}
    context = {"groups": members_filters.tag_choices(), "selected": selected}
    return render(request, "tags/partials/segment_tag_options.html", context)


@require_POST
@staff_role_required(*BUILDERS)
def segment_recount_view(request: OfficeRequest, pk: int) -> HttpResponse:
    segment = get_object_or_404(Segment, pk=pk)
    count = segments.segment_count_soon(segment)
    if count is None:
        messages.info(
            request, _("%(name)s is being counted; the list shows the count when it is done.") % {"name": segment.name}
        )
    else:
        messages.success(request, _("%(name)s holds %(n)s members.") % {"name": segment.name, "n": f"{count:,}"})
    return redirect("tags:segments")


@require_http_methods(["GET", "POST"])
@staff_role_required(*BUILDERS)
def segment_delete_view(request: OfficeRequest, pk: int) -> HttpResponse:
    segment = get_object_or_404(Segment.objects.select_related("created_by"), pk=pk)
    if request.method == "POST":
        segments.segment_delete(segment=segment, by=_user(request))
        messages.success(request, _("Segment %(name)s deleted.") % {"name": segment.name})
        return redirect("tags:segments")
    return render(request, "tags/segment_delete.html", {"segment": segment, "active_section": "tags"})
