"""The 360° member page, registration, edit, status changes and granting a paid plan."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib import messages
from django.contrib.auth.models import User
from django.core.paginator import Paginator
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect

from assets import views as assets_views
from config.celery import task_send
from members import cards, selectors, services
from members.forms import CancelForm, MemberForm, PlanGrantForm, ReasonForm
from members.models import Member, MemberView, PlanPeriod
from members.permissions import OfficeRequest, staff_role_required
from members.roles import Role
from tags import views as tags_views
from tiers import services as tiers_services
from tiers import views as tiers_views

EDITORS = (Role.OWNER, Role.MANAGER, Role.CASHIER)
SUPERVISORS = (Role.OWNER, Role.MANAGER)
HISTORY_PAGE_SIZE = 20
VIEWS_PAGE_SIZE = 50

# tab key → label; the last one comes with a later capability and says so
TABS: tuple[tuple[str, Any], ...] = (
    ("profile", gettext_lazy("Profile")),
    ("card", gettext_lazy("Card")),
    ("balance", gettext_lazy("Balance")),
    ("points", gettext_lazy("Points")),
    ("coupons", gettext_lazy("Coupons")),
    ("plans", gettext_lazy("Plans")),
    ("history", gettext_lazy("History")),
    ("views", gettext_lazy("Views")),
    ("tier", gettext_lazy("Tier")),
    ("tags", gettext_lazy("Tags")),
    ("purchases", gettext_lazy("Purchases")),
)
NOT_YET = {"purchases"}
CONSENT_RECORDS_SHOWN = 20
# what the services put in pghistory's context as "action" (pgh_label when a change came without one)
ACTIONS: dict[str, Any] = {
    "register": gettext_lazy("Registered"),
    "insert": gettext_lazy("Created"),
    "update": gettext_lazy("Edited"),
    "frozen": gettext_lazy("Frozen"),
    "active": gettext_lazy("Unfrozen"),
    "cancel": gettext_lazy("Cancelled"),
    "plan_grant": gettext_lazy("Plan granted"),
    "portal": gettext_lazy("Edited by the member in the portal"),
    "portal_phone": gettext_lazy("Phone changed by the member in the portal"),
}
MEMBER_ACTIONS = {"portal", "portal_phone"}
# fields of the history that staff care about; pinyin and timestamps follow from them
HISTORY_FIELDS = (
    "phone",
    "name",
    "gender",
    "birthday",
    "email",
    "status",
    "member_type",
    "marketing_consent",
    "notes",
    "profile",
    "external_id",
    "registered_store",
    "referrer",
)


def _rule_tags_refresh(member_id: int) -> None:
    """Re-evaluate the member's rule tags in a worker (by task name; the broker is not retried)."""
    task_send("tags.tasks.rule_tags_refresh_task", member_id=member_id)


def _member_or_404(request: OfficeRequest, member_no: str) -> Member:
    """A cashier finds only their store's members; anybody else's member number is a 404 to them."""
    qs = selectors.member_list(viewer=request.staff).select_related("registered_store", "referrer")
    return get_object_or_404(qs, member_no=member_no)


def _partial_wanted(request: OfficeRequest) -> bool:
    return bool(request.htmx and not request.htmx.boosted and not request.htmx.history_restore_request)


def _shows_full_phone(request: OfficeRequest) -> bool:
    return request.role != Role.CASHIER


def _apply_member_error(form: Any, exc: services.MemberError) -> None:
    """Put a service's refusal on the field it names (or the whole form), marked invalid like a form error."""
    field = exc.field if exc.field in form.fields else None
    form.add_error(field, str(exc))
    if field and "is-invalid" not in form.fields[field].widget.attrs.get("class", ""):
        form.fields[field].widget.attrs["class"] = form.fields[field].widget.attrs.get("class", "") + " is-invalid"


