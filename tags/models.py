"""Who members are: tag groups and tags (manual, rule, system), the members each tag holds and its history,
the lifecycle stage of every member with its transitions, RFM scores with their segment table and history,
and saved segments.

System tags are not stored per member where a table of its own already says it: a lifecycle tag holds the
members of MemberLifecycle at its stage, an RFM tag the members of RfmScore in its segment (tags.selectors
resolves every tag to a condition on members). Manual, rule and preference tags are MemberTag rows."""

import pghistory
from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from members.models import Member


@pghistory.track()
class TagGroup(models.Model):
    """A dimension members are described along. The system groups (lifecycle, RFM segment, preference) are
    filled by the nightly jobs; staff add tags to the others."""

    class Dimension(models.TextChoices):
        ATTRIBUTES = "attributes", _("Attributes")
        LIFECYCLE = "lifecycle", _("Lifecycle")
        RFM = "rfm", _("RFM segment")
        VALUE = "value", _("Value")
        PREFERENCE = "preference", _("Preference")
        CHANNEL = "channel", _("Channel")
        CUSTOM = "custom", _("Custom")

    SYSTEM_DIMENSIONS = (Dimension.LIFECYCLE, Dimension.RFM, Dimension.PREFERENCE)

    # empty for the groups the product ships: they read as their dimension, in the reader's language
    name = models.CharField(_("name"), max_length=60, blank=True)
    dimension = models.CharField(_("dimension"), max_length=16, choices=Dimension.choices)
    description = models.CharField(_("description"), max_length=200, blank=True)
    position = models.PositiveSmallIntegerField(_("position"), default=0)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("tag group")
        verbose_name_plural = _("tag groups")
        ordering = ["position", "pk"]
        constraints = [models.UniqueConstraint(fields=["name"], condition=~Q(name=""), name="taggroup_name_unique")]

    def __str__(self) -> str:
        return self.label

    @property
    def label(self) -> str:
        return self.name or str(self.Dimension(self.dimension).label)

    @property
    def is_system(self) -> bool:
        return self.dimension in self.SYSTEM_DIMENSIONS


@pghistory.track(exclude=["member_count", "counted_at"])
class Tag(models.Model):
    class Kind(models.TextChoices):
        MANUAL = "manual", _("Manual")
        RULE = "rule", _("Rule")
        SYSTEM = "system", _("System")

    group = models.ForeignKey(TagGroup, verbose_name=_("group"), on_delete=models.PROTECT, related_name="tags")
    # empty for system tags: they read as their stage, segment or category (label)
    name = models.CharField(pgettext_lazy("tag", "name"), max_length=60, blank=True)
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices, default=Kind.MANUAL)
    # system tags: "lifecycle:<stage>", "rfm:<segment id>", "preference:<category>"; empty for the others
    code = models.CharField(_("code"), max_length=100, blank=True)
    description = models.CharField(_("description"), max_length=200, blank=True)
    colour = models.CharField(_("colour"), max_length=7, default="#206bc4")
    # rule tags: {"match": "all" | "any", "conditions": [{"field": ..., ...}, ...]} (tags.rules)
    rule = models.JSONField(_("rule"), default=dict, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    member_count = models.PositiveIntegerField(_("members"), default=0)  # as counted by the last job or change
    counted_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("tag")
        verbose_name_plural = _("tags")
        constraints = [
            models.UniqueConstraint(fields=["group", "name"], condition=~Q(name=""), name="tag_name_unique_in_group"),
            models.UniqueConstraint(fields=["code"], condition=~Q(code=""), name="tag_code_unique"),
            models.CheckConstraint(condition=Q(kind="system") | Q(code=""), name="tag_code_only_for_system"),
        ]

    def __str__(self) -> str:
        return self.label

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        kind, _sep, value = self.code.partition(":")
        if kind == "lifecycle" and value in Stage.values:
            return str(Stage(value).label)
        if kind == "rfm":
            return segment_label(value)
        return value


class MemberTag(models.Model):
    """A member holding a manual, rule or preference tag. Added and removed only by tags.services, which
    keep MemberTagEvent beside it."""

    class Source(models.TextChoices):
        MANUAL = "manual", _("By staff")
        IMPORT = "import", _("Import")
        RULE = "rule", _("Rule")
        SYSTEM = "system", _("Nightly job")

    # UNIQUE(member, tag) serves lookups by member
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="member_tags", db_index=False)
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="member_tags", db_index=False)
    source = models.CharField(_("source"), max_length=8, choices=Source.choices)
    added_at = models.DateTimeField(_("added"), default=timezone.now)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["member", "tag"], name="membertag_once")]
        indexes = [models.Index(fields=["tag", "member"], name="membertag_tag_idx")]

    def __str__(self) -> str:
        return f"{self.member_id}:{self.tag_id}"


