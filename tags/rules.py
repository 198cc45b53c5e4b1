"""The rule engine of rule tags: what a rule may say, how it is checked, compiled to SQL, put in words and
explained for one member.

A rule is {"match": "all" | "any", "conditions": [...]}; a condition is a leaf {"field": ..., ...} or a group
{"match": ..., "conditions": [leaves]} (one level of nesting). The leaves, as rule_clean leaves them:

    registered_within  {"days": N}                             registered on one of the last N days (or later)
    spend              {"days": N, "min_fen": X, "max_fen": Y}  paid in the last N days, net of refunds (Y optional)
    purchase_count     {"days": N, "min": a, "max": b}          purchases in the last N days (b optional)
    last_purchase      {"days": N, "include_never": bool}       the last purchase is more than N days old
    birthday_month     {"months": [1..12], "this_month": bool}  born in one of the months (or the business date's)
    channel, member_type, gender  {"values": [choice values]}
    store              {"values": [store ids]}                  store of registration
    tier               {"values": [tier ids]}                   a member without a tier row stands on rank 0
    balance            {"min_fen": X, "max_fen": Y}             principal + bonus now (either bound optional)
    points             {"min": a, "max": b}                     points now (either bound optional)
    top_category       {"values": [categories]}                 top category of the last 365 days' purchase lines

Dates are business dates in the merchant's zone, as of a date D: "the last N days" are the N days ending with D
(D - N + 1 … D), so a purchase N - 1 days before D counts and one N days before does not; "more than N days
old" means D - the last purchase's date > N. Purchases after D are never read; a purchase counts unless it was
fully refunded by D (its money less the refunds dated up to D). Balances and points are the current ones.
Cancelled memberships never match.

rule_sql compiles a rule to ONE statement: members joined with per-member aggregates computed only for what
the rule reads (purchase sums per window used, balances, tier, top category)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import dates, timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from config.db import within
from members.forms import yuan_text
from members.models import Member, Store
from tags.models import Tag
from tiers.models import Tier

MATCHES = ("all", "any")
MAX_DAYS = 3650
MAX_CONDITIONS = 20
MAX_FEN = 10**13  # far above any real amount, small enough for a bigint
MAX_COUNT = 10**6
CATEGORY_DAYS = 365  # the window of "top category" and of preference tags
CATEGORY_MAX = 64  # PurchaseLine.category

FIELDS: dict[str, Any] = {
    "registered_within": gettext_lazy("Registered within"),
    "spend": gettext_lazy("Paid spend"),
    "purchase_count": gettext_lazy("Number of purchases"),
    "last_purchase": gettext_lazy("Last purchase older than"),
    "birthday_month": gettext_lazy("Birthday month"),
    "channel": gettext_lazy("Registration channel"),
    "store": gettext_lazy("Store of registration"),
    "tier": gettext_lazy("Tier"),
    "member_type": gettext_lazy("Member type"),
    "gender": gettext_lazy("Gender"),
    "balance": gettext_lazy("Stored balance"),
    "points": gettext_lazy("Points"),
    "top_category": gettext_lazy("Top category"),
}
CHOICE_FIELDS: dict[str, tuple[str, Any]] = {  # field → (member column, its choices)
    "channel": ("channel", Member.Channel),
    "member_type": ("member_type", Member.Type),
    "gender": ("gender", Member.Gender),
}
REFERENCE_FIELDS = {"store": Store, "tier": Tier}


class RuleError(ValidationError):
    """A rule that cannot be used; its messages are safe to show to staff."""


# ------------------------------------------------------------------ checking


def rule_clean(rule: object, *, check_references: bool = True) -> dict[str, Any]:
    """The rule in its canonical form (numbers as ints, lists sorted and de-duplicated, optional bounds as
    None). Raises RuleError with one message per problem, each naming the condition ("Condition 2.1: ...").
    check_references also refuses stores and tiers that do not exist."""
    errors: list[str] = []
    cleaned = _clean_group(rule, "", errors, depth=0)
    if check_references and not errors:
        _check_references(cleaned, errors)
    if errors:
        raise RuleError(errors)
    return cleaned


def _clean_group(group: object, path: str, errors: list[str], *, depth: int) -> dict[str, Any]:
    where = _("Condition %(n)s: ") % {"n": path} if path else ""
    if not isinstance(group, Mapping):
        errors.append(where + _("a rule is a set of conditions."))
        return {"match": "all", "conditions": []}
    match = group.get("match", "all")
    if match not in MATCHES:
        errors.append(where + _("choose whether all or any of the conditions must hold."))
        match = "all"
    conditions = group.get("conditions")
    if not isinstance(conditions, list) or not conditions:
        errors.append(where + _("add at least one condition."))
        return {"match": match, "conditions": []}
    if len(conditions) > MAX_CONDITIONS:
        errors.append(where + _("at most %(n)d conditions in a group.") % {"n": MAX_CONDITIONS})
        return {"match": match, "conditions": []}
    cleaned = []
    for number, condition in enumerate(conditions, start=1):
        sub_path = f"{path}.{number}" if path else str(number)
        if isinstance(condition, Mapping) and "conditions" in condition:
            if depth >= 1:
                errors.append(_("Condition %(n)s: a group cannot hold another group.") % {"n": sub_path})
                continue
            cleaned.append(_clean_group(condition, sub_path, errors, depth=depth + 1))
        else:
            leaf = _clean_leaf(condition, sub_path, errors)
            if leaf is not None:
                cleaned.append(leaf)
    return {"match": match, "conditions": cleaned}


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value.strip())
    return None


def _bounded(
    condition: Mapping[str, Any], key: str, low: int, high: int, *, required: bool, problems: list[str], label: str
) -> int | None:
    raw = condition.get(key)
    if raw in (None, "") and not required:
        return None
    value = _int(raw)
    if value is None or not low <= value <= high:
        problems.append(label)
        return None
    return value


def _clean_leaf(condition: object, path: str, errors: list[str]) -> dict[str, Any] | None:
    where = _("Condition %(n)s: ") % {"n": path}
    if not isinstance(condition, Mapping) or condition.get("field") not in FIELDS:
        errors.append(where + _("choose what the condition is about."))
        return None
    name = condition["field"]
    problems: list[str] = []
    days_text = _("enter a number of days from 1 to %(max)d.") % {"max": MAX_DAYS}
    fen_text = _("enter amounts in yuan, such as 100 or 99.50.")
    count_text = _("enter whole numbers from 0.")
    leaf: dict[str, Any] = {"field": name}
    if name in ("registered_within", "spend", "purchase_count", "last_purchase"):
        leaf["days"] = _bounded(condition, "days", 1, MAX_DAYS, required=True, problems=problems, label=days_text)
    if name == "spend":
        leaf["min_fen"] = _bounded(condition, "min_fen", 0, MAX_FEN, required=True, problems=problems, label=fen_text)
        leaf["max_fen"] = _bounded(condition, "max_fen", 0, MAX_FEN, required=False, problems=problems, label=fen_text)
    elif name == "purchase_count":
        leaf["min"] = _bounded(condition, "min", 0, MAX_COUNT, required=True, problems=problems, label=count_text)
        leaf["max"] = _bounded(condition, "max", 0, MAX_COUNT, required=False, problems=problems, label=count_text)
    elif name == "last_purchase":
        leaf["include_never"] = bool(condition.get("include_never", False))
    elif name == "birthday_month":
        leaf["this_month"] = bool(condition.get("this_month", False))
        months = _int_list(condition.get("months", []))
        if months is None or any(not 1 <= m <= 12 for m in months):
            problems.append(_("choose months from 1 to 12."))
            months = []
        leaf["months"] = [] if leaf["this_month"] else months
        if not leaf["this_month"] and not months:
            problems.append(_("choose at least one month, or this month."))
    elif name in CHOICE_FIELDS:
        values = condition.get("values")
        allowed = set(CHOICE_FIELDS[name][1].values)
        if not isinstance(values, list) or not values or any(v not in allowed for v in values):
            problems.append(_("choose at least one value from the list."))
            values = []
        leaf["values"] = sorted(set(values))
    elif name in REFERENCE_FIELDS:
        ids = _int_list(condition.get("values"))
        if not ids:
            problems.append(_("choose at least one from the list."))
        leaf["values"] = ids or []
    elif name in ("balance", "points"):
        low_key, high_key = ("min_fen", "max_fen") if name == "balance" else ("min", "max")
        label = fen_text if name == "balance" else count_text
        leaf[low_key] = _bounded(condition, low_key, 0, MAX_FEN, required=False, problems=problems, label=label)
        leaf[high_key] = _bounded(condition, high_key, 0, MAX_FEN, required=False, problems=problems, label=label)
        if leaf[low_key] is None and leaf[high_key] is None and not problems:
            problems.append(_("give a lower bound, an upper bound or both."))
    elif name == "top_category":
        values = condition.get("values")
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            values = []
        categories = sorted({v.strip() for v in values if v.strip()})
        if not categories:
            problems.append(_("enter at least one category."))
        if any(len(c) > CATEGORY_MAX for c in categories):
            problems.append(_("a category has at most %(n)d characters.") % {"n": CATEGORY_MAX})
        leaf["values"] = categories
    low, high = _range_keys(name)
    if high and not problems and leaf.get(high) is not None and leaf.get(low) is not None and leaf[high] < leaf[low]:
        problems.append(_("the upper bound is below the lower bound."))
    errors.extend(where + problem for problem in dict.fromkeys(problems))
    return None if problems else leaf


def _range_keys(name: str) -> tuple[str, str]:
    if name in ("spend", "balance"):
        return "min_fen", "max_fen"
    if name in ("purchase_count", "points"):
        return "min", "max"
    return "", ""


def _int_list(raw: object) -> list[int] | None:
    if not isinstance(raw, list):
        return None
    values = [_int(v) for v in raw]
    if any(v is None for v in values):
        return None
    return sorted({v for v in values if v is not None})


def _leaves(rule: Mapping[str, Any]) -> Iterable[tuple[str, Mapping[str, Any]]]:
    """(path, leaf) of every leaf, groups opened."""
    for number, condition in enumerate(rule.get("conditions", []), start=1):
        if "conditions" in condition:
            for sub, leaf in enumerate(condition["conditions"], start=1):
                yield f"{number}.{sub}", leaf
        else:
            yield str(number), condition


def _check_references(rule: Mapping[str, Any], errors: list[str]) -> None:
    for path, leaf in _leaves(rule):
        model = REFERENCE_FIELDS.get(leaf["field"])
        if model is None:
            continue
        found = set(model._default_manager.filter(pk__in=leaf["values"]).values_list("pk", flat=True))
        if set(leaf["values"]) - found:
            message = _("a store in it no longer exists.") if model is Store else _("a tier in it no longer exists.")
            errors.append(_("Condition %(n)s: ") % {"n": path} + message)


# ------------------------------------------------------------------ compiling


@dataclass
class Sql:
    """A fragment of SQL with its positional parameters, in order."""

    text: str
    params: list[Any] = field(default_factory=list)


def sql_join(fragments: Iterable[Sql], separator: str) -> Sql:
    parts = list(fragments)
    return Sql(separator.join(p.text for p in parts), [value for p in parts for value in p.params])


def window_start(as_of: date, days: int) -> date:
    """The first business date of "the last `days` days" ending with `as_of`."""
    return as_of - timedelta(days=days - 1)


def local_midnight(day: date) -> datetime:
    """The instant a business day starts, in the merchant's zone."""
    return datetime.combine(day, time.min, tzinfo=ZoneInfo(settings.TIME_ZONE))


