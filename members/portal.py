"""Member-portal views: phone-first pages under /m/, with their own base template and (later) their own login."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "members/portal/home.html", {"tab": "home"})


def member_code(request: HttpRequest) -> HttpResponse:
    return render(request, "members/portal/member_code.html", {"tab": "code"})


def me(request: HttpRequest) -> HttpResponse:
    return render(request, "members/portal/me.html", {"tab": "me"})


def login(request: HttpRequest) -> HttpResponse:
    return render(request, "members/portal/login.html", {"tab": "me"})
