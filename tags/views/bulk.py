"""Tagging many members at once: every member of a filtered member list, or the members an uploaded file names.
Both run as Celery jobs; their progress and outcome (with the file's rows in error) come from Celery's result
backend, which the status page polls."""

import warnings
from dataclasses import dataclass, field
from typing import Any, cast
from uuid import UUID, uuid4

from django.contrib import messages
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.core.files.storage import default_storage
from django.db import transaction
from django.http import Http404, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.text import get_valid_filename
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRefresh

from config.celery import app as celery_app
from members import filters as members_filters
from members import selectors as members_selectors
from members import spreadsheets
from members.models import Member
from members.permissions import OfficeRequest, staff_role_required
from tags import services, tasks
from tags.forms import BulkFilterForm, BulkSelectionForm, TagImportForm
from tags.models import MemberTagEvent, Tag
from tags.views.common import EDITORS, partial_wanted

# the member list's search and filters (not its sort or paging); "tag" when the list filters by tags
FILTER_FIELDS = ("q", "type", "status", "channel", "store", "registered_from", "registered_to", "consent", "tag")
ERRORS_SHOWN = 100


@dataclass
class BulkState:
    """A bulk job as its status page shows it."""

    state: str  # "waiting", "running", "done", "failed"
    done: int = 0
    total: int = 0
    changed: int = 0
    outcome: dict[str, Any] = field(default_factory=dict)

    @property
    def percent(self) -> int:
        if self.state == "done":
            return 100
        return min(100, 100 * self.done // self.total) if self.total else 0

    @property
    def busy(self) -> bool:
        return self.state in ("waiting", "running")


def bulk_state(task_id: str) -> BulkState:
    with warnings.catch_warnings():  # Celery warns when eager, but eager runs store their outcome too (tags.tasks)
        warnings.simplefilter("ignore", RuntimeWarning)
        meta = celery_app.backend.get_task_meta(task_id)
    info = meta.get("result") if isinstance(meta.get("result"), dict) else {}
    state = {"SUCCESS": "done", "FAILURE": "failed", "PROGRESS": "running", "STARTED": "running"}.get(
        str(meta.get("status")), "waiting"
    )
    return BulkState(
        state=state,
        done=int(info.get("done", 0)),
        total=int(info.get("total", 0)),
        changed=int(info.get("changed", 0)),
        outcome=info,
    )


def _start(task: Any, kwargs: dict[str, Any]) -> str:
    """Queue the job once this request's transaction commits; its id (minted here) names its status page."""
    task_id = str(uuid4())
    transaction.on_commit(lambda: task.apply_async(kwargs=kwargs, task_id=task_id))
    return task_id


# ------------------------------------------------------------------ a filtered member list


def _filter_query(request: OfficeRequest, form: members_filters.MemberFilterForm) -> str:
    """The member list's query string for what parsed; the store chosen in the switcher stands in for an empty
    store filter, as it narrows the list."""
    params = QueryDict(mutable=True)
    for name in FILTER_FIELDS:
        if name not in form.fields:
            continue
        value = form.value(name)
        if value in (None, "", []):
            continue
        if name == "store":
            params[name] = str(value.pk)
        elif isinstance(value, list):
            params.setlist(name, [str(v) for v in value])
        else:
            params[name] = value.isoformat() if hasattr(value, "isoformat") else str(value)
    if "store" not in params and request.office_store is not None:
        params["store"] = str(request.office_store.pk)
    return params.urlencode()


@staff_role_required(*EDITORS)
def bulk_filter_view(request: OfficeRequest) -> HttpResponse:
    """Choose members with the member list's filters (its query string arrives as is) and a manual tag to give
    or take away; the count is live. POST starts the job."""
    data = QueryDict(request.POST.get("query", "")) if request.method == "POST" else request.GET
    filter_form = members_filters.MemberFilterForm(data, stores=members_selectors.store_list(viewer=request.staff))
    filter_form.is_valid()
    query = _filter_query(request, filter_form)
    initial = {"target": request.GET.get("target") or None, "action": request.GET.get("action") or None}
    form = BulkFilterForm(request.POST or None, initial={k: v for k, v in initial.items() if v})
    if request.method == "POST" and filter_form.errors:
        # a filter that does not parse would be dropped, and the job would reach more members than chosen
        form.is_valid()
        form.add_error(None, _("Some member filters are not valid; correct them before tagging."))
    elif request.method == "POST" and form.is_valid():
        tag = form.cleaned_data["target"]
        task_id = _start(
            tasks.tag_members_filter_task,
            {"tag_id": tag.pk, "action": form.cleaned_data["action"], "query": query, "by_id": request.user.pk},
        )
        return redirect("tags:bulk-status", pk=tag.pk, task_id=task_id)
    members = services.filtered_members(query).exclude(status=Member.Status.CANCELLED)
    context = {
        "filter_form": filter_form,
        "form": form,
        "query": query,
        "count": members_filters.member_count(members, whole_register=False),
        "filter_fields": [name for name in FILTER_FIELDS if name in filter_form.fields and name != "q"],
        "active_section": "tags",
    }
    if partial_wanted(request) and request.method == "GET":
        return render(request, "tags/partials/bulk_filter_preview.html", context)
    return render(request, "tags/bulk_filter.html", context)


@require_POST
@staff_role_required(*EDITORS)
def bulk_selection_view(request: OfficeRequest) -> HttpResponse:
    """Give or take away a manual tag for the members ticked on the member list (at most BATCH), then go back to
    the list as it was."""
    form = BulkSelectionForm(request.POST)
    if form.is_valid():
        visible = members_selectors.member_list(viewer=request.staff, store=request.office_store)
        ids = list(visible.filter(member_no__in=form.cleaned_data["member"]).values_list("pk", flat=True))
        tag, adding = form.cleaned_data["target"], form.cleaned_data["action"] == MemberTagEvent.Action.ADDED
        change = services.members_tag_add if adding else services.members_tag_remove
        changed = change(tag=tag, member_ids=ids, by=cast(User, request.user))
        done = (
            ngettext("%(tag)s given to %(n)d member.", "%(tag)s given to %(n)d members.", changed)
            if adding
            else ngettext("%(tag)s taken from %(n)d member.", "%(tag)s taken from %(n)d members.", changed)
        )
        messages.success(request, done % {"tag": tag.label, "n": changed})
    else:
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, str(error))
    # only our own list, with a query string we re-encode: never an open redirect
    query = QueryDict(request.POST.get("query", "")[:2000]).urlencode()
    return HttpResponseRedirect(reverse("members:index") + (f"?{query}" if query else ""))