# purchases that count: not fully refunded by the as-of date (a purchase paid nothing at all still counts)
_COUNTS = "(p.payable_fen = 0 OR COALESCE(r.refunded_fen, 0) < p.payable_fen)"


@dataclass
class _Query:
    """What one compilation needs: the aggregates the rule reads, collected while its leaves are compiled."""

    as_of: date
    member_ids: Sequence[int] | None
    windows: set[int] = field(default_factory=set)
    last_purchase: bool = False
    accounts: bool = False
    tier: bool = False
    category: bool = False

    def leaf(self, leaf: Mapping[str, Any]) -> tuple[Sql, list[Sql]]:
        """(the condition as a boolean that is never NULL, the expressions of the member's values it reads)."""
        name = leaf["field"]
        if name == "registered_within":
            since = local_midnight(window_start(self.as_of, leaf["days"]))
            return Sql("m.registered_at >= %s", [since]), [Sql("m.registered_at")]
        if name in ("spend", "purchase_count"):
            days = int(leaf["days"])  # it names a column: an int, whatever was passed
            self.windows.add(days)
            column = f"COALESCE(pa.{'spend' if name == 'spend' else 'count'}_{days}, 0)"
            low, high = _range_keys(name)
            return _between(column, leaf[low], leaf[high]), [Sql(column)]
        if name == "last_purchase":
            self.last_purchase = True
            test = Sql("pa.last_date < %s", [self.as_of - timedelta(days=leaf["days"])])
            if leaf["include_never"]:
                test = Sql(f"({test.text} OR pa.last_date IS NULL)", test.params)
            return test, [Sql("pa.last_date")]
        if name == "birthday_month":
            months = [self.as_of.month] if leaf["this_month"] else leaf["months"]
            return Sql("EXTRACT(MONTH FROM m.birthday)::int = ANY(%s::int[])", [months]), [Sql("m.birthday")]
        if name in CHOICE_FIELDS:
            column = f"m.{CHOICE_FIELDS[name][0]}"
            return Sql(f"{column} = ANY(%s::text[])", [leaf["values"]]), [Sql(column)]
        if name == "store":
            return Sql("m.registered_store_id = ANY(%s::bigint[])", [leaf["values"]]), [Sql("m.registered_store_id")]
        if name == "tier":
            self.tier = True
            base = Tier.objects.filter(rank=0).values_list("pk", flat=True).first()
            tier = Sql("COALESCE(mt.tier_id, %s::bigint)", [base])
            return Sql(f"{tier.text} = ANY(%s::bigint[])", [base, leaf["values"]]), [tier]
        if name in ("balance", "points"):
            self.accounts = True
            column = f"COALESCE(ac.{'balance_fen' if name == 'balance' else 'points'}, 0)"
            low, high = _range_keys(name)
            return _between(column, leaf[low], leaf[high]), [Sql(column)]
        if name == "top_category":
            self.category = True
            return Sql("tc.category = ANY(%s::text[])", [leaf["values"]]), [Sql("tc.category")]
        raise ValueError(f"unknown condition {name!r}")  # rule_clean refuses these: reaching here is a bug

    def joins(self) -> Sql:
        parts = []
        if self.windows or self.last_purchase:
            parts.append(self._purchases())
        if self.accounts:
            parts.append(_accounts(self.member_ids))
        if self.tier:
            parts.append(Sql("LEFT JOIN tiers_membertier mt ON mt.member_id = m.id"))
        if self.category:
            category = top_categories_sql(self.as_of, self.member_ids)
            parts.append(Sql(f"LEFT JOIN ({category.text}) tc ON tc.member_id = m.id", category.params))
        return sql_join(parts, "\n")

    def _purchases(self) -> Sql:
        columns: list[Sql] = []
        for days in sorted(self.windows):
            start = window_start(self.as_of, days)
            columns.append(
                Sql(
                    f"COALESCE(sum(p.payable_fen - COALESCE(r.refunded_fen, 0)) FILTER (WHERE p.business_date >= %s),"
                    f" 0)::bigint AS spend_{days}",
                    [start],
                )
            )
            columns.append(Sql(f"count(*) FILTER (WHERE p.business_date >= %s AND {_COUNTS}) AS count_{days}", [start]))
        columns.append(Sql(f"max(p.business_date) FILTER (WHERE {_COUNTS}) AS last_date"))
        refunds = Sql(
            "SELECT purchase_id, sum(amount_fen)::bigint AS refunded_fen FROM assets_purchaserefund"
            " WHERE business_date <= %s",
            [self.as_of],
        )
        where = Sql("p.member_id IS NOT NULL AND p.business_date <= %s", [self.as_of])
        if not self.last_purchase:  # only the windows are read: never scan older purchases
            where = sql_join(
                [where, Sql("p.business_date >= %s", [window_start(self.as_of, max(self.windows))])], " AND "
            )
        if self.member_ids is not None:
            restrict = Sql("p.member_id = ANY(%s::bigint[])", [list(self.member_ids)])
            where = sql_join([where, restrict], " AND ")
            refunds = sql_join(
                [
                    refunds,
                    Sql(
                        "AND purchase_id IN (SELECT id FROM assets_purchase WHERE member_id = ANY(%s::bigint[]))",
                        [list(self.member_ids)],
                    ),
                ],
                " ",
            )
        select = sql_join(columns, ",\n       ")
        return sql_join(
            [
                Sql("LEFT JOIN (SELECT p.member_id,"),
                select,
                Sql("FROM assets_purchase p LEFT JOIN ("),
                refunds,
                Sql("GROUP BY purchase_id) r ON r.purchase_id = p.id WHERE"),
                where,
                Sql("GROUP BY p.member_id) pa ON pa.member_id = m.id"),
            ],
            " ",
        )


