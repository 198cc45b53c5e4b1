import calendar
import secrets
from datetime import date, datetime, timedelta
from typing import Any

import pghistory
from django.contrib.auth.models import Group, User
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, connection, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from phonenumber_field.phonenumber import to_python
from pypinyin import lazy_pinyin

from members.models import ConsentRecord, Member, MemberView, PaidPlan, PaymentCode, PlanPeriod, Staff, Store
from members.roles import Role


class StaffError(Exception):
    """A refused staff change; str(exc) is safe to show."""


def with_check_digit(digits: str) -> str:
    """Append the Luhn check digit, so a mistyped card number is caught at the counter."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return digits + str((10 - total % 10) % 10)


def is_valid_member_no(value: str) -> bool:
    return value.isascii() and value.isdigit() and len(value) >= 10 and with_check_digit(value[:-1]) == value


def member_no_next() -> str:
    """A fresh 10-digit member number from a PostgreSQL sequence (no two sessions ever get the same one)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval('members_member_no_seq')")
        (n,) = cursor.fetchone()
    return with_check_digit(f"{100_000_000 + n:09d}")


def _check_store(role: str, store: Store | None) -> None:
    if role == Role.CASHIER and store is None:
        raise StaffError(_("A cashier must belong to a store."))


@transaction.atomic
def staff_create(
    *, username: str, password: str, role: str, store: Store | None, first_name: str = "", email: str = ""
) -> Staff:
    """Create a back-office user with one role. Raises StaffError."""
    _check_store(role, store)
    if User.objects.filter(username__iexact=username).exists():
        raise StaffError(_("This username is taken."))
    user = User.objects.create_user(username=username, password=password, first_name=first_name, email=email)
    user.groups.set([Group.objects.get(name=role)])
    return Staff.objects.create(user=user, store=store)


@transaction.atomic
def staff_update(
    *, staff: Staff, role: str, store: Store | None, first_name: str, email: str, is_active: bool
) -> Staff:
    """Change a staff member's role, store, name or access. Raises StaffError."""
    _check_store(role, store)
    user = staff.user
    if not is_active and user.is_superuser:
        raise StaffError(_("A superuser cannot be deactivated here."))
    user.first_name, user.email, user.is_active = first_name, email, is_active
    user.save(update_fields=["first_name", "email", "is_active"])
    user.groups.set([Group.objects.get(name=role)])
    staff.store = store
    staff.save(update_fields=["store"])
    return staff


def staff_set_password(*, staff: Staff, password: str) -> None:
    staff.user.set_password(password)
    staff.user.save(update_fields=["password"])


def store_save(*, store: Store) -> Store:
    store.full_clean()
    store.save()
    return store


# ------------------------------------------------------------------ members


