"""The tiers section: the ladder and its distribution, a tier's page, the qualification rules (each change shown
with the members it would move before it is saved), and the member page's tier tab with a manager's floor."""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, cast

from django.contrib import messages
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from assets.views.common import READERS, SUPERVISORS, done, member_or_404, member_tab_url, render_member_action
from benefits import selectors as benefits_selectors
from members.forms import yuan_text
from members.models import Member, Staff
from members.permissions import OfficeRequest, staff_role_required
from tiers import catalogue, selectors, services
from tiers.forms import ICONS, PreviewedForm, TierFloorForm, TierForm, TierRulesForm, versioned
from tiers.models import MemberTier, Tier, TierChange, TierGift, TierRules, TierSimulation

# ------------------------------------------------------------------ the ladder


@staff_role_required(*READERS)
def ladder_view(request: OfficeRequest) -> HttpResponse:
    tiers = list(selectors.ladder_detailed())
    counts = {tier.pk: n for tier, n in selectors.tier_distribution()}
    for tier in tiers:
        tier.members = counts.get(tier.pk, 0)  # type: ignore[attr-defined]
    chart = {
        "names": [t.name for t in tiers],
        "counts": [counts.get(t.pk, 0) for t in tiers],
        "colours": [t.colour for t in tiers],
        "label": _("Members"),
    }
    context = {
        "tiers": tiers,
        "total": sum(counts.values()),
        "chart": chart,
        "rules": services.tier_rules(),
        "can_edit": request.role in SUPERVISORS,
        "section_tab": "ladder",
        "active_section": "tiers",
    }
    return render(request, "tiers/ladder.html", context)


# ------------------------------------------------------------------ the preview of a change


@dataclass
class Move:
    source: Tier
    target: Tier
    count: int  # with the change
    anyway: int  # with the saved ladder and rules: these members would move without the change too


@dataclass
class Preview:
    changes: list[tuple[str, str, str]]  # (what, before, after)
    simulation: TierSimulation | None = None  # who would move: run by a worker, the page polls it
    stale: bool = False

    @property
    def moves(self) -> list[Move]:
        done = self.simulation is not None and self.simulation.status == TierSimulation.Status.DONE
        return _moves(self.simulation) if done else []  # type: ignore[arg-type]


def simulation_day(rules: TierRules) -> tuple[date, date | None]:
    """The business day to simulate: today's data as tonight's recalculation would place members or, in rolling
    mode, the eve of the next evaluation (downgrades happen only then), on the growth value earned so far."""
    today = timezone.localdate()
    if rules.mode != TierRules.Mode.ROLLING:
        return today, None
    day = selectors.next_evaluation(rules, today)  # the first evaluation still to come
    return day - timedelta(days=1), day


def _simulate(
    request: OfficeRequest,
    preview: Preview,
    tiers: list[Tier],
    rules: TierRules,
    plan_ids: dict[int | None, list[int]],
) -> None:
    """Queue the draft's dry run over every member (nothing is written); the preview shows it when done."""
    as_of, evaluation_day = simulation_day(rules)
    preview.simulation = services.tier_simulation_start(
        ladder=selectors.draft_ladder(tiers, rules, plan_ids),
        tiers=selectors.draft_ids(tiers),
        as_of=as_of,
        evaluation_day=evaluation_day,
        by=cast(User, request.user),
    )


def _moves(simulation: TierSimulation) -> list[Move]:
    """A finished simulation's moves, between the saved tiers and the draft's (as the draft names them; a new
    tier has no row yet)."""
    named: dict[int, Tier] = {t.pk: t for t in Tier.objects.all()}
    for pk, fields in simulation.tiers.items():
        named[int(pk)] = Tier(pk=int(pk) if int(pk) > 0 else None, **fields)
    base = min(named.values(), key=lambda t: t.rank)
    moves = [
        Move(source=named.get(src, base) if src is not None else base, target=named[dst], count=n, anyway=m)
        for src, dst, n, m in simulation.moves
    ]
    return sorted(moves, key=lambda m: (m.source.rank, m.target.rank))


