"""The tags section: every group with its tags, a tag's page (its members, keyset-paged, and its history), and
creating or editing a tag with the rule builder, whose rows htmx adds, changes and counts."""

from dataclasses import dataclass
from datetime import datetime
from typing import cast

from django.contrib import messages
from django.contrib.auth.models import User
from django.db.models import Q
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_POST

from config.db import TooSlow
from members.models import Member
from members.permissions import OfficeRequest, staff_role_required
from tags import rules, selectors, services
from tags.forms import BuilderChoices, ConditionRow, GroupRow, RuleBuilder, SystemTagForm, TagForm, new_key
from tags.models import MemberTag, MemberTagEvent, Tag
from tags.views.common import EDITORS, HISTORY_SIZE, PAGE_SIZE, READERS, partial_wanted

RULE_COUNT_MS = 2_000  # the builder's "count now": longer counts are left to the evaluation after saving

# ------------------------------------------------------------------ the list


@require_GET
@staff_role_required(*READERS)
def tag_list_view(request: OfficeRequest) -> HttpResponse:
    names = rules.Names.load()
    groups = selectors.tags_by_group()
    for _group, tags in groups:
        for tag in tags:
            tag.rule_words = rules.rule_text(tag.rule, names) if tag.kind == Tag.Kind.RULE else ""  # type: ignore[attr-defined]
    context = {
        "groups": groups,
        "can_edit": request.role in EDITORS,
        "last_run": selectors.last_run_date("tags_rules"),
        "section_tab": "tags",
        "active_section": "tags",
    }
    return render(request, "tags/tag_list.html", context)


# ------------------------------------------------------------------ a tag's page


@dataclass
class MemberRow:
    member: Member
    added_at: datetime | None = None
    source: str = ""
    added_by: str = ""


def _member_rows(tag: Tag, after: int) -> tuple[list[MemberRow], int | None]:
    """A page of the tag's members in id order, after the member id `after`; the cursor of the next page.
    Lifecycle and RFM tags read their own tables; the others walk MemberTag's (tag, member) index."""
    kind = tag.code.partition(":")[0]
    if tag.kind == Tag.Kind.SYSTEM and kind in ("lifecycle", "rfm"):
        found = list(
            selectors.tag_members(tag)
            .filter(pk__gt=after)
            .select_related("registered_store")
            .order_by("pk")[: PAGE_SIZE + 1]
        )
        rows = [MemberRow(member=m) for m in found]
    else:
        held = list(
            MemberTag.objects.filter(tag=tag, member_id__gt=after)
            .select_related("member", "member__registered_store", "added_by")
            .order_by("member_id")[: PAGE_SIZE + 1]
        )
        rows = [
            MemberRow(
                member=mt.member,
                added_at=mt.added_at,
                source=mt.get_source_display(),
                added_by=mt.added_by.get_username() if mt.added_by else "",
            )
            for mt in held
        ]
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    return rows, (rows[-1].member.pk if more and rows else None)


def _history(tag: Tag, before: int) -> tuple[list[MemberTagEvent], int | None]:
    """The tag's events, newest first, older than the event `before` (keyset on the (tag, -at) index)."""
    events = MemberTagEvent.objects.filter(tag=tag).select_related("member", "by")
    if before:
        anchor = MemberTagEvent.objects.filter(tag=tag, pk=before).values_list("at", flat=True).first()
        if anchor is not None:
            events = events.filter(Q(at__lt=anchor) | Q(at=anchor, pk__lt=before))
    rows = list(events.order_by("-at", "-pk")[: HISTORY_SIZE + 1])
    more = len(rows) > HISTORY_SIZE
    rows = rows[:HISTORY_SIZE]
    return rows, (rows[-1].pk if more and rows else None)


def _cursor(value: str | None) -> int:
    return int(value) if value and value.isdigit() and len(value) < 19 else 0