def _between(column: str, low: int | None, high: int | None) -> Sql:
    tests = []
    if low is not None:
        tests.append(Sql(f"{column} >= %s", [low]))
    if high is not None:
        tests.append(Sql(f"{column} <= %s", [high]))
    return sql_join(tests, " AND ") if tests else Sql("true")


def _accounts(member_ids: Sequence[int] | None) -> Sql:
    restrict = Sql("")
    if member_ids is not None:
        restrict = Sql("AND a.member_id = ANY(%s::bigint[])", [list(member_ids)])
    return sql_join(
        [
            Sql(
                "LEFT JOIN (SELECT a.member_id,"
                " COALESCE(sum(a.balance) FILTER (WHERE a.asset IN ('principal', 'bonus')), 0) AS balance_fen,"
                " COALESCE(sum(a.balance) FILTER (WHERE a.asset = 'points'), 0) AS points"
                " FROM assets_account a WHERE a.member_id IS NOT NULL AND a.asset IN ('principal', 'bonus', 'points')"
            ),
            restrict,
            Sql("GROUP BY a.member_id) ac ON ac.member_id = m.id"),
        ],
        " ",
    )


def top_categories_sql(as_of: date, member_ids: Sequence[int] | None = None) -> Sql:
    """(member_id, category, amount_fen): each member's top category by the amount of the purchase lines of the
    CATEGORY_DAYS days ending with as_of; ties go to the first category by name. Members without categorised
    lines have no row."""
    restrict = Sql("")
    if member_ids is not None:
        restrict = Sql("AND p.member_id = ANY(%s::bigint[])", [list(member_ids)])
    return sql_join(
        [
            Sql(
                "SELECT DISTINCT ON (c.member_id) c.member_id, c.category, c.amount_fen FROM ("
                " SELECT p.member_id, l.category, sum(l.amount_fen) AS amount_fen"
                " FROM assets_purchaseline l JOIN assets_purchase p ON p.id = l.purchase_id"
                " WHERE p.member_id IS NOT NULL AND p.business_date >= %s AND p.business_date <= %s"
                " AND l.category <> ''",
                [window_start(as_of, CATEGORY_DAYS), as_of],
            ),
            restrict,
            Sql('GROUP BY p.member_id, l.category) c ORDER BY c.member_id, c.amount_fen DESC, c.category COLLATE "C"'),
        ],
        " ",
    )


