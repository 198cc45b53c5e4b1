"""The back-office sidebar: every domain section of the product, and who sees it."""

from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from members.roles import Role

EVERYONE = tuple(Role.values)
BACK_OFFICE = (Role.OWNER, Role.MANAGER, Role.AUDITOR)


@dataclass(frozen=True)
class Section:
    key: str
    url_name: str
    label: Promise
    icon: str
    roles: tuple[str, ...]
    summary: Promise
    features: tuple[Promise, ...] = ()


SECTIONS: tuple[Section, ...] = (
    Section("dashboard", "reports:dashboard", _("Dashboard"), "speedometer2", EVERYONE, _("Today at a glance.")),
    Section(
        "members",
        "members:index",
        _("Members"),
        "people",
        EVERYONE,
        _("The member register: search, the 360° member page, registration, import and export."),
        (
            _("Search by phone, last four digits, member number, name or pinyin initials"),
            _("Filters, sortable lists and bulk actions that stay fast at a million members"),
            _("The 360° member page with profile, assets, tier, tags and history"),
            _("Member types and paid plans; CSV/Excel import with a dry run"),
        ),
    ),
    Section(
        "tiers",
        "tiers:index",
        _("Tiers & benefits"),
        "award",
        BACK_OFFICE,
        _("The tier ladder, growth value rules and the benefits each tier and paid plan grants."),
        (
            _("Tier ladder with thresholds, colours and upgrade gift packs"),
            _("Cumulative or rolling-window qualification, downgrade rules"),
            _("Benefits: member discount, points multiplier, birthday gift, member day"),
        ),
    ),
    Section(
        "balance",
        "assets:balance",
        _("Stored balance"),
        "wallet2",
        BACK_OFFICE,
        _("Stored-value accounts, recharge packages and the balance ledger."),
        (
            _("Principal and bonus per member, outstanding balance as a liability"),
            _("Recharge packages: pay X, get Y"),
            _("Manual adjustments with a reason, by managers"),
        ),
    ),
    Section(
        "points",
        "assets:points",
        _("Points"),
        "stars",
        BACK_OFFICE,
        _("Points earning rules, expiring lots and the points ledger."),
        (
            _("Earning rate and expiry policy"),
            _("Points lots and their expiry dates"),
            _("Outstanding points and points cost"),
        ),
    ),
    Section(
        "coupons",
        "assets:coupons",
        _("Coupons"),
        "ticket-perforated",
        BACK_OFFICE,
        _("Coupon templates, issuing, redemption and expiry."),
        (_("Cash-off, percentage and gift coupons"), _("Stock and per-member limits"), _("Issue and redemption rates")),
    ),
    Section(
        "counter",
        "assets:counter",
        _("Counter"),
        "shop-window",
        (Role.CASHIER, Role.MANAGER, Role.OWNER),
        _("The cashier screen: find a member, record purchases, top-ups, refunds and redemptions."),
        (
            _("One field for phone, member number or payment code"),
            _("Keyboard first: F1 purchase, F2 top-up"),
            _("Receipts and the shift summary"),
        ),
    ),
    Section(
        "promotions",
        "promotions:index",
        _("Promotions"),
        "megaphone",
        BACK_OFFICE,
        _("Campaigns with triggers, targets, rewards and caps; member messages."),
        (
            _("Triggers: purchase, registration, birthday, upgrade, scheduled"),
            _("Rewards through the ledgers, with budgets and caps"),
            _("Performance against a control group"),
        ),
    ),
    Section(
        "tags",
        "tags:index",
        _("Tags & segments"),
        "tags",
        BACK_OFFICE,
        _("Who the members are: manual and rule tags, lifecycle, RFM and saved segments."),
        (
            _("Rule tags evaluated nightly"),
            _("Lifecycle: new, active, silent, churned"),
            _("RFM scores and segment map"),
            _("Segments with a live count"),
        ),
    ),
    Section(
        "reports",
        "reports:index",
        _("Reports"),
        "bar-chart-line",
        BACK_OFFICE,
        _("Dashboards built from nightly snapshots, with CSV export."),
        (
            _("Members: total, new, active; tier distribution"),
            _("Top-ups vs spend; outstanding balance and points"),
            _("Repurchase and churn rates, member vs guest spend"),
        ),
    ),
    Section("jobs", "reports:jobs", _("Jobs"), "clock-history", BACK_OFFICE, _("Schedules and job runs.")),
    Section(
        "settings",
        "members:settings",
        _("Settings"),
        "gear",
        (Role.OWNER, Role.MANAGER, Role.AUDITOR),
        _("Stores and staff."),
    ),
)
SECTIONS_BY_KEY = {s.key: s for s in SECTIONS}


def sections_for(role: str | None) -> list[Section]:
    return [s for s in SECTIONS if role in s.roles]