@staff_role_required(*SUPERVISORS)
def simulation_view(request: OfficeRequest, pk: int) -> HttpResponse:
    """The preview's simulation, polled by the page until the worker has finished it."""
    simulation = get_object_or_404(TierSimulation, pk=pk)
    moves = _moves(simulation) if simulation.status == TierSimulation.Status.DONE else []
    context = {"simulation": simulation, "moves": moves, "waited": timezone.now() - simulation.created_at}
    return render(request, "tiers/partials/simulation.html", context)


def _saved_ladder() -> tuple[list[Tier], dict[int | None, list[int]]]:
    tiers = list(Tier.objects.order_by("rank").prefetch_related("plans"))
    return tiers, {t.pk: [p.pk for p in t.plans.all()] for t in tiers}


def _shown(value: Any, *, fen: bool = False) -> str:
    if value is None or value == "" or value == []:
        return "—"
    if fen:
        return f"¥{yuan_text(int(value))}"
    if isinstance(value, list | tuple) or hasattr(value, "model"):
        return ", ".join(str(v) for v in value) or "—"
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


FEN_FIELDS = ("top_up_single", "top_up_total", "gift_bonus")


def _labelled(choices: dict[Any, Any], value: Any, *, fen: bool) -> str:
    return str(choices[value]) if isinstance(value, str) and value in choices else _shown(value, fen=fen)


def _changes(form: PreviewedForm, before: Mapping[str, Any], *, new: bool) -> list[tuple[str, str, str]]:
    """The fields that change, as staff read them (choice labels, yuan, names)."""
    rows = []
    for name in form.visible_names():
        bound = form.fields[name]
        # choice labels (the rules' and the icon's), keyed by the text values they name
        choices = dict(getattr(bound, "choices", None) or []) if name in ("icon", *TierRulesForm.FIELDS) else {}
        after, earlier = form.cleaned_data.get(name), before.get(name)
        if name == "plans" or name == "gift_coupons":
            after, earlier = sorted(after or [], key=str), sorted(earlier or [], key=str)
        if (not new and after == earlier) or (new and after in (None, "", [], 0)):
            continue
        fen = name in FEN_FIELDS
        shown_after = _labelled(choices, after, fen=fen)
        shown_before = "" if new else _labelled(choices, earlier, fen=fen)
        rows.append((str(bound.label), shown_before, shown_after))
    return rows


def _tier_preview(request: OfficeRequest, form: TierForm, tier: Tier | None) -> Preview:
    before = TierForm.initial_for(tier) if tier is not None else {}
    preview = Preview(changes=_changes(form, before, new=tier is None))
    if form.places_differently():
        draft, plans = form.draft()
        tiers, plan_ids = _saved_ladder()
        tiers = [t for t in tiers if t.pk != draft.pk or draft.pk is None] + [draft]
        plan_ids[draft.pk] = [p.pk for p in plans]
        _simulate(request, preview, tiers, services.tier_rules(), plan_ids)
    return preview


# ------------------------------------------------------------------ a tier


@staff_role_required(*SUPERVISORS)
def tier_edit_view(request: OfficeRequest, pk: int | None = None) -> HttpResponse:
    """Edit, preview (who would move), save. A confirmation made on another version of the ladder (someone
    saved in between) is previewed again instead of saved."""
    tier = get_object_or_404(Tier.objects.prefetch_related("plans", "gift_coupons"), pk=pk) if pk else None
    form = TierForm(request.POST or None, tier=tier)
    preview = None
    if request.method == "POST" and form.is_valid():
        confirmed = form.is_confirmed(request.POST)
        stale = False
        if confirmed:
            saved = tier or Tier()
            plans, coupons = form.apply(saved)
            try:
                catalogue.tier_save(
                    tier=saved,
                    plans=plans,
                    gift_coupons=coupons,
                    by=cast(User, request.user),
                    based_on=form.cleaned_data["based_on"],
                )
            except catalogue.TierStale:
                stale = True
                if tier is not None:  # the form applied itself to it: read the saved one again
                    tier = get_object_or_404(Tier.objects.prefetch_related("plans", "gift_coupons"), pk=tier.pk)
            except catalogue.TierRefused as exc:
                form.add_error(exc.field, str(exc))
            else:
                messages.success(request, _("Tier %(name)s saved.") % {"name": saved.name})
                return redirect("tiers:index")
        if stale or (not confirmed and "edit" not in request.POST):
            version = selectors.ladder_version()
            form = TierForm(versioned(request.POST, version), tier=tier)
            form.is_valid()
            preview = _tier_preview(request, form, tier)
            preview.stale = stale
    context = {
        "form": form,
        "tier": tier,
        "new": tier is None,
        "preview": preview,
        "members_now": Member.objects.exclude(status=Member.Status.CANCELLED).count(),
        "icons": ICONS,
        "section_tab": "ladder",
        "active_section": "tiers",
    }
    return render(request, "tiers/tier_form.html", context)