def _expression(query: _Query, group: Mapping[str, Any]) -> Sql:
    operator = " AND " if group["match"] == "all" else " OR "
    parts = []
    for condition in group["conditions"]:
        if "conditions" in condition:
            parts.append(_expression(query, condition))
        else:
            test, _values = query.leaf(condition)
            parts.append(Sql(f"COALESCE(({test.text}), false)", test.params))
    joined = sql_join(parts, operator)
    return Sql(f"({joined.text})", joined.params)


def _members_where(member_ids: Sequence[int] | None) -> Sql:
    where = Sql("m.status <> %s", [Member.Status.CANCELLED.value])
    if member_ids is not None:
        where = sql_join([where, Sql("m.id = ANY(%s::bigint[])", [list(member_ids)])], " AND ")
    return where


def rule_sql(rule: Mapping[str, Any], *, as_of: date, member_ids: Sequence[int] | None = None) -> Sql:
    """One statement selecting the ids (column `id`) of the members the rule holds for as of `as_of`, among
    `member_ids` when given. The rule must be clean (rule_clean)."""
    query = _Query(as_of=as_of, member_ids=member_ids)
    expression = _expression(query, rule)  # first: it tells which aggregates to join
    return sql_join(
        [
            Sql("SELECT m.id FROM members_member m"),
            query.joins(),
            Sql("WHERE"),
            _members_where(member_ids),
            Sql("AND"),
            expression,
        ],
        " ",
    )


