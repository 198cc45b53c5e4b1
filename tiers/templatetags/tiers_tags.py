"""A tier as staff see it everywhere: a badge in its colour, with its icon and name."""

import re
from typing import Any

from django import template

from tiers.models import Tier

register = template.Library()
_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")
GREY = "#8c8c8c"


def text_on(colour: str) -> str:
    """Dark or white text, whichever reads better on `colour` (perceived brightness, with the YIQ weights)."""
    red, green, blue = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return "#1d273b" if 299 * red + 587 * green + 114 * blue > 150_000 else "#ffffff"


@register.inclusion_tag("tiers/partials/tier_badge.html")
def tier_badge(tier: Tier | None, extra_class: str = "") -> dict[str, Any]:
    colour = tier.colour if tier is not None and _COLOUR.fullmatch(tier.colour) else GREY
    return {"tier": tier, "colour": colour, "text": text_on(colour), "extra_class": extra_class}