@staff_role_required(*EDITORS)
def member_create_view(request: OfficeRequest) -> HttpResponse:
    form = MemberForm.for_registration(
        request.POST or None,
        store=request.office_store,
        stores=None if request.role == Role.CASHIER else selectors.store_list(viewer=request.staff),
    )
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        # a cashier registers for their own store, whatever was posted; others choose (default: the switcher's)
        store = request.office_store if request.role == Role.CASHIER else data.pop("store", None)
        data.pop("store", None)
        try:
            member = services.member_register(channel=Member.Channel.STORE, store=store, by=request.user, **data)  # type: ignore[arg-type]
        except services.MemberError as exc:
            _apply_member_error(form, exc)
        else:
            transaction.on_commit(lambda: _rule_tags_refresh(member.pk), robust=True)
            messages.success(request, _("Member %(no)s registered.") % {"no": member.member_no})
            return redirect("members:member-detail", member_no=member.member_no)
    return render(request, "members/member_form.html", {"form": form, "active_section": "members"})


@staff_role_required()
def member_detail_view(request: OfficeRequest, member_no: str) -> HttpResponse:
    member = _member_or_404(request, member_no)
    tab = request.GET.get("tab", "profile")
    if tab not in dict(TABS) or (tab == "views" and request.role == Role.CASHIER):
        tab = "profile"
    context = {"member": member, "tab": tab, **_tab_context(request, member, tab)}
    if _partial_wanted(request):  # a tab switch within a page already on record
        return render(request, "members/partials/member_tab.html", context)
    services.member_view_record(member=member, viewer=request.user)  # type: ignore[arg-type]
    context |= {
        "tabs": [(key, label) for key, label in TABS if key != "views" or request.role != Role.CASHIER],
        "phone": _phone_for(request, member),
        "plan_now": _current_period(member),
        "can_supervise": request.role in SUPERVISORS,
        "can_edit": request.role in EDITORS and member.status != Member.Status.CANCELLED,
        "reason_form": ReasonForm(),
        "cancel_form": CancelForm(),
        "active_section": "members",
    }
    return render(request, "members/member_detail.html", context)


def _phone_for(request: OfficeRequest, member: Member) -> str:
    if not member.phone:
        return ""
    return str(member.phone.as_international) if _shows_full_phone(request) else member.masked_phone


def _current_period(member: Member) -> PlanPeriod | None:
    now = timezone.now()
    return (
        member.plan_periods.select_related("plan")
        .filter(starts_at__lte=now, ends_at__gt=now)
        .order_by("-starts_at", "-pk")
        .first()
    )


def _tab_context(request: OfficeRequest, member: Member, tab: str) -> dict[str, Any]:
    if tab in NOT_YET:
        return {"not_yet": True}
    if tab in assets_views.MEMBER_TABS:
        return assets_views.member_tab_context(request, member, tab)
    if tab == "tier":
        return tiers_views.member_tab_context(request, member)
    if tab == "tags":
        return tags_views.member_tab_context(request, member)
    if tab == "profile":
        return {
            "phone": _phone_for(request, member),
            "profile_items": sorted(member.profile.items()),
            "consent_records": member.consent_records.select_related("recorded_by").order_by("-recorded_at", "-pk")[
                :CONSENT_RECORDS_SHOWN
            ],
        }
    if tab == "card":
        return {"qr_svg": cards.qr_svg(member.member_no), "barcode_svg": cards.code128_svg(member.member_no)}
    if tab == "plans":
        periods = member.plan_periods.select_related("plan", "created_by").order_by("-starts_at", "-pk")
        grant = request.role in SUPERVISORS and member.status != Member.Status.CANCELLED
        return {"periods": periods, "now": timezone.now(), "grant_form": PlanGrantForm() if grant else None}
    if tab == "history":
        return {"history": _history_page(request, member)}
    views = MemberView.objects.filter(member=member).select_related("viewer").order_by("-viewed_at", "-pk")
    return {"views_page": Paginator(views, VIEWS_PAGE_SIZE).get_page(request.GET.get("page"))}


