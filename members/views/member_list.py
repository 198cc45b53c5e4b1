"""The member list: one search box, filters, sorting, keyset pages, bulk freeze and export of a selection."""

from collections.abc import Iterator, Sequence

from django import forms
from django.contrib import messages
from django.db.models import QuerySet
from django.http import HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_GET, require_POST

from members import filters, selectors, services, spreadsheets
from members.models import Member
from members.permissions import OfficeRequest, staff_role_required
from members.roles import Role

SUPERVISORS = (Role.OWNER, Role.MANAGER)
EXPORTERS = (Role.OWNER, Role.MANAGER)  # a file of phone numbers is not for read-only roles
EXPORT_MAX_ROWS = 100_000
BULK_MAX = 500
LIST_PARAMS = ("q", "type", "status", "channel", "store", "registered_from", "registered_to", "consent", "tag", "sort")


class MemberNumbersField(forms.MultipleChoiceField):
    def valid_value(self, value: str) -> bool:
        return value.isdigit() and len(value) <= 20


class BulkFreezeForm(forms.Form):
    member = MemberNumbersField(required=False)
    reason = forms.CharField(label=gettext_lazy("Reason"), max_length=200)
    query = forms.CharField(required=False, max_length=2000)

    def clean_member(self) -> list[str]:
        chosen: list[str] = self.cleaned_data.get("member") or []
        if not chosen:
            raise forms.ValidationError(_("Tick the members to freeze first."))
        if len(chosen) > BULK_MAX:
            raise forms.ValidationError(_("Freeze at most %(n)d members at a time.") % {"n": BULK_MAX})
        return chosen


def _partial_wanted(request: OfficeRequest) -> bool:
    return bool(request.htmx and not request.htmx.boosted and not request.htmx.history_restore_request)


def _visible(request: OfficeRequest) -> QuerySet[Member]:
    return selectors.member_list(viewer=request.staff, store=request.office_store)


def _filter_form(request: OfficeRequest) -> filters.MemberFilterForm:
    form = filters.MemberFilterForm(request.GET, stores=selectors.store_list(viewer=request.staff))
    form.is_valid()
    return form


def _query_string(form: filters.MemberFilterForm, **overrides: object) -> str:
    """The list's state as a query string: the parameters that parsed, plus `overrides`."""
    params = QueryDict(mutable=True)
    for name in (*LIST_PARAMS, "page_size"):
        value = form.value(name)
        if name == "store" and value is not None:
            value = value.pk
        if name == "tag":
            params.setlist("tag", [str(v) for v in value or []])  # several tags: any of them
        elif value not in (None, "") and not (name == "sort" and value == filters.DEFAULT_SORT):
            params[name] = str(value)
    if form.value("page_size") == filters.PAGE_SIZES[0]:
        params.pop("page_size", None)
    for name, value in overrides.items():
        params.pop(name, None)
        if value not in (None, ""):
            params[name] = str(value)
    return params.urlencode()


def _sort_links(form: filters.MemberFilterForm, sort: str) -> dict[str, dict[str, str]]:
    """For each sortable column: the link that sorts by it (flipping the direction when it is the sort now)."""
    links = {}
    for column in ("registered_at", "member_no", "name"):
        current = sort.lstrip("-") == column
        descending_now = sort.startswith("-")
        target = (column if descending_now else f"-{column}") if current else column
        if column == "registered_at" and not current:
            target = "-registered_at"
        arrow = ("down" if descending_now else "up") if current else ""
        links[column] = {"href": "?" + _query_string(form, sort=target), "arrow": arrow}
    return links


@require_GET
@staff_role_required()
def member_list_view(request: OfficeRequest) -> HttpResponse:
    form = _filter_form(request)
    qs = filters.member_filter(_visible(request), form)
    whole = filters.is_unfiltered(form) and request.role != Role.CASHIER and request.office_store is None
    count = filters.member_count(qs, whole_register=whole)
    sort = form.value("sort", filters.DEFAULT_SORT)
    notice = ""
    if sort.lstrip("-") == "name" and (count.capped or count.approximate):
        notice = _("Sorting by name works for up to %(n)s members; narrow the search first.") % {
            "n": f"{filters.NAME_SORT_LIMIT:,}"
        }
        sort = filters.DEFAULT_SORT
    size = form.value("page_size", filters.PAGE_SIZES[0])
    page = filters.member_page(qs, sort=sort, size=size, after=form.value("after", ""), before=form.value("before", ""))
    role = request.role
    context = {
        "form": form,
        "page": page,
        "count": count,
        "notice": notice,
        "sort": sort,
        "sort_links": _sort_links(form, sort),
        "full_phone": filters.shows_full_phone(request.staff),
        "can_freeze": role in SUPERVISORS,
        "can_export": role in EXPORTERS,
        "query": _query_string(form),
        "next_query": _query_string(form, after=page.next_cursor) if page.next_cursor else "",
        "previous_query": _query_string(form, before=page.previous_cursor) if page.previous_cursor else "",
        "page_sizes": filters.PAGE_SIZES,
        "page_size": size,
        "filters_open": not filters.is_unfiltered(form) or bool(form.errors),
        "filter_fields": ("type", "status", "channel", "store", "registered_from", "registered_to", "consent"),
        "active_section": "members",
        "area_tab": "members",
    }
    if _partial_wanted(request):
        return render(request, "members/partials/member_rows.html", context)
    return render(request, "members/member_list.html", context)