def rule_member_ids(rule: Mapping[str, Any], *, as_of: date, member_ids: Sequence[int] | None = None) -> list[int]:
    """The ids of the members the rule holds for, in id order (for tests and small checks: the job never loads
    them into Python)."""
    compiled = rule_sql(rule, as_of=as_of, member_ids=member_ids)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id FROM ({compiled.text}) x ORDER BY id", compiled.params)
        return [row[0] for row in cursor.fetchall()]


def rule_member_count(rule: Mapping[str, Any], *, as_of: date, limit_ms: int | None = None) -> int:
    """How many members the rule holds for (the builder's preview; one evaluation over every member). With
    limit_ms, a count that takes longer raises config.db.TooSlow."""
    compiled = rule_sql(rule, as_of=as_of)

    def count() -> int:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM ({compiled.text}) x", compiled.params)
            row = cursor.fetchone()
        return int(row[0]) if row else 0

    return count() if limit_ms is None else within(limit_ms, count)


# ------------------------------------------------------------------ in words


@dataclass
class Names:
    """Names of the stores and tiers that rules refer to, loaded once for a page of rules."""

    stores: dict[int, str]
    tiers: dict[int, str]

    @classmethod
    def load(cls) -> Names:
        return cls(
            stores=dict(Store.objects.values_list("pk", "name")),
            tiers=dict(Tier.objects.values_list("pk", "name")),
        )


