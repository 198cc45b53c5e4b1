import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("huiyuan")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def task_send(name: str, **kwargs: object) -> None:
    """Queue a task by its name, so the caller need not import the app that owns it, without retrying the
    broker (a broker that is down raises at once). In eager mode (the tests) it runs in-process, as .delay()
    would."""
    if app.conf.task_always_eager:
        if name not in app.tasks:
            app.loader.import_default_modules()  # what a worker does at start: the apps' tasks modules
        app.tasks[name].apply(kwargs=kwargs)
    else:
        app.send_task(name, kwargs=kwargs, retry=False)
