from django.urls import path

from capture import demo, views

urlpatterns = [
    path("sessions", views.SessionsView.as_view(), name="sessions"),
    path("sessions/<uuid:session_id>", views.SessionView.as_view(), name="session"),
    path("sessions/<uuid:session_id>/quality", views.QualityView.as_view(), name="session-quality"),
    path(
        "sessions/<uuid:session_id>/challenge",
        views.ChallengeView.as_view(),
        name="session-challenge",
    ),
    path("sessions/<uuid:session_id>/selfie", views.SelfieView.as_view(), name="session-selfie"),
]

urlpatterns += [
    path("capture/demo", demo.demo, name="capture-demo"),
    path("capture/demo/<uuid:session_id>", demo.result, name="capture-demo-result"),
]
