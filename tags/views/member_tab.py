"""The member page's Tags tab: manual tags (given and taken away by owners and managers, with htmx), rule tags
with why each applies, preference tags and the member's recent tag history. The lifecycle and RFM part above
them is its own partial."""

from dataclasses import dataclass
from datetime import date
from typing import Any, cast

from django.contrib import messages
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods
from django_htmx.http import trigger_client_event

from members import selectors as members_selectors
from members.models import Member
from members.permissions import OfficeRequest, staff_role_required
from tags import rules, services
from tags.forms import MemberTagAddForm
from tags.models import MemberTag, MemberTagEvent, Tag
from tags.views.common import EDITORS, partial_wanted

HISTORY_SHOWN = 20


@dataclass
class RuleTagShown:
    held: MemberTag
    lines: list[rules.ExplainLine]


def member_tab_context(
    request: OfficeRequest, member: Member, *, add_form: MemberTagAddForm | None = None
) -> dict[str, Any]:
    """What the Tags tab shows of `member`; owners and managers may give and take manual tags."""
    held = list(
        MemberTag.objects.filter(member=member)
        .select_related("tag", "tag__group", "added_by")
        .order_by("tag__group__position", "tag__group_id", "tag__name", "tag__code", "pk")
    )
    today = timezone.localdate()
    manual = [mt for mt in held if mt.tag.kind == Tag.Kind.MANUAL]
    held_rules = [mt for mt in held if mt.tag.kind == Tag.Kind.RULE and mt.tag.is_active]
    names = rules.Names.load() if held_rules else None  # the stores and tiers the rules name, read once
    rule_tags = [RuleTagShown(held=mt, lines=_explained(mt.tag, member, today, names)) for mt in held_rules]
    preference = [mt for mt in held if mt.tag.code.startswith(services.PREFERENCE_PREFIX)]
    can_edit = request.role in EDITORS and member.status != Member.Status.CANCELLED
    if can_edit and add_form is None:
        add_form = MemberTagAddForm(held=[mt.tag_id for mt in manual])
    history = (
        MemberTagEvent.objects.filter(member=member)
        .select_related("tag", "tag__group", "by")
        .order_by("-at", "-pk")[:HISTORY_SHOWN]
    )
    return {
        "manual_tags": manual,
        "rule_tags": rule_tags,
        "preference_tags": preference,
        "tag_history": list(history),
        "tags_as_of": today,
        "can_tag": can_edit,
        "tag_add_form": add_form if can_edit else None,
    }


def _explained(tag: Tag, member: Member, day: date, names: rules.Names | None) -> list[rules.ExplainLine]:
    try:
        return rules.rule_explain(tag, member, day, names)
    except rules.RuleError:  # a stored rule that no longer checks: the tag's page says so
        return []


def _member_or_404(request: OfficeRequest, member_no: str) -> Member:
    """A cashier finds only their store's members; anybody else's member number is a 404 to them."""
    qs = members_selectors.member_list(viewer=request.staff).select_related("registered_store")
    return get_object_or_404(qs, member_no=member_no)


@require_http_methods(["GET", "POST"])
@staff_role_required()
def member_tags_view(request: OfficeRequest, member_no: str) -> HttpResponse:
    """GET: the tab's content (htmx refreshes it). POST: give ("add") or take away ("remove") a manual tag, for
    owners and managers; answers with the tab again, the form's errors in it, and a toast."""
    member = _member_or_404(request, member_no)
    tab_url = reverse("members:member-detail", args=[member.member_no]) + "?tab=tags"
    add_form, said = None, ("", "")
    if request.method == "POST":
        if request.role not in EDITORS:
            raise PermissionDenied
        if request.POST.get("action") == "remove":
            said = _remove(request, member)
        else:
            add_form, said = _add(request, member)
    if not partial_wanted(request):
        if said[0]:
            messages.add_message(request, messages.SUCCESS if said[1] == "success" else messages.ERROR, said[0])
        return redirect(tab_url)
    context = {"member": member, **member_tab_context(request, member, add_form=add_form)}
    response = render(request, "tags/partials/member_tags.html", context)
    if said[0]:
        trigger_client_event(response, "toast", {"message": said[0], "level": said[1]})
    return response


def _add(request: OfficeRequest, member: Member) -> tuple[MemberTagAddForm | None, tuple[str, str]]:
    held = list(MemberTag.objects.filter(member=member, tag__kind=Tag.Kind.MANUAL).values_list("tag_id", flat=True))
    form = MemberTagAddForm(request.POST, held=held)
    if not form.is_valid():
        return form, ("", "")
    tag = form.cleaned_data["tag"]
    try:
        services.member_tag_add(member=member, tag=tag, by=cast(User, request.user), reason=form.cleaned_data["reason"])
    except services.TagError as exc:
        form.add_error(None, str(exc))
        return form, ("", "")
    return None, (_("Tag %(tag)s given.") % {"tag": tag.label}, "success")


def _remove(request: OfficeRequest, member: Member) -> tuple[str, str]:
    tag_id = request.POST.get("tag", "")
    tag = get_object_or_404(Tag, pk=int(tag_id)) if tag_id.isdigit() and len(tag_id) < 19 else None
    if tag is None:
        return "", ""
    try:
        services.member_tag_remove(member=member, tag=tag, by=cast(User, request.user))
    except services.TagError as exc:
        return str(exc), "danger"
    return _("Tag %(tag)s taken away.") % {"tag": tag.label}, "success"