# ------------------------------------------------------------------ an imported file


@staff_role_required(*EDITORS)
def tag_import_view(request: OfficeRequest, pk: int) -> HttpResponse:
    tag = get_object_or_404(Tag.objects.select_related("group"), pk=pk)
    if tag.kind != Tag.Kind.MANUAL:
        raise Http404  # rule and system tags follow their rules
    form = TagImportForm(request.POST or None, request.FILES or None, initial={"action": request.GET.get("action")})
    adding = request.method == "POST" and form.is_valid() and form.cleaned_data["action"] == MemberTagEvent.Action.ADDED
    if adding and not tag.is_active:
        form.add_error(None, _("This tag is inactive; reactivate it first."))
    if request.method == "POST" and form.is_valid():
        uploaded = form.cleaned_data["file"]
        name = get_valid_filename(uploaded.name)[:100] or "members.csv"
        # the job reads the file from storage (a worker may run on another machine) and deletes it when done
        path = default_storage.save(f"tag-imports/{uuid4().hex}/{name}", uploaded)
        task_id = _start(
            tasks.tag_members_import_task,
            {
                "tag_id": tag.pk,
                "action": form.cleaned_data["action"],
                "path": path,
                "file_name": uploaded.name[:200],
                "by_id": request.user.pk,
            },
        )
        return redirect("tags:bulk-status", pk=tag.pk, task_id=task_id)
    context = {
        "tag": tag,
        "form": form,
        "member_no_columns": services.MEMBER_NO_COLUMNS,
        "phone_columns": services.PHONE_COLUMNS,
        "active_section": "tags",
    }
    return render(request, "tags/tag_import.html", context)


# ------------------------------------------------------------------ progress and outcome


def _state_for(tag: Tag, task_id: UUID) -> BulkState:
    state = bulk_state(str(task_id))
    if state.outcome and state.outcome.get("tag") != tag.pk:
        raise Http404  # another tag's job
    return state


@require_GET
@staff_role_required(*EDITORS)
def bulk_status_view(request: OfficeRequest, pk: int, task_id: UUID) -> HttpResponse:
    """Polled every 2 s while the job runs; once it has finished, the whole page reloads to show the outcome."""
    tag = get_object_or_404(Tag.objects.select_related("group"), pk=pk)
    state = _state_for(tag, task_id)
    errors = state.outcome.get("errors") or []
    context = {
        "tag": tag,
        "task_id": task_id,
        "job": state,
        "is_import": state.outcome.get("kind") == "import",
        "adding": state.outcome.get("action", MemberTagEvent.Action.ADDED) == MemberTagEvent.Action.ADDED,
        "errors": errors[:ERRORS_SHOWN],
        "more_errors": max(0, int(state.outcome.get("failed", 0)) - ERRORS_SHOWN),
        "active_section": "tags",
    }
    if partial_wanted(request):
        if not state.busy and request.GET.get("poll"):
            return HttpResponseClientRefresh()
        return render(request, "tags/partials/bulk_status.html", context)
    return render(request, "tags/bulk_status.html", context)


@require_GET
@staff_role_required(*EDITORS)
def bulk_errors_view(request: OfficeRequest, pk: int, task_id: UUID) -> HttpResponse:
    """The rows of an imported file that named nobody, as CSV: row, column, error, then the row as uploaded."""
    tag = get_object_or_404(Tag, pk=pk)
    state = _state_for(tag, task_id)
    if state.outcome.get("kind") != "import":
        raise PermissionDenied
    headers = [str(h) for h in state.outcome.get("headers", [])]
    rows = [[e["row"], e["column"], e["message"], *e.get("values", [])] for e in state.outcome.get("errors", [])]
    body = spreadsheets.csv_bytes(headers=[_("row"), _("column"), _("error"), *headers], rows=rows)
    response = HttpResponse(body, content_type=spreadsheets.CSV_CONTENT_TYPE)
    response["Content-Disposition"] = f'attachment; filename="tag-{tag.pk}-import-errors.csv"'
    return response