@dataclass
class Change:
    field: str
    label: str
    before: str
    after: str


@dataclass
class HistoryEntry:
    at: datetime
    label: str
    action: str
    reason: str
    user: str
    changes: list[Change]


def _history_page(request: OfficeRequest, member: Member) -> Any:
    """pghistory's events of this member, newest first, each compared with the one before it."""
    events = member.events.select_related("pgh_context", "registered_store", "referrer").order_by("-pgh_id")  # type: ignore[attr-defined]
    page = Paginator(events, HISTORY_PAGE_SIZE).get_page(request.GET.get("page"))
    rows = list(page.object_list)
    older = events.filter(pgh_id__lt=rows[-1].pgh_id).first() if rows else None
    metas = [(e.pgh_context.metadata if e.pgh_context else {}) for e in rows]
    user_ids = {m.get("user") for m in metas if isinstance(m.get("user"), int)}
    usernames = dict(User.objects.filter(pk__in=user_ids).values_list("pk", "username"))
    entries = []
    for event, previous, meta in zip(rows, [*rows[1:], older], metas, strict=True):
        entries.append(
            HistoryEntry(
                at=event.pgh_created_at,
                label=event.pgh_label,
                action=str(
                    ACTIONS.get(str(meta.get("action") or event.pgh_label), meta.get("action") or event.pgh_label)
                ),
                reason=str(meta.get("reason") or ""),
                user=usernames.get(meta.get("user"), "")
                or (_("the member") if meta.get("action") in MEMBER_ACTIONS else _("system")),
                changes=_changes(request, event, previous, erased=member.status == Member.Status.CANCELLED),
            )
        )
    page.object_list = entries
    return page


# what member_cancel erases; once cancelled, the history shows that they changed but not their old values
ERASED_FIELDS = {"phone", "name", "email", "birthday", "notes", "profile", "external_id", "gender"}


def _changes(request: OfficeRequest, event: Any, previous: Any, *, erased: bool = False) -> list[Change]:
    changes = []
    for name in HISTORY_FIELDS:
        after = _shown(request, event, name)
        before = _shown(request, previous, name) if previous is not None else ""
        if erased and name in ERASED_FIELDS:
            after = _("(erased)") if after not in ("", "—") else after
            before = _("(erased)") if before not in ("", "—") else before
        if previous is None and after in ("", "—"):
            continue  # a registration lists only the fields that were filled in
        if after != before:
            label = str(getattr(Member._meta.get_field(name), "verbose_name", name))
            changes.append(Change(field=name, label=label, before=before, after=after))
    return changes


def _shown(request: OfficeRequest, event: Any, name: str) -> str:
    value = getattr(event, f"{name}_id" if name in ("registered_store", "referrer") else name)
    if value in (None, "", {}):
        return "—"
    if name == "phone":
        if _shows_full_phone(request):
            return str(value.as_e164 if hasattr(value, "as_e164") else value)
        national = str(getattr(value, "national_number", value))
        return f"{national[:3]}****{national[-4:]}"
    if name in ("gender", "status", "member_type"):
        return str(getattr(event, f"get_{name}_display")())
    if name == "marketing_consent":
        return _("yes") if value else _("no")
    if name == "registered_store":
        return str(event.registered_store) if event.registered_store else "—"
    if name == "referrer":
        return str(event.referrer) if event.referrer else "—"
    return str(value)


