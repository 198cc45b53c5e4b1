from typing import Any

from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from members import selectors, services
from members.forms import StaffCreateForm, StaffEditForm, StaffLoginForm, StoreForm
from members.middleware import SESSION_STORE_KEY
from members.models import Store
from members.permissions import OfficeRequest, staff_role_required
from members.roles import Role


class LoginView(auth_views.LoginView):
    template_name = "members/login.html"
    authentication_form = StaffLoginForm
    redirect_authenticated_user = True


def lockout_response(request: HttpRequest, original_response: Any = None, credentials: Any = None) -> HttpResponse:
    """django-axes calls this when a username is locked out from this address."""
    # unbound: validating the posted form would try the password again and count one more failure
    form = StaffLoginForm(request, initial={"username": request.POST.get("username", "")[:150]})
    return render(request, "members/login.html", {"form": form, "locked_out": True}, status=429)


@require_POST
@staff_role_required()
def store_switch(request: OfficeRequest) -> HttpResponse:
    """Choose which store the back office shows (owners, managers and auditors; cashiers have one)."""
    store_id = request.POST.get("store", "")
    if store_id and request.role != Role.CASHIER:
        if not (store_id.isascii() and store_id.isdigit()):
            raise Http404  # a tampered form, not a server error
        store = get_object_or_404(selectors.store_list(viewer=request.staff), pk=store_id)
        request.session[SESSION_STORE_KEY] = store.pk
    else:
        request.session.pop(SESSION_STORE_KEY, None)
    next_url = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(next_url, {request.get_host()}, require_https=request.is_secure()):
        next_url = "/"
    return redirect(next_url)


@staff_role_required(Role.OWNER, Role.MANAGER, Role.AUDITOR)
def store_list_view(request: OfficeRequest) -> HttpResponse:
    stores = selectors.store_list(viewer=request.staff)
    return render(request, "members/store_list.html", {"stores": stores, "active_section": "settings"})


@staff_role_required(Role.OWNER)
def store_edit_view(request: OfficeRequest, pk: int | None = None) -> HttpResponse:
    store = get_object_or_404(Store, pk=pk) if pk else Store()
    form = StoreForm(request.POST or None, instance=store)
    if request.method == "POST" and form.is_valid():
        services.store_save(store=form.instance)
        messages.success(request, _("Store %(name)s saved.") % {"name": store.name})
        return redirect("members:store-list")
    return render(request, "members/store_form.html", {"form": form, "store": store, "active_section": "settings"})


@staff_role_required(Role.OWNER)
def staff_list_view(request: OfficeRequest) -> HttpResponse:
    return render(
        request, "members/staff_list.html", {"staff_list": selectors.staff_list(), "active_section": "settings"}
    )


@staff_role_required(Role.OWNER)
def staff_create_view(request: OfficeRequest) -> HttpResponse:
    form = StaffCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            staff = services.staff_create(**form.cleaned_data)
        except services.StaffError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, _("Staff member %(name)s created.") % {"name": staff})
            return redirect("members:staff-list")
    return render(request, "members/staff_form.html", {"form": form, "active_section": "settings"})


@staff_role_required(Role.OWNER)
def staff_edit_view(request: OfficeRequest, pk: int) -> HttpResponse:
    staff = get_object_or_404(selectors.staff_list(), pk=pk)
    form = StaffEditForm.for_staff(staff, request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        if staff.user_id == request.user.pk and (not data["is_active"] or data["role"] != Role.OWNER):
            form.add_error(None, _("You cannot remove your own owner access."))
        elif staff.user.is_superuser and not request.user.is_superuser:
            # a superuser's password is the key to the Django admin: owners may not set it
            form.add_error(None, _("Only a superuser can change a superuser's account."))
        else:
            try:
                services.staff_update(
                    staff=staff,
                    role=data["role"],
                    store=data["store"],
                    first_name=data["first_name"],
                    email=data["email"],
                    is_active=data["is_active"],
                )
            except services.StaffError as exc:
                form.add_error(None, str(exc))
            else:
                if data["new_password"]:
                    services.staff_set_password(staff=staff, password=data["new_password"])
                    if staff.user_id == request.user.pk:
                        update_session_auth_hash(request, staff.user)  # changing one's own password keeps one signed in
                messages.success(request, _("Staff member %(name)s saved.") % {"name": staff})
                return redirect("members:staff-list")
    return render(request, "members/staff_form.html", {"form": form, "staff": staff, "active_section": "settings"})
