import os

import pytest
from django.apps import apps as django_apps
from django.contrib.auth.models import Group
from django.test import Client

from config.celery import app as celery_app
from members import services
from members.models import Staff, Store
from members.roles import Role, sync_role_groups
from tests.factories import StoreFactory

celery_app.conf.task_always_eager = True  # unit tests run tasks in-process; one integration test runs a worker

PASSWORD = "correct-horse-battery"
# browser tests drive Debian's Chromium, never a downloaded browser
CHROMIUM = os.environ.get("HUIYUAN_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ],
    }


@pytest.fixture(autouse=True)
def _fresh_system_accounts():
    # a transactional test flushes every table, system accounts included: never reuse cached ids across tests
    from assets import services as assets_services

    assets_services.system_accounts_forget()


@pytest.fixture(autouse=True)
def _english_by_default(settings):
    settings.LANGUAGE_CODE = "en"  # assertions read English; the i18n tests switch languages explicitly


@pytest.fixture
def store(db) -> Store:
    return StoreFactory.create(code="SH-01", name="Jing'an")


@pytest.fixture
def other_store(db) -> Store:
    return StoreFactory.create(code="SH-02", name="Xuhui")


def make_staff(role: str, store: Store | None = None, username: str | None = None) -> Staff:
    if not Group.objects.filter(name=role).exists():
        # a transactional test before this one flushed the tables, data-migration rows included
        sync_role_groups(django_apps)
    return services.staff_create(username=username or role, password=PASSWORD, role=role, store=store)


@pytest.fixture
def owner(db) -> Staff:
    return make_staff(Role.OWNER)


@pytest.fixture
def manager(db) -> Staff:
    return make_staff(Role.MANAGER)


@pytest.fixture
def cashier(store) -> Staff:
    return make_staff(Role.CASHIER, store=store)


@pytest.fixture
def auditor(db) -> Staff:
    return make_staff(Role.AUDITOR)


def client_for(staff: Staff) -> Client:
    client = Client()
    client.force_login(staff.user)
    return client


@pytest.fixture
def owner_client(owner) -> Client:
    return client_for(owner)


@pytest.fixture
def manager_client(manager) -> Client:
    return client_for(manager)


@pytest.fixture
def cashier_client(cashier) -> Client:
    return client_for(cashier)


@pytest.fixture
def auditor_client(auditor) -> Client:
    return client_for(auditor)
