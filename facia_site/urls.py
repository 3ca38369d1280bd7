from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from telemetry.views import metrics

urlpatterns = [
    path("", include("liveness.urls")),
    path("", include("capture.urls")),
    path(settings.ADMIN_URL, admin.site.urls),
    path("metrics", metrics, name="metrics"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path(
        "api/redoc/",
        SpectacularRedocView.as_view(url_name="schema", template_name="liveness/redoc.html"),
        name="redoc",
    ),
]

handler400 = "liveness.views.bad_request"
handler404 = "liveness.views.not_found"
handler500 = "liveness.views.server_error"
