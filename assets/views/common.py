"""What the back-office views of the ledgers share: who may do what, finding the member, answering htmx."""

from typing import Any

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django_htmx.http import HttpResponseClientRedirect

from members import selectors as members_selectors
from members.models import Member
from members.permissions import OfficeRequest
from members.roles import Role

SUPERVISORS = (Role.OWNER, Role.MANAGER)
READERS = (Role.OWNER, Role.MANAGER, Role.AUDITOR)


def partial_wanted(request: OfficeRequest) -> bool:
    return bool(request.htmx and not request.htmx.boosted and not request.htmx.history_restore_request)


def member_or_404(request: OfficeRequest, member_no: str) -> Member:
    """A cashier finds only their store's members; anybody else's member number is a 404 to them."""
    qs = members_selectors.member_list(viewer=request.staff).select_related("registered_store")
    return get_object_or_404(qs, member_no=member_no)


def member_tab_url(member: Member, tab: str) -> str:
    return reverse("members:member-detail", args=[member.member_no]) + f"?tab={tab}"


def done(request: OfficeRequest, url: str, message: str) -> HttpResponse:
    """After a write: say so, and go to `url` (the whole page, so every figure on it is fresh)."""
    messages.success(request, message)
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


def render_member_action(request: OfficeRequest, partial: str, context: dict[str, Any]) -> HttpResponse:
    """A member action's form: the fragment for htmx, else a page of its own around the same fragment."""
    if partial_wanted(request):
        return render(request, partial, context)
    return render(request, "assets/member_action.html", {**context, "partial": partial, "active_section": "members"})
