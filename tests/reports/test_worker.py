"""End to end: a real Celery worker takes run_job_task off the broker and builds the snapshot in the test database."""

import os
import signal
import subprocess
import sys
import time
from datetime import date, datetime
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

import pytest
import redis
from django.conf import settings
from django.db import connection

from config.celery import app as celery_app
from reports.models import DailySnapshot, JobRun
from reports.tasks import run_job_task
from tests.factories import MemberFactory, StoreFactory

DAY = date(2026, 3, 10)
WORKER = [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo", "--concurrency", "1",
          "--loglevel", "WARNING"]  # fmt: skip


def database_url_for_tests() -> str:
    """DATABASE_URL for the test database this process uses (the ?host= form for a Unix socket)."""
    db = connection.settings_dict
    user = quote(db["USER"] or "")
    if db.get("PASSWORD"):
        user += ":" + quote(db["PASSWORD"], safe="")
    options = db.get("OPTIONS", {})  # django-environ puts a ?host=/socket/dir URL's host and port here
    host = db["HOST"] or options.get("host") or ""
    port, name = db["PORT"] or options.get("port") or 5432, db["NAME"]
    if not host or host.startswith("/"):
        socket = f"?host={host}&port={port}" if host else ""
        return f"postgres://{user}@/{name}{socket}"
    return f"postgres://{user}@{host}:{port}/{name}"


def broker_for(tmp_path: Path) -> tuple[str, dict[str, object]]:
    """A broker no other process uses: Redis database 15 (flushed) with REDIS_URL, else a filesystem queue in tmp_path,
    laid out as config/settings.py lays it out under HUIYUAN_VAR_DIR."""
    if redis_url := os.environ.get("REDIS_URL"):
        url = urlunsplit(urlsplit(redis_url)._replace(path="/15"))
        redis.Redis.from_url(url).flushdb()
        return url, {}
    queue, processed = tmp_path / "celery" / "queue", tmp_path / "celery" / "processed"
    queue.mkdir(parents=True)
    processed.mkdir(parents=True)
    options = {
        "data_folder_in": str(queue),
        "data_folder_out": str(queue),
        "processed_folder": str(processed),
        "store_processed": False,
        "control_folder": str(tmp_path / "control"),  # kombu's default is ./control: where the worker runs, below
    }
    return "filesystem://", options


@pytest.fixture
def celery_on_broker(tmp_path, monkeypatch):
    """Point this process's Celery app at the test broker and stop running tasks eagerly; restore afterwards."""
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)  # Celery would prefer it to conf.broker_url
    broker_url, options = broker_for(tmp_path)
    conf = celery_app.conf
    saved = (conf.task_always_eager, conf.broker_url, conf.broker_transport_options)
    conf.task_always_eager, conf.broker_url, conf.broker_transport_options = False, broker_url, options
    try:
        yield broker_url
    finally:
        conf.task_always_eager, conf.broker_url, conf.broker_transport_options = saved
        if broker_url.startswith("redis"):
            redis.Redis.from_url(broker_url).flushdb()  # leave no queue or bindings behind


def worker_env(broker_url: str, tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)  # the same DJANGO_SECRET_KEY and test settings as this process
    env.update(
        DATABASE_URL=database_url_for_tests(),
        CELERY_BROKER_URL=broker_url,
        HUIYUAN_VAR_DIR=str(tmp_path),
        DJANGO_SETTINGS_MODULE="config.settings",
        PYTHONPATH=os.pathsep.join(filter(None, [str(settings.BASE_DIR), os.environ.get("PYTHONPATH")])),
    )
    env.pop("CELERY_TASK_ALWAYS_EAGER", None)
    return env


def stop(worker: subprocess.Popen) -> None:
    if worker.poll() is None:
        os.kill(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.kill(worker.pid, signal.SIGKILL)
            worker.wait(timeout=10)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_worker_runs_the_snapshot_sent_through_the_broker(celery_on_broker, tmp_path):
    store = StoreFactory(code="SH-01")
    MemberFactory(registered_store=store, registered_at=datetime(2026, 3, 10, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai")))
    log_path = tmp_path / "worker.log"
    log = log_path.open("wb")
    worker = subprocess.Popen(
        # run in tmp_path, so whatever the broker writes relative to the working directory stays there
        WORKER,
        env=worker_env(celery_on_broker, tmp_path),
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        with celery_app.connection_for_write() as broker:  # a connection to the test broker, not a pooled one
            run_job_task.apply_async(
                kwargs={"job": "snapshot_daily", "business_date": DAY.isoformat()}, connection=broker
            )

        run = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and worker.poll() is None:
            run = JobRun.objects.filter(job="snapshot_daily", business_date=DAY).first()
            if run is not None and run.status != JobRun.Status.RUNNING:
                break
            time.sleep(0.5)
    finally:
        stop(worker)
        log.close()

    worker_log = log_path.read_text(errors="replace")[-3000:]
    assert run is not None, f"no run within 60 s (worker exit code {worker.returncode}):\n{worker_log}"
    assert run.status == JobRun.Status.SUCCEEDED, f"{run.status}: {run.error}\n{worker_log}"
    assert (run.trigger, run.rows_examined, run.rows_changed) == (JobRun.Trigger.SCHEDULE, 1, 2)
    figures = {s.store_id: (s.members_total, s.members_new) for s in DailySnapshot.objects.filter(business_date=DAY)}
    assert figures == {store.pk: (1, 1), None: (1, 1)}