@staff_role_required(*EDITORS)
def member_edit_view(request: OfficeRequest, member_no: str) -> HttpResponse:
    member = _member_or_404(request, member_no)
    detail_url = reverse("members:member-detail", args=[member.member_no])
    if member.status == Member.Status.CANCELLED:
        messages.error(request, _("A cancelled member cannot be changed."))
        return HttpResponseClientRedirect(detail_url) if request.htmx else redirect(detail_url)
    form = MemberForm.for_member(member, request.POST or None, phone_editable=_shows_full_phone(request))
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        version = data.pop("version") or None
        try:
            services.member_update(member=member, by=request.user, unchanged_since=version, **data)  # type: ignore[arg-type]
        except services.MemberError as exc:
            _apply_member_error(form, exc)
        else:
            transaction.on_commit(lambda: _rule_tags_refresh(member.pk), robust=True)
            messages.success(request, _("Member %(no)s saved.") % {"no": member.member_no})
            return HttpResponseClientRedirect(detail_url) if request.htmx else redirect(detail_url)
    context = {"form": form, "member": member, "active_section": "members"}
    if request.method == "POST" and _partial_wanted(request):
        return render(request, "members/partials/member_edit_form.html", context)  # errors inline, status 200
    return render(request, "members/member_form.html", context)


def _status_change(request: OfficeRequest, member_no: str, action: str) -> HttpResponse:
    member = _member_or_404(request, member_no)
    form = CancelForm(request.POST) if action == "cancel" else ReasonForm(request.POST)
    if not form.is_valid():
        messages.error(request, _errors_text(form))
        return redirect("members:member-detail", member_no=member.member_no)
    change = {"freeze": services.member_freeze, "unfreeze": services.member_unfreeze, "cancel": services.member_cancel}
    try:
        change[action](member=member, by=request.user, reason=form.cleaned_data["reason"])  # type: ignore[operator,arg-type]
    except services.MemberError as exc:
        messages.error(request, str(exc))
    else:
        done = {"freeze": _("Member frozen."), "unfreeze": _("Member unfrozen."), "cancel": _("Membership cancelled.")}
        messages.success(request, done[action])
    return redirect("members:member-detail", member_no=member.member_no)


@require_POST
@staff_role_required(*SUPERVISORS)
def member_freeze_view(request: OfficeRequest, member_no: str) -> HttpResponse:
    return _status_change(request, member_no, "freeze")


@require_POST
@staff_role_required(*SUPERVISORS)
def member_unfreeze_view(request: OfficeRequest, member_no: str) -> HttpResponse:
    return _status_change(request, member_no, "unfreeze")


@require_POST
@staff_role_required(*SUPERVISORS)
def member_cancel_view(request: OfficeRequest, member_no: str) -> HttpResponse:
    return _status_change(request, member_no, "cancel")


@require_POST
@staff_role_required(*SUPERVISORS)
def member_grant_plan_view(request: OfficeRequest, member_no: str) -> HttpResponse:
    member = _member_or_404(request, member_no)
    form = PlanGrantForm(request.POST)
    if form.is_valid():
        try:
            with transaction.atomic():
                services.plan_grant(
                    member=member,
                    plan=form.cleaned_data["plan"],
                    by=request.user,  # type: ignore[arg-type]
                    source=PlanPeriod.Source.MANUAL,
                    reason=form.cleaned_data["reason"],
                )
                # the plan's tier applies at once, with its gift pack
                tiers_services.tier_plan_started(member=member, staff=request.staff)
        except services.MemberError as exc:
            _apply_member_error(form, exc)
        else:
            messages.success(request, _("Plan %(plan)s granted.") % {"plan": form.cleaned_data["plan"]})
            url = reverse("members:member-detail", args=[member.member_no]) + "?tab=plans"
            return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
    context = {"member": member, "tab": "plans", "active_section": "members", **_tab_context(request, member, "plans")}
    context["grant_form"] = form
    if _partial_wanted(request):
        return render(request, "members/partials/member_plan_grant.html", context)
    messages.error(request, _("The plan was not granted: %(errors)s") % {"errors": _errors_text(form)})
    return redirect(reverse("members:member-detail", args=[member.member_no]) + "?tab=plans")


def _errors_text(form: Any) -> str:
    return " ".join(str(e) for errors in form.errors.values() for e in errors)
