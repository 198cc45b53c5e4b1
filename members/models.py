import pghistory
from django.conf import settings
from django.contrib.postgres.constraints import ExclusionConstraint
from django.contrib.postgres.fields import DateTimeRangeField, RangeOperators
from django.contrib.postgres.indexes import OpClass
from django.db import models
from django.db.models import F, Func, Q
from django.db.models.functions import Right, Upper
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy
from phonenumber_field.modelfields import PhoneNumberField

from members.roles import Role


@pghistory.track()
class Store(models.Model):
    code = models.SlugField(_("code"), max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=100)
    address = models.CharField(_("address"), max_length=200, blank=True)
    phone = models.CharField(_("phone"), max_length=32, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("store")
        verbose_name_plural = _("stores")
        constraints = [models.UniqueConstraint(Upper("code"), name="store_code_unique_any_case")]

    def __str__(self) -> str:
        return self.name


@pghistory.track()
class Staff(models.Model):
    """A back-office user. The role is the user's group (members.roles.Role); cashiers belong to one store."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff")
    store = models.ForeignKey(Store, verbose_name=_("store"), null=True, blank=True, on_delete=models.PROTECT)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("staff member")
        verbose_name_plural = _("staff")

    def __str__(self) -> str:
        return self.user.get_full_name() or self.user.get_username()

    @property
    def role(self) -> str | None:
        # Groups are prefetched by the middleware, so this is query-free. Only role groups count;
        # a user put in several by hand gets the most powerful one, never an arbitrary one.
        names = {g.name for g in self.user.groups.all()}
        return next((role for role in Role.values if role in names), None)

    @property
    def role_label(self) -> str:
        return str(Role(self.role).label) if self.role else ""


@pghistory.track()
class Member(models.Model):
    """A member. Changed only through members.services; every change is kept by pghistory."""

    class Status(models.TextChoices):
        ACTIVE = "active", pgettext_lazy("member status", "Active")
        FROZEN = "frozen", _("Frozen")
        CANCELLED = "cancelled", _("Cancelled")

    class Gender(models.TextChoices):
        UNKNOWN = "unknown", _("Not given")
        FEMALE = "female", _("Female")
        MALE = "male", _("Male")

    class Channel(models.TextChoices):
        STORE = "store", _("Store")
        PORTAL = "portal", _("Portal")
        IMPORT = "import", _("Import")
        REFERRAL = "referral", _("Referral")
        CAMPAIGN = "campaign", _("Campaign")
        API = "api", _("API")

    class Type(models.TextChoices):
        REGISTERED = "registered", _("Registered")
        STORED_VALUE = "stored_value", _("Stored value")
        PAID = "paid", _("Paid")

    member_no = models.CharField(_("member number"), max_length=20, unique=True)
    phone = PhoneNumberField(_("phone"), unique=True, null=True, blank=True)
    name = models.CharField(_("name"), max_length=100, blank=True)
    name_pinyin = models.CharField(_("name in pinyin"), max_length=300, blank=True, editable=False)
    name_initials = models.CharField(_("pinyin initials"), max_length=100, blank=True, editable=False)
    gender = models.CharField(_("gender"), max_length=16, choices=Gender.choices, default=Gender.UNKNOWN)
    birthday = models.DateField(_("birthday"), null=True, blank=True)
    email = models.EmailField(_("e-mail"), blank=True)
    channel = models.CharField(_("registration channel"), max_length=16, choices=Channel.choices, default=Channel.STORE)
    referrer = models.ForeignKey(
        "self", verbose_name=_("referred by"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    registered_store = models.ForeignKey(
        Store, verbose_name=_("store of registration"), null=True, blank=True, on_delete=models.PROTECT
    )
    registered_at = models.DateTimeField(_("registered at"), default=timezone.now)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.ACTIVE)
    member_type = models.CharField(_("member type"), max_length=16, choices=Type.choices, default=Type.REGISTERED)
    # set by the ledgers when a qualifying top-up makes this a stored-value member; a lapsed paid plan falls back to it
    stored_value_at = models.DateTimeField(_("stored-value member since"), null=True, blank=True)
    marketing_consent = models.BooleanField(_("marketing consent"), default=False)
    marketing_consent_at = models.DateTimeField(_("consent changed at"), null=True, blank=True)
    notes = models.TextField(_("notes"), blank=True)
    profile = models.JSONField(_("profile attributes"), default=dict, blank=True)
    external_id = models.CharField(_("external id"), max_length=64, unique=True, null=True, blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("member")
        verbose_name_plural = _("members")
        indexes = [
            # the list's default order and its keyset pagination
            models.Index(F("registered_at").desc(), F("id").desc(), name="member_registered_idx"),
            models.Index(fields=["registered_store", "registered_at"], name="member_store_reg_idx"),
            models.Index(fields=["status", "registered_at"], name="member_status_reg_idx"),
            models.Index(fields=["member_type", "registered_at"], name="member_type_reg_idx"),
            models.Index(fields=["channel", "registered_at"], name="member_channel_reg_idx"),
            # search: the last four digits of a phone, and prefixes of name, pinyin and initials
            models.Index(Right("phone", 4), name="member_phone_last4_idx"),
            models.Index(OpClass(F("name"), name="text_pattern_ops"), name="member_name_prefix_idx"),
            models.Index(OpClass(F("name_pinyin"), name="text_pattern_ops"), name="member_pinyin_prefix_idx"),
            models.Index(OpClass(F("name_initials"), name="text_pattern_ops"), name="member_initials_prefix_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(marketing_consent=False) | Q(marketing_consent_at__isnull=False),
                name="member_consent_has_a_date",
            ),
        ]

    def __str__(self) -> str:
        return self.member_no

    @property
    def masked_phone(self) -> str:
        """138****8000: what cashiers see in lists."""
        if not self.phone:
            return ""
        national = str(self.phone.national_number)
        return f"{national[:3]}****{national[-4:]}" if len(national) >= 8 else "****"


class MemberView(models.Model):
    """Who opened which member's page, and when (privacy: personal data is looked at on record)."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    viewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    viewed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["member", "-viewed_at"], name="memberview_member_idx")]

    def __str__(self) -> str:
        return f"{self.viewer_id} viewed {self.member_id}"


class PaymentCode(models.Model):
    """A one-time code that lets the counter take a member's balance. Random, so nobody can derive it from
    the member number; short-lived; consumed at most once (guarded UPDATE)."""

    code = models.CharField(max_length=24, unique=True)
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    issued_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    consumed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["member", "-issued_at"], name="paymentcode_member_idx")]

    def __str__(self) -> str:
        return f"payment code of {self.member_id}"