def _back_to_list(query: str) -> HttpResponseRedirect:
    # only our own list, with a query string we re-encode: never an open redirect
    safe = QueryDict(query).urlencode() if query else ""
    return HttpResponseRedirect(reverse("members:index") + (f"?{safe}" if safe else ""))


@require_POST
@staff_role_required(*SUPERVISORS)
def members_bulk_freeze_view(request: OfficeRequest) -> HttpResponse:
    form = BulkFreezeForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, str(error))
        return _back_to_list(request.POST.get("query", "")[:2000])
    chosen = _visible(request).filter(member_no__in=form.cleaned_data["member"])
    user = request.user if request.user.is_authenticated else None
    frozen = services.members_freeze(members=chosen, by=user, reason=form.cleaned_data["reason"])
    messages.success(request, ngettext("%(n)d member frozen.", "%(n)d members frozen.", frozen) % {"n": frozen})
    return _back_to_list(form.cleaned_data["query"])


EXPORT_COLUMNS = (
    ("member_no", gettext_lazy("Member number")),
    ("name", gettext_lazy("Name")),
    ("phone", gettext_lazy("Phone")),
    ("member_type", gettext_lazy("Member type")),
    ("status", gettext_lazy("Status")),
    ("channel", gettext_lazy("Channel")),
    ("registered_store__name", gettext_lazy("Store")),
    ("registered_at", gettext_lazy("Registered at")),
    ("marketing_consent", gettext_lazy("Marketing consent")),
    ("external_id", gettext_lazy("External id")),
)


def _export_rows(qs: QuerySet[Member], *, full_phone: bool) -> Iterator[Sequence[object]]:
    types, statuses, channels = dict(Member.Type.choices), dict(Member.Status.choices), dict(Member.Channel.choices)
    yes, no = _("Yes"), _("No")
    fields = [column for column, _label in EXPORT_COLUMNS]
    for row in qs.order_by("-registered_at", "-pk").values_list(*fields).iterator(chunk_size=2_000):
        values = dict(zip(fields, row, strict=True))
        phone = values["phone"]
        if phone and not full_phone:
            phone = Member(phone=phone).masked_phone
        yield [
            values["member_no"],
            values["name"],
            str(phone or ""),
            str(types.get(values["member_type"], values["member_type"])),
            str(statuses.get(values["status"], values["status"])),
            str(channels.get(values["channel"], values["channel"])),
            values["registered_store__name"] or "",
            timezone.localtime(values["registered_at"]).replace(microsecond=0),
            yes if values["marketing_consent"] else no,
            values["external_id"] or "",
        ]


@require_GET
@staff_role_required(*EXPORTERS)
def members_export_view(request: OfficeRequest) -> HttpResponse:
    form = _filter_form(request)
    fmt = request.GET.get("format", "csv")
    if fmt not in spreadsheets.FORMATS:
        fmt = "csv"
    qs = filters.member_filter(_visible(request), form)
    if qs[: EXPORT_MAX_ROWS + 1].count() > EXPORT_MAX_ROWS:
        messages.warning(
            request,
            _(
                "The selection has more than %(n)s members, too many to download from the list. Narrow the "
                "filters, or export the whole register from the import and export page."
            )
            % {"n": f"{EXPORT_MAX_ROWS:,}"},
        )
        return _back_to_list(_query_string(form))
    rows = _export_rows(qs, full_phone=filters.shows_full_phone(request.staff))
    filename = f"members-{timezone.localtime():%Y%m%d-%H%M}"
    return spreadsheets.export_response(
        filename=filename, headers=[str(label) for _c, label in EXPORT_COLUMNS], rows=rows, fmt=fmt
    )