class MemberError(Exception):
    """A refused member change; str(exc) is safe to show; `field` names the form field at fault, if any."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


# the words a member agrees to (or staff record on the member's word), kept with each ConsentRecord in the
# language they were shown in; the forms use the same text as their labels
CONSENT_WORDING: dict[str, Any] = {
    ConsentRecord.Source.PORTAL: gettext_lazy("Tell me about offers and events by text message"),
    ConsentRecord.Source.STAFF: gettext_lazy("Agrees to receive marketing messages"),
    ConsentRecord.Source.IMPORT: gettext_lazy("Marked as agreeing to marketing messages in an imported file"),
    ConsentRecord.Source.CANCELLATION: gettext_lazy("Membership cancelled: no more marketing messages"),
}


def _consent_record(member: Member, *, source: str, by: User | None, at: datetime) -> None:
    ConsentRecord.objects.create(
        member=member,
        given=member.marketing_consent,
        source=source,
        wording=str(CONSENT_WORDING[source])[:300],
        recorded_at=at,
        recorded_by=by,
    )


EDITABLE_FIELDS = ("phone", "name", "gender", "birthday", "email", "notes", "profile", "external_id", "referrer")
NAME_MAX = 100
OLDEST_BIRTHDAY = date(1900, 1, 1)


def name_pinyin(name: str) -> tuple[str, str]:
    """('zhangsan', 'zs') for 张三: lower-case, kept on the row so search can use a prefix index."""
    syllables = lazy_pinyin(name, errors="default")  # latin letters and digits are kept as they are
    words = [word.lower() for syllable in syllables for word in syllable.split()]
    return "".join(words)[:300], "".join(w[0] for w in words if w[0].isalnum())[:100]


def normalise_phone(raw: object, *, field: str = "phone") -> str | None:
    """E.164 (+8613800138000) from what staff or members type; mainland numbers need no +86."""
    if raw in (None, ""):
        return None
    try:
        number = to_python(str(raw).strip(), region="CN")
    except Exception:
        number = None
    if number is None or not number.is_valid():
        raise MemberError(_("Enter a valid mobile phone number."), field)
    return str(number.as_e164)


def _clean(data: dict[str, object], *, today: date) -> dict[str, object]:
    """Check and normalise member fields; raises MemberError naming the field."""
    clean = dict(data)
    if "phone" in clean:
        clean["phone"] = normalise_phone(clean["phone"])
    if "name" in clean:
        name = " ".join(str(clean["name"] or "").split())
        if len(name) > NAME_MAX:
            raise MemberError(_("A name has at most %(n)s characters.") % {"n": NAME_MAX}, "name")
        clean["name"] = name
    if clean.get("birthday") is not None:
        birthday = clean["birthday"]
        if not isinstance(birthday, date) or birthday > today or birthday < OLDEST_BIRTHDAY:
            raise MemberError(_("Enter a birthday between 1900 and today."), "birthday")
    if clean.get("email"):
        email = str(clean["email"]).strip()
        try:
            validate_email(email)
        except ValidationError:
            raise MemberError(_("Enter a valid e-mail address."), "email") from None
        clean["email"] = email
    if "external_id" in clean:
        clean["external_id"] = str(clean["external_id"] or "").strip() or None
    if "gender" in clean and clean["gender"] not in Member.Gender.values:
        raise MemberError(_("Choose a gender from the list."), "gender")
    if "profile" in clean and not isinstance(clean["profile"], dict):
        raise MemberError(_("Profile attributes must be a set of names and values."), "profile")
    return clean


def _unique_violation(exc: IntegrityError) -> MemberError:
    text = str(exc)
    if "phone" in text:
        return MemberError(_("Another member has this phone number."), "phone")
    if "external_id" in text:
        return MemberError(_("Another member has this external id."), "external_id")
    raise exc


@transaction.atomic
def member_register(
    *,
    phone: object,
    name: str = "",
    channel: str = Member.Channel.STORE,
    store: Store | None = None,
    by: User | None = None,
    registered_at: datetime | None = None,
    marketing_consent: bool = False,
    require_phone: bool = True,
    **fields: object,
) -> Member:
    """Register a member with a fresh member number. Phone is required except for imports. Consent given at
    registration is recorded (ConsentRecord) as given through the channel's door: the portal, an import, or
    staff for every other channel.
    Raises MemberError (invalid or duplicate data)."""
    now = timezone.now()
    data = _clean({"phone": phone, "name": name, **fields}, today=timezone.localdate())
    if require_phone and not data["phone"]:
        raise MemberError(_("A phone number is needed to register."), "phone")
    if channel not in Member.Channel.values:
        raise MemberError(_("Unknown registration channel."), "channel")
    pinyin, initials = name_pinyin(str(data["name"]))
    member = Member(
        member_no=member_no_next(),
        channel=channel,
        registered_store=store,
        registered_at=registered_at or now,
        name_pinyin=pinyin,
        name_initials=initials,
        marketing_consent=marketing_consent,
        marketing_consent_at=now if marketing_consent else None,
        **data,
    )
    try:
        # a savepoint: two registrations of one phone race here, the unique index lets exactly one through
        with transaction.atomic(), pghistory.context(user=by.pk if by else None, action="register"):
            member.save()
    except IntegrityError as exc:
        raise _unique_violation(exc) from None
    if marketing_consent:
        source: dict[str, str] = {
            Member.Channel.PORTAL: ConsentRecord.Source.PORTAL,
            Member.Channel.IMPORT: ConsentRecord.Source.IMPORT,
        }
        _consent_record(member, source=source.get(channel, ConsentRecord.Source.STAFF), by=by, at=now)
    return member


@transaction.atomic
def member_update(
    *,
    member: Member,
    by: User | None,
    consent_source: str = ConsentRecord.Source.STAFF,
    action: str = "update",
    unchanged_since: str | None = None,
    **changes: object,
) -> Member:
    """Change a member's personal data (any of EDITABLE_FIELDS, plus marketing_consent). A change of consent
    is recorded (ConsentRecord) as made through `consent_source`; `action` names the change in the history.
    `unchanged_since`: the member's updated_at (ISO) when the edit began; a member changed since is refused.
    Raises MemberError; a cancelled member cannot be edited."""
    unknown = set(changes) - {*EDITABLE_FIELDS, "marketing_consent"}
    if unknown:
        raise ValueError(f"not editable: {sorted(unknown)}")  # forms never send these; reaching here is a bug
    member = Member.objects.select_for_update().get(pk=member.pk)
    if member.status == Member.Status.CANCELLED:
        raise MemberError(_("A cancelled member cannot be changed."))
    if unchanged_since is not None and unchanged_since != member.updated_at.isoformat():
        raise MemberError(
            _("This member was changed by someone else (perhaps the member) while you edited. Reload and try again.")
        )
    data = _clean(changes, today=timezone.localdate())
    if "phone" in data and data["phone"] is None and member.phone:
        raise MemberError(_("A phone number cannot be removed, only changed."), "phone")
    consent = data.pop("marketing_consent", None)
    consent_changed = consent is not None and bool(consent) != member.marketing_consent
    if consent_changed:
        member.marketing_consent, member.marketing_consent_at = bool(consent), timezone.now()
    for key, value in data.items():
        setattr(member, key, value)
    if "name" in data:
        member.name_pinyin, member.name_initials = name_pinyin(member.name)
    try:
        with transaction.atomic(), pghistory.context(user=by.pk if by else None, action=action):
            member.save()
    except IntegrityError as exc:
        raise _unique_violation(exc) from None
    if consent_changed:
        assert member.marketing_consent_at is not None
        _consent_record(member, source=consent_source, by=by, at=member.marketing_consent_at)
    return member


# what members change of themselves in the portal; the birthday only while none is set, since birthday gifts
# and multipliers hang on it (afterwards staff correct it)
SELF_EDITABLE_FIELDS = ("name", "gender", "email", "birthday", "marketing_consent")


@transaction.atomic
def member_self_update(*, member: Member, **changes: object) -> Member:
    """A member's own change of their profile from the portal (any of SELF_EDITABLE_FIELDS), recorded in the
    history as the member's. Raises MemberError: a birthday already set cannot be changed here."""
    unknown = set(changes) - set(SELF_EDITABLE_FIELDS)
    if unknown:
        raise ValueError(f"not editable by the member: {sorted(unknown)}")  # the form never sends these
    current = Member.objects.select_for_update().get(pk=member.pk)
    birthday = changes.pop("birthday", None)
    if birthday is not None and birthday != current.birthday:
        if current.birthday is not None:
            raise MemberError(_("Your birthday is already set. To correct it, ask at a store."), "birthday")
        changes["birthday"] = birthday
    fields: dict[str, Any] = changes
    return member_update(member=current, by=None, consent_source=ConsentRecord.Source.PORTAL, action="portal", **fields)