def _yuan(fen: int) -> str:
    return f"¥{yuan_text(fen)}"


def _choice_labels(name: str, values: Iterable[str]) -> str:
    choices = CHOICE_FIELDS[name][1]
    return ", ".join(str(choices(v).label) if v in choices.values else v for v in values)


def _range_text(low: str | None, high: str | None) -> str:
    if low is not None and high is not None:
        return _("from %(low)s to %(high)s") % {"low": low, "high": high}
    if high is not None:
        return _("at most %(high)s") % {"high": high}
    return _("at least %(low)s") % {"low": low}


def leaf_text(leaf: Mapping[str, Any], names: Names | None = None) -> str:
    """One condition in words."""
    names = names or Names.load()
    name = leaf["field"]
    days = leaf.get("days") or 0
    if name == "registered_within":
        return ngettext("registered in the last %(n)d day", "registered in the last %(n)d days", days) % {"n": days}
    if name == "spend":
        amount = _range_text(_yuan(leaf["min_fen"]), _yuan(leaf["max_fen"]) if leaf["max_fen"] is not None else None)
        return ngettext("paid %(amount)s in the last %(n)d day", "paid %(amount)s in the last %(n)d days", days) % {
            "amount": amount,
            "n": days,
        }
    if name == "purchase_count":
        count = _range_text(str(leaf["min"]), str(leaf["max"]) if leaf["max"] is not None else None)
        return ngettext(
            "%(count)s purchases in the last %(n)d day", "%(count)s purchases in the last %(n)d days", days
        ) % {"count": count, "n": days}
    if name == "last_purchase":
        text = ngettext("last purchase more than %(n)d day ago", "last purchase more than %(n)d days ago", days) % {
            "n": days
        }
        return text + (_(", or never bought") if leaf["include_never"] else "")
    if name == "birthday_month":
        if leaf["this_month"]:
            return _("birthday in the month of the business date")
        return _("birthday in %(months)s") % {"months": ", ".join(str(dates.MONTHS[m]) for m in leaf["months"])}
    if name in CHOICE_FIELDS:
        values = _choice_labels(name, leaf["values"])
        if name == "channel":
            return _("registered through %(values)s") % {"values": values}
        if name == "member_type":
            return _("member type is %(values)s") % {"values": values}
        return _("gender is %(values)s") % {"values": values}
    if name == "store":
        shown = ", ".join(names.stores.get(pk, f"#{pk}") for pk in leaf["values"])
        return _("registered at %(stores)s") % {"stores": shown}
    if name == "tier":
        shown = ", ".join(names.tiers.get(pk, f"#{pk}") for pk in leaf["values"])
        return _("tier is %(tiers)s") % {"tiers": shown}
    if name == "balance":
        low, high = leaf["min_fen"], leaf["max_fen"]
        text = _range_text(_yuan(low) if low is not None else None, _yuan(high) if high is not None else None)
        return _("stored balance %(range)s") % {"range": text}
    if name == "points":
        text = _range_text(
            str(leaf["min"]) if leaf["min"] is not None else None, str(leaf["max"]) if leaf["max"] is not None else None
        )
        return _("points %(range)s") % {"range": text}
    if name == "top_category":
        return _("top category of the last year is %(categories)s") % {"categories": ", ".join(leaf["values"])}
    return name