@staff_role_required(*SUPERVISORS)
def tier_delete_view(request: OfficeRequest, pk: int) -> HttpResponse:
    """GET: why the tier cannot go, or who would move without it; POST: delete it."""
    tier = get_object_or_404(Tier, pk=pk)
    if request.method == "POST":
        try:
            catalogue.tier_delete(tier=tier, by=cast(User, request.user))
        except catalogue.TierRefused as exc:
            messages.error(request, str(exc))
            return redirect("tiers:tier-delete", pk=pk)
        messages.success(request, _("Tier %(name)s deleted.") % {"name": tier.name})
        return redirect("tiers:index")
    refusal = catalogue.tier_delete_refusal(tier)
    preview = None
    if refusal is None:
        preview = Preview(changes=[])
        tiers, plan_ids = _saved_ladder()
        _simulate(request, preview, [t for t in tiers if t.pk != tier.pk], services.tier_rules(), plan_ids)
    context = {"tier": tier, "refusal": refusal, "preview": preview, "active_section": "tiers"}
    return render(request, "tiers/tier_delete.html", context)


# ------------------------------------------------------------------ the rules


@staff_role_required(*READERS)
def rules_view(request: OfficeRequest) -> HttpResponse:
    can_edit = request.role in SUPERVISORS
    if request.method == "POST" and not can_edit:
        raise PermissionDenied
    rules = services.tier_rules()
    form = TierRulesForm(request.POST or None, rules=rules)
    preview = None
    if request.method == "POST" and form.is_valid():
        confirmed, stale = form.is_confirmed(request.POST), False
        if confirmed:
            try:
                catalogue.tier_rules_save(
                    rules=form.apply(rules), by=cast(User, request.user), based_on=form.cleaned_data["based_on"]
                )
            except catalogue.TierStale:
                stale = True
                rules = services.tier_rules()  # the form applied itself to the object it was given
            else:
                messages.success(request, _("Tier rules saved."))
                return redirect("tiers:rules")
        if stale or "edit" not in request.POST:
            version = selectors.ladder_version()
            form = TierRulesForm(versioned(request.POST, version), rules=rules)
            form.is_valid()
            preview = Preview(changes=_changes(form, form.initial, new=False), stale=stale)
            if form.places_differently():
                tiers, plan_ids = _saved_ladder()
                _simulate(request, preview, tiers, form.draft(), plan_ids)
    if not can_edit:
        for bound in form.fields.values():
            bound.disabled = True
    context = {
        "form": form,
        "rules": rules,
        "preview": preview,
        "can_edit": can_edit,
        "members_now": Member.objects.exclude(status=Member.Status.CANCELLED).count(),
        "section_tab": "rules",
        "active_section": "tiers",
    }
    return render(request, "tiers/rules.html", context)


# ------------------------------------------------------------------ the member page's tier tab