class TsTzRange(Func):
    function = "TSTZRANGE"
    output_field = DateTimeRangeField()


@pghistory.track()
class PaidPlan(models.Model):
    class Duration(models.TextChoices):
        MONTH = "month", _("Month")
        QUARTER = "quarter", _("Quarter")
        YEAR = "year", _("Year")

    name = models.CharField(_("name"), max_length=100)
    price_fen = models.BigIntegerField(_("price"))
    duration = models.CharField(_("duration"), max_length=16, choices=Duration.choices)
    is_active = models.BooleanField(_("on sale"), default=True)
    description = models.TextField(_("description"), blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("paid plan")
        verbose_name_plural = _("paid plans")
        constraints = [models.CheckConstraint(condition=Q(price_fen__gte=0), name="paidplan_price_not_negative")]

    def __str__(self) -> str:
        return self.name


@pghistory.track()
class PlanPeriod(models.Model):
    """A stretch of paid membership [starts_at, ends_at). PostgreSQL refuses two that overlap for one member."""

    class Source(models.TextChoices):
        MANUAL = "manual", _("Granted by staff")
        COUNTER = "counter", _("Sold at the counter")
        PORTAL = "portal", _("Bought in the portal")
        IMPORT = "import", _("Imported")

    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="plan_periods")
    plan = models.ForeignKey(PaidPlan, on_delete=models.PROTECT, related_name="periods")
    starts_at = models.DateTimeField(_("starts"))
    ends_at = models.DateTimeField(_("ends"))
    source = models.CharField(_("source"), max_length=16, choices=Source.choices)
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    order_ref = models.CharField(_("order"), max_length=64, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("plan period")
        verbose_name_plural = _("plan periods")
        indexes = [models.Index(fields=["ends_at"], name="planperiod_ends_idx")]
        constraints = [
            models.CheckConstraint(condition=Q(ends_at__gt=F("starts_at")), name="planperiod_ends_after_start"),
            ExclusionConstraint(
                name="planperiod_no_overlap",
                expressions=[
                    ("member", RangeOperators.EQUAL),
                    (TsTzRange("starts_at", "ends_at"), RangeOperators.OVERLAPS),
                ],
            ),
        ]

    def __str__(self) -> str:
        start, end = timezone.localtime(self.starts_at), timezone.localtime(self.ends_at)
        return f"{self.plan} {start:%Y-%m-%d} to {end:%Y-%m-%d}"


def _import_upload_to(instance: "MemberImport", filename: str) -> str:
    return f"member-imports/{timezone.now():%Y/%m}/{filename}"


class MemberImport(models.Model):
    """One uploaded member file and what became of it: the dry run's counts and errors, then the import's
    progress. `processed` is the import's cursor (rows done), committed with each batch, so a retried job
    continues where the last run stopped and never creates a row twice."""

    class Status(models.TextChoices):
        CHECKING = "checking", _("Checking")
        CHECKED = "checked", _("Ready to import")
        QUEUED = "queued", _("Waiting to start")
        RUNNING = "running", _("Importing")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    file = models.FileField(_("file"), upload_to=_import_upload_to, max_length=300)
    file_name = models.CharField(_("file name"), max_length=200)
    default_store = models.ForeignKey(
        Store, verbose_name=_("store for rows without a store code"), null=True, blank=True, on_delete=models.PROTECT
    )
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.CHECKING)
    total_rows = models.PositiveIntegerField(_("rows"), default=0)
    # the dry run's verdict
    to_create = models.PositiveIntegerField(default=0)
    to_update = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    invalid = models.PositiveIntegerField(default=0)
    preview = models.JSONField(default=list, blank=True)
    # the import's outcome
    processed = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    # [{"row": 7, "column": "phone", "message": "...", "values": [...]}]: the dry run's, then the import's
    errors = models.JSONField(default=list, blank=True)
    message = models.TextField(_("message"), blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("member import")
        verbose_name_plural = _("member imports")
        indexes = [models.Index(F("created_at").desc(), name="memberimport_created_idx")]

    def __str__(self) -> str:
        return self.file_name

    @property
    def is_busy(self) -> bool:
        return self.status in (self.Status.CHECKING, self.Status.QUEUED, self.Status.RUNNING)

    @property
    def percent(self) -> int:
        return 100 if not self.total_rows else min(100, self.processed * 100 // self.total_rows)


# key_hash is kept out of the history (it is a credential check, not configuration), and so is last_used_at,
# which would otherwise add an event every minute a terminal is in use
@pghistory.track(exclude=["key_hash", "last_used_at"])
class Terminal(models.Model):
    """A till or device that calls the POS API with its own key. Only the key's prefix and its SHA-256
    are stored; the key itself is shown once, when it is made (members.terminals)."""

    store = models.ForeignKey(Store, verbose_name=_("store"), on_delete=models.PROTECT, related_name="terminals")
    name = models.CharField(pgettext_lazy("terminal", "name"), max_length=60)
    # the 8 characters after "hy_": the key's lookup (its unique index) and what staff see in lists
    key_prefix = models.CharField(_("key prefix"), max_length=8, unique=True)
    key_hash = models.CharField(max_length=64, editable=False)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    rotated_at = models.DateTimeField(_("key changed"), null=True, blank=True)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name = _("terminal")
        verbose_name_plural = _("terminals")
        constraints = [models.UniqueConstraint(fields=["store", "name"], name="terminal_name_unique_in_store")]

    def __str__(self) -> str:
        return self.name


class ApiRequest(models.Model):
    """The first answer the POS API gave to a write of one terminal under one Idempotency-Key: a retry of the
    same request gets it back as it was, the same key with another request is refused. Refusals are kept too,
    so a retried refusal stays refused; server errors are not (a retry may succeed)."""

    # UNIQUE(terminal, key) serves lookups by terminal
    terminal = models.ForeignKey(Terminal, on_delete=models.CASCADE, related_name="+", db_index=False)
    key = models.CharField(max_length=100)
    # sha256 of the method, the path and the body as canonical JSON
    fingerprint = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField()
    response_body = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["terminal", "key"], name="apirequest_one_per_terminal_key")]
        indexes = [models.Index(fields=["created_at"], name="apirequest_created_idx")]

    def __str__(self) -> str:
        return f"{self.terminal_id}/{self.key}"