def rule_text(rule: Mapping[str, Any], names: Names | None = None) -> str:
    """The whole rule in words, e.g. "all of: registered in the last 30 days; any of (…; …)"."""
    try:
        rule = rule_clean(rule, check_references=False)
    except RuleError:
        return _("(a rule that no longer reads: edit the tag)")
    names = names or Names.load()
    parts = []
    for condition in rule["conditions"]:
        if "conditions" in condition:
            inner = "; ".join(leaf_text(leaf, names) for leaf in condition["conditions"])
            parts.append(
                (_("all of (%(conditions)s)") if condition["match"] == "all" else _("any of (%(conditions)s)"))
                % {"conditions": inner}
            )
        else:
            parts.append(leaf_text(condition, names))
    if len(parts) == 1:
        return parts[0]
    joined = "; ".join(parts)
    return (_("all of: %(conditions)s") if rule["match"] == "all" else _("any of: %(conditions)s")) % {
        "conditions": joined
    }


# ------------------------------------------------------------------ why it applies to one member


@dataclass
class ExplainLine:
    text: str  # the condition (or group) in words
    actual: str  # the member's value, as staff read it
    passed: bool
    depth: int  # 0: the whole rule, 1: its conditions, 2: the conditions of a group
    is_group: bool = False


def rule_explain(tag: Tag, member: Member, as_of: date, names: Names | None = None) -> list[ExplainLine]:
    """Why `tag`'s rule holds for `member` as of `as_of`, or why not: the whole rule first, then each condition
    with the member's value and whether it passed (computed by the same SQL as the nightly job). One statement;
    pass `names` when explaining several tags, so the stores and tiers are read once."""
    rule = rule_clean(tag.rule, check_references=False)
    query = _Query(as_of=as_of, member_ids=[member.pk])
    leaves = list(_leaves(rule))
    selected: list[Sql] = []
    for _path, leaf in leaves:
        test, values = query.leaf(leaf)
        selected.append(Sql(f"COALESCE(({test.text}), false)", test.params))
        selected.extend(values)
    statement = sql_join(
        [
            Sql("SELECT"),
            sql_join(selected, ", "),
            Sql("FROM members_member m"),
            query.joins(),
            Sql("WHERE m.id = %s", [member.pk]),
        ],
        " ",
    )
    with connection.cursor() as cursor:
        cursor.execute(statement.text, statement.params)
        row = list(cursor.fetchone() or [])
    names = names or Names.load()
    results: dict[str, tuple[bool, str]] = {}
    position = 0
    for path, leaf in leaves:
        passed, value = bool(row[position]), row[position + 1]
        position += 2
        results[path] = (passed, _actual(leaf, value, as_of, names))
    lines: list[ExplainLine] = []
    outcomes = []
    for number, condition in enumerate(rule["conditions"], start=1):
        if "conditions" in condition:
            inner = [results[f"{number}.{sub}"] for sub in range(1, len(condition["conditions"]) + 1)]
            passed = _combine(condition["match"], [p for p, _a in inner])
            text = _("all of these") if condition["match"] == "all" else _("any of these")
            lines.append(ExplainLine(text=text, actual="", passed=passed, depth=1, is_group=True))
            for leaf, (leaf_passed, actual) in zip(condition["conditions"], inner, strict=True):
                lines.append(ExplainLine(text=leaf_text(leaf, names), actual=actual, passed=leaf_passed, depth=2))
        else:
            passed, actual = results[str(number)]
            lines.append(ExplainLine(text=leaf_text(condition, names), actual=actual, passed=passed, depth=1))
        outcomes.append(passed)
    cancelled = member.status == Member.Status.CANCELLED
    overall = _combine(rule["match"], outcomes) and not cancelled
    head = _("All of these conditions") if rule["match"] == "all" else _("Any of these conditions")
    actual = _("as of %(day)s") % {"day": as_of.isoformat()}
    if cancelled:
        actual = _("the membership is cancelled")
    return [ExplainLine(text=head, actual=actual, passed=overall, depth=0, is_group=True), *lines]


def _combine(match: str, outcomes: list[bool]) -> bool:
    return all(outcomes) if match == "all" else any(outcomes)


def _actual(leaf: Mapping[str, Any], value: Any, as_of: date, names: Names) -> str:
    name = leaf["field"]
    if name == "registered_within":
        day = timezone.localtime(value).date()
        return _("registered on %(day)s") % {"day": day.isoformat()}
    if name in ("spend", "balance"):
        return _yuan(int(value or 0))
    if name in ("purchase_count", "points"):
        return f"{int(value or 0):,}"
    if name == "last_purchase":
        if value is None:
            return _("never bought")
        ago = (as_of - value).days
        return ngettext("%(day)s, %(n)d day before", "%(day)s, %(n)d days before", ago) % {
            "day": value.isoformat(),
            "n": ago,
        }
    if name == "birthday_month":
        return str(dates.MONTHS[value.month]) if value else _("no birthday given")
    if name in CHOICE_FIELDS:
        return _choice_labels(name, [value]) if value else "—"
    if name == "store":
        return names.stores.get(value, "—") if value else "—"
    if name == "tier":
        return names.tiers.get(value, "—") if value else "—"
    if name == "top_category":
        return value or _("no categorised purchases")
    return str(value)
