"""A coupon batch chosen from a tag-filtered member list targets only the members holding the tag."""

import pytest
from django.urls import reverse

from assets.batch import batch_members
from tags.models import MemberTag, Tag, TagGroup
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db


def test_the_tag_filter_reaches_the_batch(owner_client, store):
    group = TagGroup.objects.get(dimension=TagGroup.Dimension.CUSTOM, name="")
    vip = Tag.objects.create(group=group, name="VIP")
    tagged, other = MemberFactory.create(registered_store=store), MemberFactory.create(registered_store=store)
    MemberTag.objects.create(member=tagged, tag=vip, source=MemberTag.Source.MANUAL)

    response = owner_client.get(reverse("assets:coupon-batch-new"), {"tag": [vip.pk]}, headers={"HX-Request": "true"})

    body = response.content.decode()
    assert response.status_code == 200 and f'<input type="hidden" name="tag" value="{vip.pk}">' in body
    assert list(batch_members({"tag": [vip.pk]})) == [tagged] and other not in batch_members({"tag": [vip.pk]})
