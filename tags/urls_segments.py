"""The segments pages, mounted inside the tags namespace by tags/urls.py (`urlpatterns += segment_urlpatterns`)."""

from django.urls import path

from tags import views_segments as views

segment_urlpatterns = [
    path("segments/", views.segment_list_view, name="segments"),
    path("segments/new/", views.segment_edit_view, name="segment-new"),
    path("segments/count/", views.segment_count_view, name="segment-count"),
    path("segments/<int:pk>/", views.segment_edit_view, name="segment-edit"),
    path("segments/<int:pk>/export.csv", views.segment_export_view, name="segment-export"),
    path("segments/<int:pk>/recount/", views.segment_recount_view, name="segment-recount"),
    path("segments/<int:pk>/delete/", views.segment_delete_view, name="segment-delete"),
    path("tag-options/", views.tag_options_view, name="tag-options"),  # the member list's tag picker
]