@transaction.atomic
def member_phone_change(*, member: Member, phone: str) -> tuple[Member, str | None]:
    """A member moves their membership to a new phone they have just proved (a text code sent to it).
    Returns the member and the number it left (E.164, read under the row lock).
    Raises MemberError: the number is another member's, or it is the same number."""
    current = Member.objects.select_for_update().get(pk=member.pk)
    old = current.phone.as_e164 if current.phone else None
    new = normalise_phone(phone)
    if current.phone and new == current.phone.as_e164:
        raise MemberError(_("This is already your number."), "phone")
    if Member.objects.filter(phone=new).exclude(pk=current.pk).exists():
        raise MemberError(
            _("This number belongs to another membership, so yours cannot move to it. Ask at a store for help."),
            "phone",
        )
    return member_update(member=current, by=None, action="portal_phone", phone=new), old


def _member_set_status(member: Member, *, status: str, by: User | None, reason: str, allowed_from: set[str]) -> Member:
    member = Member.objects.select_for_update().get(pk=member.pk)
    if member.status == status:
        return member  # freezing a frozen member is a retry, not an error
    if member.status not in allowed_from:
        raise MemberError(_("This member is %(status)s.") % {"status": member.get_status_display()})
    member.status = status
    with pghistory.context(user=by.pk if by else None, action=status, reason=reason):
        member.save(update_fields=["status", "updated_at"])
    return member


