"""The admin's "view on site" shortcut, guarded (facia_site/urls.py routes its address here)."""

from django.contrib.contenttypes.models import ContentType
from django.contrib.contenttypes.views import shortcut
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse

from guard.viewing import user_may_view


def view_on_site(request: HttpRequest, content_type_id: str, object_id: str) -> HttpResponse:
    """The admin's "view on site" shortcut (``admin:view_on_site``), for a user who may view
    the model's rows, and a 404 for an id its key cannot hold, as for one that is no row.
    Django's (contenttypes.views.shortcut) looked up a row of any model for any staff user,
    its answer telling rows that exist from those that do not, and met a UUID key's
    ValidationError ("x") with a 500. No model has a page on the site (get_absolute_url):
    every answer is a 404 today."""
    if not (content_type_id.isascii() and content_type_id.isdigit()):
        raise Http404  # "+17", " 17", "1_7", "١٧": int() takes them all; no content type's id
    try:
        model = ContentType.objects.get_for_id(int(content_type_id)).model_class()
    except (ContentType.DoesNotExist, OverflowError):
        model = None
    if model is None or not user_may_view(request.user, model):
        raise Http404
    try:
        return shortcut(request, content_type_id, object_id)
    except (ValidationError, ValueError, TypeError, OverflowError) as exc:
        raise Http404 from exc
