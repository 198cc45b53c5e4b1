import factory
from factory.django import DjangoModelFactory

from members import services
from members.models import Member, Store


class StoreFactory(DjangoModelFactory[Store]):
    class Meta:
        model = Store
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"S{n:03d}")
    name = factory.Sequence(lambda n: f"Store {n}")


class MemberFactory(DjangoModelFactory[Member]):
    class Meta:
        model = Member

    member_no = factory.Sequence(lambda n: services.with_check_digit(str(100_000_000 + n)))
    phone = factory.Sequence(lambda n: f"+86139{n:08d}")
    name = factory.Faker("name", locale="zh_CN")
    registered_store = factory.SubFactory(StoreFactory)