class PortalCode(models.Model):
    """A one-time code texted to a phone to prove it (portal sign-in, a phone change). Only its HMAC is kept;
    only the newest code per phone and purpose counts; it is valid 5 minutes, used at most once, and locked by
    its 5th wrong try (members.portal_auth)."""

    class Purpose(models.TextChoices):
        LOGIN = "login", _("Sign in")
        PHONE_CHANGE = "phone_change", _("Phone change")

    phone = models.CharField(max_length=16)  # E.164
    purpose = models.CharField(max_length=16, choices=Purpose.choices)
    code_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(default=0)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["phone", "purpose", "-created_at"], name="portalcode_phone_idx"),
            models.Index(fields=["created_at"], name="portalcode_created_idx"),  # the purge of old codes
        ]
        constraints = [models.CheckConstraint(condition=Q(attempts__lte=5), name="portalcode_attempts_at_most_5")]

    def __str__(self) -> str:
        return f"{self.purpose} code {self.pk}"


class PortalPassword(models.Model):
    """A member's optional portal password (Django's hashers). A row of its own rather than a field on Member,
    so the hash stays out of the member's history (pghistory tracks Member) and out of every member query."""

    member = models.OneToOneField(Member, on_delete=models.CASCADE, primary_key=True, related_name="portal_password")
    password = models.CharField(max_length=128)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"portal password of {self.member_id}"


class ConsentRecord(models.Model):
    """One giving or withdrawal of a member's marketing consent: when, through which door, by whom, and the
    very words agreed to or withdrawn from, in the language they were shown in. Append-only; the member row
    keeps the current answer (Member.marketing_consent)."""

    class Source(models.TextChoices):
        PORTAL = "portal", _("Member portal")
        STAFF = "staff", _("Staff, on the member's word")
        IMPORT = "import", _("Import")
        CANCELLATION = "cancellation", _("Membership cancelled")
        EARLIER = "earlier", _("Given before consent records were kept")

    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="consent_records")
    given = models.BooleanField(_("consent given"))
    source = models.CharField(_("source"), max_length=16, choices=Source.choices)
    wording = models.CharField(_("wording"), max_length=300, blank=True)
    recorded_at = models.DateTimeField(_("recorded at"), default=timezone.now)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        verbose_name = _("consent record")
        verbose_name_plural = _("consent records")
        indexes = [models.Index(fields=["member", "-recorded_at"], name="consent_member_idx")]

    def __str__(self) -> str:
        return f"consent {'given' if self.given else 'withdrawn'} by {self.member_id}"
