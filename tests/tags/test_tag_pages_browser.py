"""The rule builder in a real browser (Debian's Chromium): rows added, a field changed, a group added, counted and
saved."""

import shutil

import pytest
from django.urls import reverse

from members.models import Member
from tags.models import Tag, TagGroup
from tests.conftest import CHROMIUM, PASSWORD
from tests.factories import MemberFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not shutil.which(CHROMIUM), reason="Chromium is not installed (.ci/run installs it)"),
]


@pytest.mark.django_db(transaction=True)
def test_a_manager_builds_a_rule_tag_with_a_group(live_server, page, manager, store):
    # a transactional test empties the tables after it, migrations' rows included: the shipped group again
    TagGroup.objects.get_or_create(dimension=TagGroup.Dimension.ATTRIBUTES, name="")
    MemberFactory.create(registered_store=store, channel=Member.Channel.PORTAL)
    page.goto(live_server.url + reverse("members:login"))
    page.fill("input[name=username]", manager.user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("#login-submit")
    page.wait_for_url(live_server.url + "/")
    page.click("button[name=language][value=en]")
    page.wait_for_load_state()

    page.goto(live_server.url + reverse("tags:tag-create"))
    page.fill("input[name=name]", "Portal fans")
    page.check("input[name=kind][value=rule]")
    assert page.locator("#rule-builder").is_visible()
    first = page.locator(".rule-condition").first
    first.locator("select[name$='-field']").select_option("channel")
    page.wait_for_selector(".rule-condition[data-field=channel]")
    page.locator(".rule-condition[data-field=channel] input[value=portal]").check()
    page.click("#rule-add-group")
    page.wait_for_selector(".rule-group .rule-condition")
    group_row = page.locator(".rule-group .rule-condition").first
    group_row.locator("select[name$='-field']").select_option("registered_within")
    page.wait_for_selector(".rule-group .rule-condition[data-field=registered_within]")
    page.locator(".rule-group input[name$='-days']").fill("3650")
    page.click("#rule-add-condition")  # a third, top-level row, removed again
    page.wait_for_selector("#rule-rows > .rule-condition >> nth=1")
    page.locator("#rule-rows > .rule-condition").nth(1).locator("button[aria-label='Remove this condition']").click()
    page.click("#rule-count-button")
    page.wait_for_selector("#rule-count [data-figure=count]")
    assert page.locator("#rule-count [data-figure=count]").inner_text() == "1 member"
    page.click("#tag-form button[type=submit]")
    page.wait_for_url("**/tags/*/")

    tag = Tag.objects.get(name="Portal fans")
    assert tag.rule == {
        "match": "all",
        "conditions": [
            {"field": "channel", "values": ["portal"]},
            {"match": "any", "conditions": [{"field": "registered_within", "days": 3650}]},
        ],
    }