def member_tab_context(request: OfficeRequest, member: Member) -> dict[str, Any]:
    """The tier tab: where the member stands, what it takes to move up (and, in rolling mode, to stay), the
    floor a manager set, and the history. Owners and managers set or remove the floor; others read."""
    rules = services.tier_rules()
    progress = selectors.tier_progress(member=member)
    state = MemberTier.objects.select_related("floor").filter(member=member).first()
    percent = 100
    if progress.next_tier is not None and progress.next_tier.threshold:
        percent = min(100, 100 * progress.growth // progress.next_tier.threshold)
    held_until = None  # the end of the minimum hold: the tier cannot drop at an evaluation before it
    if state is not None and rules.hold_months and rules.downgrade != TierRules.Downgrade.NONE:
        # the last moment it is held (a tier placed by the nightly job counts from the end of its day)
        held_until = services.add_months(state.reached_at, rules.hold_months) - timedelta(microseconds=1)
    keeps_by_hold = False
    if held_until is not None and progress.keep_by is not None:
        keeps_by_hold = held_until > services.local_midnight_after(progress.keep_by - timedelta(days=1))
    floor = state.floor if state is not None else None
    can_floor = request.role in SUPERVISORS and member.status != Member.Status.CANCELLED
    return {
        "progress": progress,
        "percent": percent,
        "rules": rules,
        "rolling": rules.mode == TierRules.Mode.ROLLING,
        "state": state,
        "source_label": dict(TierChange.Reason.choices).get(state.source, state.source) if state else "",
        "floor": floor,
        "floor_holds": floor is not None and floor.rank >= progress.tier.rank,
        "held_until": held_until,
        "keeps_by_hold": keeps_by_hold,
        "downgrades": rules.downgrade != TierRules.Downgrade.NONE,
        "applicable": benefits_selectors.benefits_applicable(member=member, at=timezone.now()),
        "history": selectors.member_tier_history(member=member),
        "base": services.base_tier(),  # where a member without a tier row stands
        "floor_form": TierFloorForm(current_floor=floor, initial={"tier": floor}) if can_floor else None,
    }


def _floor_summary(member: Member, chosen: Tier | None, floor: Tier | None) -> tuple[str, str]:
    """What confirming the floor does, in a sentence, and a note on the gift pack."""
    current = selectors.member_tier(member=member)
    who = member.name or member.member_no
    if chosen is None:
        text = _("Remove the floor %(floor)s from %(who)s. They stay on %(tier)s until the next recalculation.")
        return text % {"floor": floor.name if floor else "", "who": who, "tier": current.name}, ""
    if chosen.rank <= current.rank:
        text = _("Set %(floor)s as the floor of %(who)s. They stay on %(tier)s and never drop below %(floor)s.")
        return text % {"floor": chosen.name, "who": who, "tier": current.name}, ""
    text = _("Set %(floor)s as the floor of %(who)s. They move from %(tier)s to %(floor)s now.")
    note = ""
    if chosen.has_gift and not TierGift.objects.filter(member=member, tier=chosen).exists():
        note = _("They receive the upgrade gift pack of %(floor)s (once per member and tier).") % {"floor": chosen.name}
    return text % {"floor": chosen.name, "who": who, "tier": current.name}, note


@require_POST
@staff_role_required(*SUPERVISORS)
def member_floor_view(request: OfficeRequest, member_no: str) -> HttpResponse:
    member = member_or_404(request, member_no)
    if member.status == Member.Status.CANCELLED:
        raise PermissionDenied
    state = MemberTier.objects.select_related("floor").filter(member=member).first()
    floor = state.floor if state is not None else None
    form = TierFloorForm(request.POST, current_floor=floor)
    context: dict[str, Any] = {"member": member, "form": form, "confirming": False, "floor": floor}
    if form.is_valid():
        chosen, reason = form.cleaned_data["tier"], form.cleaned_data["reason"]
        if form.is_confirmed(request.POST):
            services.tier_set_manual(
                member=member, tier=chosen, reason=reason, staff=cast(Staff, request.staff), by=cast(User, request.user)
            )
            message = _("Floor %(tier)s set.") % {"tier": chosen.name} if chosen else _("Floor removed.")
            return done(request, member_tab_url(member, "tier"), message)
        if "edit" not in request.POST:
            context["confirming"] = True
            context["summary"], context["gift_note"] = _floor_summary(member, chosen, floor)
    return render_member_action(request, "tiers/partials/floor_form.html", context)
