from django.contrib import admin
from django.urls import include, path, re_path

from config import views
from config.api import api, api_not_found
from members.urls import portal_urlpatterns

# Django's admin is for superusers only; staff work in the back office.
admin.site.has_permission = lambda request: request.user.is_active and request.user.is_superuser  # type: ignore[method-assign]

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    re_path(r"^api/v1/(?P<rest>.*)$", api_not_found),  # after the API's own routes
    path("m/", include((portal_urlpatterns, "portal"))),
    path("", include("members.urls")),
    path("", include("reports.urls")),
    path("tiers/", include("tiers.urls")),
    path("assets/", include("assets.urls")),
    path("promotions/", include("promotions.urls")),
    path("tags/", include("tags.urls")),
]
