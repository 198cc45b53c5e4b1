"""Settings → Terminals: the POS terminals of every store and their API keys (owners and managers).

A key appears in exactly one response, the one that made it, and nowhere else: not in a URL, a message,
the session or a log. That response is rendered, not redirected to, and is never cached."""

from typing import cast

from django import forms
from django.contrib import messages
from django.contrib.auth.models import User
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from members import terminals
from members.forms import OfficeFormMixin
from members.models import Store, Terminal
from members.permissions import OfficeRequest, staff_role_required
from members.roles import Role
from members.services import MemberError

TERMINAL_ROLES = (Role.OWNER, Role.MANAGER)


class TerminalForm(OfficeFormMixin, forms.Form):
    store = forms.ModelChoiceField(
        label=gettext_lazy("Store"), queryset=Store.objects.filter(is_active=True).order_by("code", "pk")
    )
    name = forms.CharField(
        label=gettext_lazy("Name"),
        max_length=terminals.NAME_MAX,
        help_text=gettext_lazy("Unique in the store, e.g. Till 1."),
    )


def _key_page(request: OfficeRequest, terminal: Terminal, key: str, *, rotated: bool) -> HttpResponse:
    context = {"terminal": terminal, "key": key, "rotated": rotated, "active_section": "settings"}
    return render(request, "members/terminal_form.html", context)


@staff_role_required(*TERMINAL_ROLES)
def terminal_list_view(request: OfficeRequest) -> HttpResponse:
    return render(
        request, "members/terminal_list.html", {"terminals": terminals.terminal_list(), "active_section": "settings"}
    )


@never_cache
@staff_role_required(*TERMINAL_ROLES)
def terminal_create_view(request: OfficeRequest) -> HttpResponse:
    form = TerminalForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            terminal, key = terminals.terminal_create(
                store=form.cleaned_data["store"], name=form.cleaned_data["name"], by=cast(User, request.user)
            )
        except MemberError as exc:
            field = exc.field if exc.field in form.fields else None
            form.add_error(field, str(exc))
            if field:  # marked like the form's own errors (those are marked in full_clean, before this one)
                form.fields[field].widget.attrs["class"] += " is-invalid"
        else:
            return _key_page(request, terminal, key, rotated=False)
    return render(request, "members/terminal_form.html", {"form": form, "active_section": "settings"})


@never_cache
@staff_role_required(*TERMINAL_ROLES)
def terminal_rotate_view(request: OfficeRequest, pk: int) -> HttpResponse:
    """GET asks for confirmation; POST makes the new key and shows it."""
    terminal = get_object_or_404(terminals.terminal_list(), pk=pk)
    if request.method == "POST":
        key = terminals.terminal_rotate(terminal=terminal, by=cast(User, request.user))
        terminal.refresh_from_db()
        return _key_page(request, terminal, key, rotated=True)
    return render(
        request,
        "members/terminal_form.html",
        {"terminal": terminal, "confirm_rotate": True, "active_section": "settings"},
    )


@require_POST
@staff_role_required(*TERMINAL_ROLES)
def terminal_deactivate_view(request: OfficeRequest, pk: int) -> HttpResponse:
    terminal = terminals.terminal_deactivate(terminal=get_object_or_404(Terminal, pk=pk), by=cast(User, request.user))
    messages.success(request, _("Terminal %(name)s deactivated: its key is refused.") % {"name": terminal.name})
    return redirect("members:terminal-list")


@require_POST
@staff_role_required(*TERMINAL_ROLES)
def terminal_activate_view(request: OfficeRequest, pk: int) -> HttpResponse:
    terminal = terminals.terminal_activate(terminal=get_object_or_404(Terminal, pk=pk), by=cast(User, request.user))
    messages.success(request, _("Terminal %(name)s activated: its key works again.") % {"name": terminal.name})
    return redirect("members:terminal-list")