@require_GET
@staff_role_required(*READERS)
def tag_detail_view(request: OfficeRequest, pk: int) -> HttpResponse:
    tag = get_object_or_404(Tag.objects.select_related("group", "created_by"), pk=pk)
    after, before = _cursor(request.GET.get("after")), _cursor(request.GET.get("before"))
    rows, next_after = _member_rows(tag, after)
    history, older = _history(tag, before)
    can_edit = request.role in EDITORS
    context = {
        "tag": tag,
        "rule_words": rules.rule_text(tag.rule) if tag.kind == Tag.Kind.RULE else "",
        "rows": rows,
        "after": after,
        "next_after": next_after,
        "history": history,
        "before": before,
        "older": older,
        "can_edit": can_edit,
        "can_change_members": can_edit and tag.kind == Tag.Kind.MANUAL,
        "can_deactivate": can_edit and (tag.kind != Tag.Kind.SYSTEM or tag.code.startswith(services.PREFERENCE_PREFIX)),
        "is_preference": tag.code.startswith(services.PREFERENCE_PREFIX),
        "last_run": selectors.last_run_date("tags_rules"),
        "section_tab": "tags",
        "active_section": "tags",
    }
    if partial_wanted(request) and request.GET.get("part") == "members":
        return render(request, "tags/partials/tag_members.html", context)
    if partial_wanted(request) and request.GET.get("part") == "history":
        return render(request, "tags/partials/tag_history.html", context)
    return render(request, "tags/tag_detail.html", context)


@require_POST
@staff_role_required(*EDITORS)
def tag_members_remove_view(request: OfficeRequest, pk: int) -> HttpResponse:
    """Take a manual tag away from the members ticked on its page."""
    tag = get_object_or_404(Tag, pk=pk)
    ids = [int(v) for v in request.POST.getlist("member") if v.isdigit() and len(v) < 19][: services.BATCH]
    if not ids:
        messages.error(request, _("Tick the members to take the tag from first."))
        return redirect("tags:tag-detail", pk=tag.pk)
    try:
        removed = services.members_tag_remove(tag=tag, member_ids=ids, by=cast(User, request.user))
    except services.TagError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            ngettext("The tag was taken from %(n)d member.", "The tag was taken from %(n)d members.", removed)
            % {"n": removed},
        )
    return redirect("tags:tag-detail", pk=tag.pk)


@require_POST
@staff_role_required(*EDITORS)
def tag_active_view(request: OfficeRequest, pk: int) -> HttpResponse:
    tag = get_object_or_404(Tag, pk=pk)
    active = request.POST.get("active") == "1"
    try:
        services.tag_set_active(tag=tag, active=active, by=cast(User, request.user))
    except services.TagError as exc:
        messages.error(request, str(exc))
    else:
        done = _("Tag %(tag)s reactivated.") if active else _("Tag %(tag)s deactivated.")
        messages.success(request, done % {"tag": tag.label})
    return redirect("tags:tag-detail", pk=tag.pk)


# ------------------------------------------------------------------ creating and editing


