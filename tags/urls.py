"""The tags section's URLs. Each area adds its own list of routes below (the lead adds "rfm", "lifecycle" and the
segments'), all inside the "tags" namespace."""

from django.urls import path

from tags import views

app_name = "tags"

# tags, their members and history, the rule builder's htmx parts, bulk tagging, and the member page's Tags tab
tag_urlpatterns = [
    path("", views.tag_list_view, name="index"),
    path("new/", views.tag_edit_view, name="tag-create"),
    path("<int:pk>/", views.tag_detail_view, name="tag-detail"),
    path("<int:pk>/edit/", views.tag_edit_view, name="tag-edit"),
    path("<int:pk>/active/", views.tag_active_view, name="tag-active"),
    path("<int:pk>/members/remove/", views.tag_members_remove_view, name="tag-members-remove"),
    path("<int:pk>/import/", views.tag_import_view, name="tag-import"),
    path("<int:pk>/bulk/<uuid:task_id>/", views.bulk_status_view, name="bulk-status"),
    path("<int:pk>/bulk/<uuid:task_id>/errors.csv", views.bulk_errors_view, name="bulk-errors"),
    path("bulk/", views.bulk_filter_view, name="bulk-filter"),
    path("bulk/selection/", views.bulk_selection_view, name="bulk-selection"),
    path("rule/condition/", views.rule_condition_view, name="rule-condition"),
    path("rule/group/", views.rule_group_view, name="rule-group"),
    path("rule/count/", views.rule_count_view, name="rule-count"),
    path("members/<str:member_no>/", views.member_tags_view, name="member-tags"),
]

urlpatterns = [*tag_urlpatterns]

from tags.urls_segments import segment_urlpatterns  # noqa: E402

urlpatterns += segment_urlpatterns

from tags.views import rfm as rfm_views  # noqa: E402

# the RFM map and its segment table, the lifecycle funnel and its thresholds
urlpatterns += [
    path("rfm/", rfm_views.rfm_view, name="rfm"),
    path("rfm/segments/", rfm_views.rfm_segments_view, name="rfm-segments"),
    path("lifecycle/", rfm_views.lifecycle_view, name="lifecycle"),
]
