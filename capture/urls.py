import uuid

from django.urls import path, register_converter

from capture import demo, views


class SessionIdConverter:
    """A session id: a UUID in its hyphenated form, in either case (RFC 9562 reads hex digits
    case-insensitively). Django's ``uuid`` converter takes lower case only: an integrator whose
    database hands ids back in upper case (SQL Server's uniqueidentifier, .NET's Guid) got
    404 "Not found." for its own session, on GET and on every token call."""

    regex = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    # The standard library's own, not a method here: a request's walk enters no more files
    # (tests/project/test_layering.py counts them).
    to_python = staticmethod(uuid.UUID)
    to_url = staticmethod(str)


register_converter(SessionIdConverter, "session_id")

urlpatterns = [
    path("sessions", views.SessionsView.as_view(), name="sessions"),
    path("sessions/<session_id:session_id>", views.SessionView.as_view(), name="session"),
    path(
        "sessions/<session_id:session_id>/quality",
        views.QualityView.as_view(),
        name="session-quality",
    ),
    path(
        "sessions/<session_id:session_id>/challenge",
        views.ChallengeView.as_view(),
        name="session-challenge",
    ),
    path(
        "sessions/<session_id:session_id>/selfie",
        views.SelfieView.as_view(),
        name="session-selfie",
    ),
]

urlpatterns += [
    path("capture/demo", demo.demo, name="capture-demo"),
    path("capture/demo/<uuid:session_id>", demo.result, name="capture-demo-result"),
]
