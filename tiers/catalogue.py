"""Writes of the tier configuration: the ladder, the qualification rules and the benefit catalogue, each audited
by pghistory with who made it. Nobody moves when they are saved: the nightly recalculation applies them (and,
when upgrades are real-time, a member's next purchase or top-up)."""

from collections.abc import Iterable

import pghistory
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError, Q
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from assets.models import CouponTemplate
from benefits.models import Benefit
from members.models import PaidPlan
from tiers import selectors
from tiers.models import MemberTier, Tier, TierChange, TierGift, TierRules
from tiers.services import tier_rules


class TierRefused(Exception):
    """A change of the ladder that cannot be made; str(exc) is translated and safe to show to staff."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class TierStale(TierRefused):
    """The ladder or the rules changed since the preview the save was confirmed on."""


def _unchanged_since(based_on: str | None) -> None:
    """Inside the save's transaction: queue behind any other save of the configuration (one row lock), then
    refuse if the configuration is no longer the one previewed."""
    if based_on is None:
        return
    tier_rules()
    TierRules.objects.select_for_update().get(pk=1)
    if selectors.ladder_version() != based_on:
        raise TierStale(_("The ladder or the rules were changed by someone else since your preview."))


def _user(by: User | None) -> int | None:
    return by.pk if by is not None else None


def tier_save(
    *,
    tier: Tier,
    plans: Iterable[PaidPlan],
    gift_coupons: Iterable[CouponTemplate],
    by: User | None = None,
    based_on: str | None = None,
) -> Tier:
    """Create or change a tier with the paid plans that grant it and its gift coupons. Raises TierRefused
    when another tier took the rank in the meantime, TierStale when `based_on` (the ladder version the change
    was previewed on) is no longer the saved one."""
    try:
        with transaction.atomic(), pghistory.context(user=_user(by), action="tier_save"):
            _unchanged_since(based_on)
            tier.save()
            tier.plans.set(list(plans))
            tier.gift_coupons.set(list(gift_coupons))
    except IntegrityError:  # the unique rank: a concurrent save got there first (the form checked before)
        raise TierRefused(_("Another tier has rank %(rank)s.") % {"rank": tier.rank}, field="rank") from None
    return tier


def tier_delete_refusal(tier: Tier) -> str | None:
    """Why `tier` cannot be deleted (translated), or None when it can."""
    if tier.rank == 0:
        return _("The base tier (rank 0) cannot be deleted: every member starts on it.")
    standing = MemberTier.objects.filter(Q(tier=tier) | Q(floor=tier)).count()
    if standing:
        return ngettext(
            "%(n)s member stands on %(tier)s or has it as a floor.",
            "%(n)s members stand on %(tier)s or have it as a floor.",
            standing,
        ) % {"n": standing, "tier": tier.name}
    if (
        TierChange.objects.filter(Q(from_tier=tier) | Q(to_tier=tier)).exists()
        or TierGift.objects.filter(tier=tier).exists()
    ):
        return _("%(tier)s appears in members' tier history, which is kept: change or rename it instead.") % {
            "tier": tier.name
        }
    return None


def tier_delete(*, tier: Tier, by: User | None = None) -> None:
    """Delete a tier nobody stands on and nothing refers to; the benefits lose it. Raises TierRefused."""
    if (refusal := tier_delete_refusal(tier)) is not None:
        raise TierRefused(refusal)
    name = tier.name
    try:
        with transaction.atomic(), pghistory.context(user=_user(by), action="tier_delete"):
            tier.delete()
    except (ProtectedError, IntegrityError):  # a member reached it since the checks above
        raise TierRefused(_("Members reached %(tier)s meanwhile; it is kept.") % {"tier": name}) from None


def tier_rules_save(*, rules: TierRules, by: User | None = None, based_on: str | None = None) -> TierRules:
    """Save the rules; TierStale when `based_on` (the ladder version previewed) is no longer the saved one."""
    rules.pk = 1  # one row (a check constraint says so too)
    with transaction.atomic(), pghistory.context(user=_user(by), action="tier_rules_save"):
        _unchanged_since(based_on)
        rules.save()
    return rules


def benefit_save(
    *, benefit: Benefit, tiers: Iterable[Tier], plans: Iterable[PaidPlan], by: User | None = None
) -> Benefit:
    """Create or change a benefit and the tiers and paid plans that give it."""
    with transaction.atomic(), pghistory.context(user=_user(by), action="benefit_save"):
        benefit.save()
        benefit.tiers.set(list(tiers))
        benefit.plans.set(list(plans))
    return benefit
