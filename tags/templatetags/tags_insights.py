"""{% member_rfm_lifecycle member %}: the member page's card of lifecycle stage and RFM scores."""

from typing import Any

from django import template

from members.models import Member
from tags import selectors
from tags.models import MemberLifecycle, RfmScore, segment_label

register = template.Library()


@register.filter(name="segment_label")
def segment_label_filter(name: str) -> str:
    """A segment's name as the reader reads it (the shipped names translated)."""
    return segment_label(name or "")


@register.inclusion_tag("tags/partials/rfm_lifecycle_card.html")
def member_rfm_lifecycle(member: Member) -> dict[str, Any]:
    stage = MemberLifecycle.objects.filter(member=member).first()
    score = RfmScore.objects.filter(member=member).first()
    rfm_day = selectors.last_run_date("rfm")
    return {
        "stage": stage,
        "lifecycle_day": selectors.last_run_date("lifecycle"),
        "score": score,
        "rfm_day": rfm_day,
        "recency": (rfm_day - score.last_purchase_date).days if score and rfm_day else None,
        "segment": segment_label(score.segment) if score and score.segment else "",
    }
