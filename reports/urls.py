from django.urls import path

from config.views import section_page
from reports import views

app_name = "reports"
urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("reports/", section_page, {"section": "reports"}, name="index"),
    path("jobs/", views.jobs, name="jobs"),
    path("jobs/run/", views.job_run_now, name="job-run"),
    path("jobs/schedules/<int:pk>/toggle/", views.schedule_toggle, name="schedule-toggle"),
]
