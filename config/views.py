import os
from pathlib import Path

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from config.celery import app as celery_app
from config.navigation import SECTIONS_BY_KEY
from members.permissions import OfficeRequest, staff_role_required


@staff_role_required()
def section_page(request: OfficeRequest, section: str) -> HttpResponse:
    """The landing page of a section whose capability has not been built yet: it says what will be there."""
    item = SECTIONS_BY_KEY.get(section)
    if item is None:
        raise Http404
    if request.role not in item.roles:
        raise PermissionDenied
    return render(request, "section.html", {"section": item, "active_section": section})


def _check(fn) -> str:  # type: ignore[no-untyped-def]
    try:
        fn()
    except Exception as exc:  # a health probe reports any failure instead of raising
        return f"error: {exc.__class__.__name__}"
    return "ok"


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _cache() -> None:
    cache.set("healthz", "1", 10)
    if cache.get("healthz") != "1":
        raise RuntimeError("cache round trip failed")


def _broker() -> None:
    filesystem = settings.CELERY_BROKER_URL == "filesystem://"
    options: dict[str, object] = settings.CELERY_BROKER_TRANSPORT_OPTIONS if filesystem else {}
    for key in ("data_folder_in", "control_folder"):
        # kombu's filesystem transport "connects" even when its folders are missing or read-only
        folder = Path(str(options[key])) if key in options else None
        if folder is not None and not (folder.is_dir() and os.access(folder, os.W_OK)):
            raise FileNotFoundError(key)
    with celery_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    checks = {"database": _check(_database), "cache": _check(_cache), "broker": _check(_broker)}
    healthy = all(v == "ok" for v in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "error", "checks": checks, "debug": settings.DEBUG},
        status=200 if healthy else 503,
    )
