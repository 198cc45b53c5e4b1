"""Production shape: deploy checks, fail-fast settings, the compose file, documented variables, static files."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.conf import settings

BASE = Path(settings.BASE_DIR)
PRODUCTION_ENV = {
    "DJANGO_DEBUG": "false",
    "DJANGO_SECRET_KEY": "x" * 30 + "Production-Only-Secret-Key-0123456789",
    "DJANGO_ALLOWED_HOSTS": "members.example.com",
    "DATABASE_URL": "postgres://huiyuan:secret@db.example.com:5432/huiyuan",
    "REDIS_URL": "redis://redis.example.com:6379/0",
}
STRIPPED = ("DJANGO_", "HUIYUAN_", "DATABASE_URL", "REDIS_URL", "CELERY_")


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(STRIPPED)}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_deploy_check_is_clean_with_production_settings():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_debug_is_off_by_default_and_a_secret_key_is_required():
    env = {k: v for k, v in PRODUCTION_ENV.items() if k not in {"DJANGO_SECRET_KEY", "DJANGO_DEBUG"}}

    result = manage("check", env=env)

    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_collectstatic_works_with_the_compressed_manifest_storage(tmp_path):
    result = manage(
        "collectstatic", "--no-input", "-v", "0", env={**PRODUCTION_ENV, "DJANGO_STATIC_ROOT": str(tmp_path)}
    )

    assert result.returncode == 0, result.stderr
    manifest = (tmp_path / "staticfiles.json").read_text()
    assert "vendor/tabler/tabler.min.css" in manifest and "django_htmx/htmx-2.min.js" in manifest
    assert list(tmp_path.glob("vendor/tabler/tabler.min.*.css.gz")), "whitenoise did not compress"


class TestComposeFile:
    @pytest.fixture(scope="class")
    def compose(self):
        return yaml.safe_load((BASE / "docker-compose.yml").read_text())

    def test_has_the_production_services(self, compose):
        assert {"postgres", "redis", "web", "worker", "beat"} <= set(compose["services"])

    def test_every_service_has_an_image_or_a_build(self, compose):
        for name, service in compose["services"].items():
            assert "image" in service or "build" in service, name

    def test_app_services_get_database_and_redis_and_wait_for_healthy_services(self, compose):
        for name in ("web", "worker", "beat"):
            service = compose["services"][name]
            assert service["environment"]["DATABASE_URL"].startswith("postgres://"), name
            assert service["environment"]["REDIS_URL"].startswith("redis://"), name
            assert service["depends_on"]["postgres"]["condition"] == "service_healthy", name
            assert service["depends_on"]["redis"]["condition"] == "service_healthy", name

    def test_web_runs_gunicorn_and_beat_uses_the_database_scheduler(self, compose):
        assert compose["services"]["web"]["command"][0] == "gunicorn"
        assert "django_celery_beat.schedulers:DatabaseScheduler" in compose["services"]["beat"]["command"]

    def test_databases_have_healthchecks(self, compose):
        for name in ("postgres", "redis", "web"):
            assert compose["services"][name]["healthcheck"]["test"], name

    def test_dockerfile_builds_from_the_lock(self):
        dockerfile = (BASE / "Dockerfile").read_text()

        assert "uv sync --locked --no-dev" in dockerfile and "collectstatic" in dockerfile


def test_every_environment_variable_the_settings_read_is_documented():
    source = (BASE / "config" / "settings.py").read_text()
    read = set(re.findall(r'env\.\w+\(\s*"([A-Z0-9_]+)"', source))
    documented = set(re.findall(r"^#?\s*([A-Z0-9_]+)=", (BASE / ".env.example").read_text(), re.M))

    assert read, "no variables found"
    assert read - documented == set()
