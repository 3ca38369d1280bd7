from django.urls import path

from liveness import views

urlpatterns = [
    path("liveness", views.LivenessView.as_view(), name="liveness"),
    path("status_check", views.status_check, name="status_check"),
    path("healthz", views.healthz, name="healthz"),
]