class MemberTagEvent(models.Model):
    """The history of a member's tags: added or removed, when (the instant and the business date), by whom or
    by which job, and why."""

    class Action(models.TextChoices):
        ADDED = "added", _("Added")
        REMOVED = "removed", _("Removed")

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+", db_index=False)
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="+", db_index=False)
    action = models.CharField(_("action"), max_length=8, choices=Action.choices)
    source = models.CharField(_("source"), max_length=8, choices=MemberTag.Source.choices)
    business_date = models.DateField(_("business date"))
    at = models.DateTimeField(_("when"), default=timezone.now)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    reason = models.CharField(_("reason"), max_length=200, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["member", "-at"], name="membertagevent_member_idx"),
            models.Index(fields=["tag", "-at"], name="membertagevent_tag_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.member_id} {self.action} {self.tag_id}"


class RuleRefresh(models.Model):
    """The latest business date as of which one member's rule tags were evaluated on their own (after a
    purchase, a registration or an edit), whatever the evaluation changed: the night's run for an earlier date
    leaves that member alone."""

    member = models.OneToOneField(Member, on_delete=models.CASCADE, primary_key=True, related_name="+")
    business_date = models.DateField(_("business date"))

    class Meta:
        indexes = [models.Index(fields=["business_date"], name="rulerefresh_day_idx")]

    def __str__(self) -> str:
        return f"{self.member_id} {self.business_date}"


# ------------------------------------------------------------------ lifecycle


class Stage(models.TextChoices):
    NEW = "new", pgettext_lazy("lifecycle", "New")
    ACTIVE = "active", pgettext_lazy("lifecycle", "Active")
    SILENT = "silent", pgettext_lazy("lifecycle", "Silent")
    CHURNED = "churned", pgettext_lazy("lifecycle", "Churned")


@pghistory.track()
class LifecycleSettings(models.Model):
    """The thresholds of the lifecycle stages (one row). A member is new within `new_days` of registering
    with at most `new_max_purchases` purchases; active with a purchase within `active_days`; churned when the
    last purchase is more than `churned_days` old, or never bought and registered more than `churned_days`
    ago; silent otherwise."""

    new_days = models.PositiveSmallIntegerField(_("new: registered within (days)"), default=30)
    new_max_purchases = models.PositiveSmallIntegerField(_("new: at most this many purchases"), default=1)
    active_days = models.PositiveSmallIntegerField(_("active: a purchase within (days)"), default=90)
    churned_days = models.PositiveSmallIntegerField(_("churned: no purchase for more than (days)"), default=180)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("lifecycle settings")
        verbose_name_plural = _("lifecycle settings")
        constraints = [
            models.CheckConstraint(condition=Q(pk=1), name="lifecyclesettings_one_row"),
            models.CheckConstraint(
                condition=Q(churned_days__gte=F("active_days")), name="lifecycle_churn_after_active"
            ),
        ]

    def __str__(self) -> str:
        return "lifecycle settings"


class MemberLifecycle(models.Model):
    """A member's lifecycle stage, and the business date it began, as the `lifecycle` job last found it (the
    run's date is its JobRun's). Written only when the stage changes, so a night rewrites few rows."""

    member = models.OneToOneField(Member, on_delete=models.CASCADE, primary_key=True, related_name="lifecycle")
    stage = models.CharField(_("stage"), max_length=8, choices=Stage.choices)
    since = models.DateField(_("since"))

    class Meta:
        indexes = [models.Index(fields=["stage"], name="memberlifecycle_stage_idx")]

    def __str__(self) -> str:
        return f"{self.member_id}: {self.stage}"


class LifecycleChange(models.Model):
    """A move from one stage to another on a business date (from_stage is empty for a member's first
    stage). Campaigns can trigger on these."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+", db_index=False)
    business_date = models.DateField(_("business date"))
    from_stage = models.CharField(_("from"), max_length=8, choices=Stage.choices, blank=True)
    to_stage = models.CharField(_("to"), max_length=8, choices=Stage.choices)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["member", "business_date"], name="lifecyclechange_once_a_day")]
        indexes = [models.Index(fields=["business_date", "to_stage"], name="lifecyclechange_day_idx")]

    def __str__(self) -> str:
        return f"{self.member_id} {self.from_stage}->{self.to_stage} {self.business_date}"


# ------------------------------------------------------------------ RFM


# The segment table the product ships (R and F score ranges, every M; the first row that matches wins), read in the
# reader's language while a row keeps its shipped name; staff may rename and reshape it.
DEFAULT_SEGMENTS = (
    ("Champions", 5, 5, 4, 5, _("Bought recently, buy often and spend the most.")),
    ("Loyal", 3, 4, 4, 5, _("Buy often; responsive to loyalty offers.")),
    ("Potential loyalist", 4, 5, 2, 3, _("Recent customers who came back more than once.")),
    ("New", 5, 5, 1, 1, _("Bought for the first time, very recently.")),
    ("Promising", 4, 4, 1, 1, _("Recent, but only one visit so far.")),
    ("Need attention", 3, 3, 3, 3, _("Average recency and frequency: at risk of slipping.")),
    ("About to sleep", 3, 3, 1, 2, _("Below average recency and frequency.")),
    ("Can't lose them", 1, 2, 5, 5, _("Used to buy the most often, but not for a long time.")),
    ("At risk", 1, 2, 3, 4, _("Bought often, but long ago.")),
    ("Lost", 1, 1, 1, 1, _("One purchase, longest ago.")),
    ("Hibernating", 1, 2, 1, 2, _("Few purchases, long ago.")),
)
SEGMENT_LABELS = {
    "Champions": pgettext_lazy("rfm segment", "Champions"),
    "Loyal": pgettext_lazy("rfm segment", "Loyal"),
    "Potential loyalist": pgettext_lazy("rfm segment", "Potential loyalist"),
    "New": pgettext_lazy("rfm segment", "New"),
    "Promising": pgettext_lazy("rfm segment", "Promising"),
    "Need attention": pgettext_lazy("rfm segment", "Need attention"),
    "About to sleep": pgettext_lazy("rfm segment", "About to sleep"),
    "Can't lose them": pgettext_lazy("rfm segment", "Can't lose them"),
    "At risk": pgettext_lazy("rfm segment", "At risk"),
    "Hibernating": pgettext_lazy("rfm segment", "Hibernating"),
    "Lost": pgettext_lazy("rfm segment", "Lost"),
}


def segment_label(name: str) -> str:
    """A segment's name as the reader reads it: the shipped names translated, a merchant's own as written."""
    return str(SEGMENT_LABELS.get(name, name))


@pghistory.track()
class RfmSegment(models.Model):
    """A row of the segment table: members whose R, F and M scores fall in these ranges get this name. Rows
    are tried in position order and the first that matches wins. The shipped rows hold every M (1 to 5)."""

    name = models.CharField(_("name"), max_length=40, unique=True)
    r_min = models.PositiveSmallIntegerField(_("R from"))
    r_max = models.PositiveSmallIntegerField(_("R to"))
    f_min = models.PositiveSmallIntegerField(_("F from"))
    f_max = models.PositiveSmallIntegerField(_("F to"))
    m_min = models.PositiveSmallIntegerField(_("M from"), default=1)
    m_max = models.PositiveSmallIntegerField(_("M to"), default=5)
    position = models.PositiveSmallIntegerField(_("position"), default=0)
    description = models.CharField(_("description"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("RFM segment")
        verbose_name_plural = _("RFM segments")
        ordering = ["position", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(r_min__gte=1, r_max__lte=5, f_min__gte=1, f_max__lte=5, m_min__gte=1, m_max__lte=5)
                & Q(r_min__lte=F("r_max"), f_min__lte=F("f_max"), m_min__lte=F("m_max")),
                name="rfmsegment_ranges",
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def label(self) -> str:
        return segment_label(self.name)


class RfmScore(models.Model):
    """A member's RFM figures and scores as the last run of the `rfm` job found them, for members who bought
    in its window. Recency is that run's date minus last_purchase_date (tags.selectors), so rows change only
    when a member's figures or scores do, not every night."""

    member = models.OneToOneField(Member, on_delete=models.CASCADE, primary_key=True, related_name="rfm")
    last_purchase_date = models.DateField(_("last purchase"))
    frequency = models.PositiveIntegerField(_("frequency"))
    monetary_fen = models.BigIntegerField(_("monetary"))
    r = models.PositiveSmallIntegerField("R")
    f = models.PositiveSmallIntegerField("F")
    m = models.PositiveSmallIntegerField("M")
    cell = models.CharField(_("cell"), max_length=3)
    segment = models.CharField(_("segment"), max_length=40, blank=True)
    changed_on = models.DateField(_("changed on"))

    class Meta:
        indexes = [
            models.Index(fields=["segment"], name="rfmscore_segment_idx"),
            models.Index(fields=["r", "f"], name="rfmscore_rf_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.member_id}: {self.cell}"


class RfmChange(models.Model):
    """The dated history of RFM: a row when a member's cell or segment changed on a run (first scored, moved,
    or no longer scored: cell and segment empty)."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+", db_index=False)
    business_date = models.DateField(_("business date"))
    recency_days = models.PositiveIntegerField(null=True)
    frequency = models.PositiveIntegerField(null=True)
    monetary_fen = models.BigIntegerField(null=True)
    cell = models.CharField(_("cell"), max_length=3, blank=True)
    segment = models.CharField(_("segment"), max_length=40, blank=True)
    previous_cell = models.CharField(max_length=3, blank=True)
    previous_segment = models.CharField(max_length=40, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["member", "business_date"], name="rfmchange_once_a_day")]
        indexes = [models.Index(fields=["business_date"], name="rfmchange_day_idx")]

    def __str__(self) -> str:
        return f"{self.member_id} {self.previous_cell}->{self.cell} {self.business_date}"


# ------------------------------------------------------------------ segments


@pghistory.track(exclude=["member_count", "counted_at"])
class Segment(models.Model):
    """A saved filter over tags and member fields (tags.segments), for campaigns and exports."""

    name = models.CharField(_("name"), max_length=80, unique=True)
    description = models.CharField(_("description"), max_length=200, blank=True)
    definition = models.JSONField(_("definition"), default=dict)
    member_count = models.PositiveIntegerField(_("members"), default=0)
    counted_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("segment")
        verbose_name_plural = _("segments")

    def __str__(self) -> str:
        return self.name