@staff_role_required(*EDITORS)
def tag_edit_view(request: OfficeRequest, pk: int | None = None) -> HttpResponse:
    tag = get_object_or_404(Tag.objects.select_related("group"), pk=pk) if pk else None
    if tag is not None and tag.kind == Tag.Kind.SYSTEM:
        return _system_tag_edit(request, tag)
    form = TagForm(request.POST or None, tag=tag)
    posted = request.method == "POST"
    builder = RuleBuilder.from_data(request.POST) if posted else RuleBuilder.from_rule(tag.rule if tag else None)
    if posted and form.is_valid():
        kind = tag.kind if tag is not None else form.cleaned_data["kind"]
        if kind != Tag.Kind.RULE or builder.is_valid():
            try:
                saved = services.tag_save(
                    tag=tag,
                    by=cast(User, request.user),
                    group=form.cleaned_data["group"],
                    name=form.cleaned_data["name"],
                    kind=kind,
                    colour=form.cleaned_data["colour"],
                    description=form.cleaned_data["description"],
                    rule=builder.cleaned if kind == Tag.Kind.RULE else None,
                )
            except services.TagError as exc:
                if exc.field == "rule":
                    builder.errors = [str(exc)]
                else:
                    form.add_error(exc.field if exc.field in form.fields else None, str(exc))
            else:
                message = _("Tag %(tag)s saved.") % {"tag": saved.label}
                if kind == Tag.Kind.RULE:
                    message += " " + _("Its members are being found now; the page shows them in a moment.")
                messages.success(request, message)
                return redirect("tags:tag-detail", pk=saved.pk)
    is_rule = (tag.kind if tag is not None else (form["kind"].value() or Tag.Kind.MANUAL)) == Tag.Kind.RULE
    context = {
        "form": form,
        "tag": tag,
        "builder": builder,
        "is_rule": is_rule,
        "pick": BuilderChoices.load(),
        "active_section": "tags",
    }
    return render(request, "tags/tag_form.html", context)


def _system_tag_edit(request: OfficeRequest, tag: Tag) -> HttpResponse:
    form = SystemTagForm(request.POST or None, tag=tag)
    if request.method == "POST" and form.is_valid():
        try:
            services.tag_save(
                tag=tag,
                by=cast(User, request.user),
                group=tag.group,
                name=tag.name,
                kind=tag.kind,
                colour=form.cleaned_data["colour"],
                description=form.cleaned_data["description"],
            )
        except services.TagError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, str(exc))
        else:
            messages.success(request, _("Tag %(tag)s saved.") % {"tag": tag.label})
            return redirect("tags:tag-detail", pk=tag.pk)
    return render(request, "tags/tag_form.html", {"form": form, "tag": tag, "system": True, "active_section": "tags"})


# ------------------------------------------------------------------ the rule builder's htmx parts


def _key(value: str | None, prefix: str) -> str:
    return value if value and value.isalnum() and value.startswith(prefix) and len(value) <= 20 else ""


@require_GET
@staff_role_required(*EDITORS)
def rule_condition_view(request: OfficeRequest) -> HttpResponse:
    """A condition row: a new one (no key), or one whose field was just changed (its other inputs start over)."""
    key = _key(request.GET.get("key"), "r") or new_key()
    parent = _key(request.GET.get("parent"), "g")
    field = request.GET.get(f"{key}-field") or request.GET.get("field") or ""
    row = ConditionRow(key=key, parent=parent, field=field if field in rules.FIELDS else "spend")
    return render(request, "tags/partials/rule_condition.html", {"row": row, "pick": BuilderChoices.load()})


@require_GET
@staff_role_required(*EDITORS)
def rule_group_view(request: OfficeRequest) -> HttpResponse:
    """A new group of conditions (any of them), with its first condition."""
    group = GroupRow(key="g" + new_key()[1:])
    group.conditions = [ConditionRow(key=new_key(), parent=group.key)]
    return render(request, "tags/partials/rule_group.html", {"group": group, "pick": BuilderChoices.load()})


@require_POST
@staff_role_required(*EDITORS)
def rule_count_view(request: OfficeRequest) -> HttpResponse:
    """How many members the rule in the builder holds for today (an evaluation over every member, on demand)."""
    builder = RuleBuilder.from_data(request.POST)
    count, too_slow = None, False
    if builder.is_valid() and builder.cleaned is not None:
        try:
            count = rules.rule_member_count(builder.cleaned, as_of=timezone.localdate(), limit_ms=RULE_COUNT_MS)
        except TooSlow:
            too_slow = True
    words = rules.rule_text(builder.cleaned) if builder.cleaned else ""
    context = {"builder": builder, "count": count, "too_slow": too_slow, "words": words}
    return render(request, "tags/partials/rule_count.html", context)