@transaction.atomic
def member_freeze(*, member: Member, by: User | None, reason: str = "") -> Member:
    """Freeze a member: their assets cannot be spent until unfrozen. Raises MemberError."""
    return _member_set_status(member, status=Member.Status.FROZEN, by=by, reason=reason, allowed_from={"active"})


@transaction.atomic
def member_unfreeze(*, member: Member, by: User | None, reason: str = "") -> Member:
    """Raises MemberError."""
    return _member_set_status(member, status=Member.Status.ACTIVE, by=by, reason=reason, allowed_from={"frozen"})


@transaction.atomic
def members_freeze(*, members: QuerySet[Member], by: User | None, reason: str = "") -> int:
    """Freeze every active member of a selection in one statement; returns how many were frozen."""
    with pghistory.context(user=by.pk if by else None, action="frozen", reason=reason):
        return members.filter(status=Member.Status.ACTIVE).update(
            status=Member.Status.FROZEN, updated_at=timezone.now()
        )


@transaction.atomic
def member_cancel(*, member: Member, by: User | None, reason: str) -> Member:
    """Cancel a membership: personal data is pseudonymised (phone, name, e-mail, birthday, notes, profile,
    external id); the member number, ledgers and history stay. Raises MemberError."""
    member = Member.objects.select_for_update().get(pk=member.pk)
    if member.status == Member.Status.CANCELLED:
        return member
    member.status = Member.Status.CANCELLED
    member.phone, member.email, member.birthday, member.external_id = None, "", None, None
    member.name, member.name_pinyin, member.name_initials = "", "", ""
    member.notes, member.profile, member.gender = "", {}, Member.Gender.UNKNOWN
    had_consent = member.marketing_consent
    member.marketing_consent, member.marketing_consent_at = False, timezone.now()
    with pghistory.context(user=by.pk if by else None, action="cancel", reason=reason):
        member.save()
    if had_consent:
        _consent_record(member, source=ConsentRecord.Source.CANCELLATION, by=by, at=member.marketing_consent_at)
    return member


def member_view_record(*, member: Member, viewer: User) -> None:
    MemberView.objects.create(member=member, viewer=viewer)


# ------------------------------------------------------------------ payment codes

PAYMENT_CODE_REFRESH = timedelta(seconds=60)
PAYMENT_CODE_TTL = timedelta(seconds=120)


class PaymentCodeRefused(MemberError):
    pass


def payment_code_issue(*, member: Member, now: datetime | None = None) -> PaymentCode:
    """The member's current payment code: the same one for 60 s, then a new one; each is valid 120 s.
    Codes are random (18 digits), so nothing about the member predicts them."""
    now = now or timezone.now()
    current = (
        PaymentCode.objects.filter(member=member, consumed_at=None, issued_at__gt=now - PAYMENT_CODE_REFRESH)
        .order_by("-issued_at")
        .first()
    )
    if current is not None:
        return current
    PaymentCode.objects.filter(member=member, expires_at__lte=now).delete()
    while True:
        code = "28" + "".join(secrets.choice("0123456789") for _ in range(16))
        try:
            with transaction.atomic():
                return PaymentCode.objects.create(
                    code=code, member=member, issued_at=now, expires_at=now + PAYMENT_CODE_TTL
                )
        except IntegrityError:  # a collision in 10^16 codes: draw again
            continue


def payment_code_consume(*, code: str, member: Member | None = None, now: datetime | None = None) -> Member:
    """Use a payment code once. Returns its member. Raises PaymentCodeRefused when the code is unknown,
    expired, already used, or belongs to another member than the one given."""
    now = now or timezone.now()
    code = code.strip()
    if not (code.isascii() and code.isdigit()):
        raise PaymentCodeRefused(_("This is not a payment code."), "code")
    # one guarded UPDATE: of any number of concurrent consumers exactly one gets the row back
    matched = PaymentCode.objects.filter(code=code, consumed_at=None, expires_at__gt=now)
    if member is not None:
        matched = matched.filter(member=member)
    with transaction.atomic():
        pks = list(matched.select_for_update(skip_locked=True).values_list("pk", flat=True)[:1])
        if not pks or not PaymentCode.objects.filter(pk=pks[0], consumed_at=None).update(consumed_at=now):
            raise PaymentCodeRefused(
                _("This payment code is expired, used or not this member's. Ask for a fresh one."), "code"
            )
        return PaymentCode.objects.select_related("member").get(pk=pks[0]).member


