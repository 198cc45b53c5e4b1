import pytest
from django.urls import reverse


@pytest.mark.django_db
def test_healthz_reports_database_cache_and_broker(client):
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
def test_every_request_is_logged_as_one_structured_line_without_the_query_string(client, caplog):
    caplog.set_level("INFO", logger="huiyuan.request")

    client.get(reverse("members:login") + "?phone=13800000000")

    record = next(r for r in caplog.records if r.name == "huiyuan.request")
    assert (record.method, record.path, record.status) == ("GET", "/login/", 200)
    assert "13800000000" not in record.getMessage() + str(vars(record))
