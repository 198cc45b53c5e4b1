import pytest
from django.urls import reverse


@pytest.fixture
def broker_folders(settings, tmp_path):
    """Filesystem-broker folders that exist (make run creates them; a fresh test run has none)."""
    options = {"data_folder_in": tmp_path / "queue", "control_folder": tmp_path / "control"}
    for folder in options.values():
        folder.mkdir()
    if settings.CELERY_BROKER_URL == "filesystem://":
        settings.CELERY_BROKER_TRANSPORT_OPTIONS = {k: str(v) for k, v in options.items()}


@pytest.mark.django_db
def test_healthz_reports_database_cache_and_broker(client, broker_folders):
    response = client.get(reverse("healthz"))

    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "cache": "ok", "broker": "ok"}


@pytest.mark.django_db
def test_healthz_is_unhealthy_when_the_broker_is_down(client, monkeypatch):
    from config import views

    def broken() -> None:
        raise ConnectionError("refused")

    monkeypatch.setattr(views, "_broker", broken)

    response = client.get(reverse("healthz"))

    assert response.status_code == 503
    assert response.json()["checks"]["broker"] == "error: ConnectionError"


@pytest.mark.django_db
def test_healthz_sees_a_filesystem_broker_without_its_folders(client, settings, tmp_path):
    settings.CELERY_BROKER_URL = "filesystem://"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"data_folder_in": str(tmp_path / "missing")}

    response = client.get(reverse("healthz"))

    assert response.status_code == 503
    assert response.json()["checks"]["broker"] == "error: FileNotFoundError"


@pytest.mark.django_db
def test_healthz_answers_plain_http_although_https_is_enforced(client, settings, broker_folders):
    settings.SECURE_SSL_REDIRECT = True

    assert client.get(reverse("healthz")).status_code == 200
    assert client.get(reverse("members:login")).status_code == 301


@pytest.mark.django_db
def test_every_request_is_logged_as_one_structured_line_without_the_query_string(client, caplog):
    caplog.set_level("INFO", logger="huiyuan.request")

    client.get(reverse("members:login") + "?phone=13800000000")

    record = next(r for r in caplog.records if r.name == "huiyuan.request")
    assert (record.method, record.path, record.status) == ("GET", "/login/", 200)
    assert "13800000000" not in record.getMessage() + str(vars(record))


@pytest.mark.django_db
def test_django_error_logs_carry_the_path_but_not_the_query_string(client, caplog):
    from config.logging import JsonFormatter

    caplog.set_level("WARNING", logger="django.request")

    client.get("/no-such-page/?phone=13800001234")

    record = next(r for r in caplog.records if r.name == "django.request")
    line = JsonFormatter().format(record)
    assert '"path": "/no-such-page/"' in line and "13800001234" not in line
