"""The rule every new or changed username meets, wherever an account is made or renamed: the
admin's forms, ``manage.py createsuperuser`` (its prompt, and ``--noinput`` with
``--username`` or DJANGO_SUPERUSER_USERNAME, ``bin/entrypoint manage`` included), any model
form or ``full_clean()`` of a user. It is part of the username field's own ``clean()``
(``install``, from AccountsConfig.ready): createsuperuser checks a name only with that, so
the rule held in the admin's form alone let "facia-system" and "Admin" beside "admin" in
through the command."""

from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import Field

from accounts import audit
from guard.validators import one_alphabet, shown, username_apart, username_keys

RESERVED_USERNAME = (
    f"“{audit.SYSTEM_USER}” is reserved: the history attributes management commands to it."
)


def username_free(name: str, own: Any = None) -> None:
    """Refuse a username that shows as nothing (``guard.validators.shown``), mixes look-alike
    alphabets, reads as ``audit.SYSTEM_USER`` (which may not exist yet) or as another
    account's (``guard.validators.username_apart``): any but ``own``, the pk of the account
    it renames ("carl" to "Carl" reads as itself, and is not refused). ``own``'s name as stored is
    not read apart again: it is kept as it was (names stored before the rule keep saving).
    Every account is read (the keys of 1,000 usernames take 6 ms here; the admin's add form
    takes 26 ms to validate beside 10,000 accounts): a console has tens."""
    users = get_user_model()._default_manager
    if own is not None and users.filter(pk=own, username=name).exists():
        return
    shown(name)
    one_alphabet(name)
    if username_keys(name) & username_keys(audit.SYSTEM_USER):
        raise ValidationError(RESERVED_USERNAME, code="reserved")
    others = users.exclude(pk=own) if own is not None else users
    username_apart(name, others.order_by("pk").values_list("pk", "username"))


def install() -> None:
    """Check ``username_free`` in the user model's username field's ``clean()`` (what the
    model's ``full_clean()`` and createsuperuser run), after Django's own checks, with the
    account being saved: a validator sees the name alone, so could not tell the account
    renamed from the others. The name is checked as it will be stored (NFKC, Django's
    ``normalize_username``): createsuperuser checked "ﷲ" * 38 (38 characters) and stored 152,
    over the column's 150. Wrapped on the field, not declared on it: declared validators are
    part of the model's state, and makemigrations would then write a migration into
    django.contrib.auth."""
    user = get_user_model()
    field = user._meta.get_field(user.USERNAME_FIELD)
    assert isinstance(field, Field)  # a column, not a relation
    if getattr(field.clean, "username_free", False):
        return
    plain = field.clean

    def clean(value: Any, model_instance: Any) -> Any:
        value = plain(user.normalize_username(value), model_instance)
        username_free(value, getattr(model_instance, "pk", None))
        return value

    clean.username_free = True  # type: ignore[attr-defined]  # installed once
    setattr(field, "clean", clean)  # noqa: B010  # an attribute of this field, not the class
