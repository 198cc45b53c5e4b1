"""Back-office views of the tags app, one module per area; urls.py imports them from here."""

from tags.views.bulk import (
    bulk_errors_view,
    bulk_filter_view,
    bulk_selection_view,
    bulk_status_view,
    tag_import_view,
)
from tags.views.member_tab import member_tab_context, member_tags_view
from tags.views.pages import (
    rule_condition_view,
    rule_count_view,
    rule_group_view,
    tag_active_view,
    tag_detail_view,
    tag_edit_view,
    tag_list_view,
    tag_members_remove_view,
)

__all__ = [
    "bulk_errors_view",
    "bulk_filter_view",
    "bulk_selection_view",
    "bulk_status_view",
    "member_tab_context",
    "member_tags_view",
    "rule_condition_view",
    "rule_count_view",
    "rule_group_view",
    "tag_active_view",
    "tag_detail_view",
    "tag_edit_view",
    "tag_import_view",
    "tag_list_view",
    "tag_members_remove_view",
]