# ------------------------------------------------------------------ paid plans


@transaction.atomic
def plan_save(
    *,
    plan: PaidPlan | None,
    by: User | None,
    name: str,
    price_fen: int,
    duration: str,
    is_active: bool,
    description: str = "",
) -> PaidPlan:
    """Create or change a paid plan (configuration, audited by pghistory with the staff member)."""
    if price_fen < 0 or duration not in PaidPlan.Duration.values:
        raise ValueError("price and duration are checked by the form")  # reaching here is a bug
    saved = plan or PaidPlan()
    saved.name, saved.price_fen, saved.duration = name.strip(), price_fen, duration
    saved.is_active, saved.description = is_active, description
    with pghistory.context(user=by.pk if by else None, action="plan_save"):
        saved.save()
    return saved


def add_months(moment: datetime, months: int) -> datetime:
    """Calendar months in the merchant's zone; the 31st becomes the last day of a shorter month."""
    local = timezone.localtime(moment)
    month_index = local.month - 1 + months
    year, month = local.year + month_index // 12, month_index % 12 + 1
    day = min(local.day, calendar.monthrange(year, month)[1])
    return local.replace(year=year, month=month, day=day)


PLAN_MONTHS: dict[str, int] = {PaidPlan.Duration.MONTH: 1, PaidPlan.Duration.QUARTER: 3, PaidPlan.Duration.YEAR: 12}


@transaction.atomic
def plan_grant(
    *,
    member: Member,
    plan: PaidPlan,
    by: User | None,
    source: str,
    reason: str = "",
    order_ref: str = "",
    now: datetime | None = None,
) -> PlanPeriod:
    """Add a period of `plan`: from now, or from the end of the member's current or last future period
    (a renewal extends it). Makes the member a paid member. Raises MemberError."""
    now = now or timezone.now()
    if source == PlanPeriod.Source.MANUAL and not reason.strip():
        raise MemberError(_("Say why the plan is granted."), "reason")
    member = Member.objects.select_for_update().get(pk=member.pk)  # renewals of one member queue here
    if member.status == Member.Status.CANCELLED:
        raise MemberError(_("A cancelled member cannot get a plan."))
    last_end = (
        member.plan_periods.filter(ends_at__gt=now).order_by("-ends_at").values_list("ends_at", flat=True).first()
    )
    starts_at = last_end or now
    context = pghistory.context(user=by.pk if by else None, action="plan_grant", reason=reason)
    with context:
        period = PlanPeriod.objects.create(
            member=member,
            plan=plan,
            starts_at=starts_at,
            ends_at=add_months(starts_at, PLAN_MONTHS[plan.duration]),
            source=source,
            reason=reason.strip(),
            order_ref=order_ref,
            created_by=by,
        )
        if member.member_type != Member.Type.PAID:
            member.member_type = Member.Type.PAID
            member.save(update_fields=["member_type", "updated_at"])
    return period


def plans_expire(*, business_date: date, run: object = None, batch: int = 10_000) -> tuple[int, int]:
    """End paid membership for members with no period covering the end of `business_date` or starting after
    it (bought after the day closed, before this run): their type falls back to stored-value (if they ever
    were) or registered. Set-based, in keyset batches by pk."""
    from reports.services import business_day_bounds

    _start, cutoff = business_day_bounds(business_date)
    examined = changed = 0
    last_pk = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                """
                WITH batch AS (
                    SELECT id FROM members_member
                    WHERE member_type = 'paid' AND id > %(last)s ORDER BY id LIMIT %(batch)s
                ), lapsed AS (
                    UPDATE members_member m
                    SET member_type = CASE WHEN m.stored_value_at IS NULL THEN 'registered' ELSE 'stored_value' END,
                        updated_at = now()
                    FROM batch
                    WHERE m.id = batch.id AND NOT EXISTS (
                        SELECT 1 FROM members_planperiod p
                        WHERE p.member_id = m.id AND p.ends_at >= %(cutoff)s
                    )
                    RETURNING m.id
                )
                SELECT (SELECT count(*) FROM batch), (SELECT count(*) FROM lapsed), (SELECT max(id) FROM batch)
                """,
                {"last": last_pk, "batch": batch, "cutoff": cutoff},
            )
            seen, lapsed, max_pk = cursor.fetchone()
        examined, changed = examined + seen, changed + lapsed
        if seen < batch:
            return examined, changed
        last_pk = max_pk
