from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser
from django.db import IntegrityError, transaction

from counters.services import counter_create

DEFAULT_COUNTER = "default"


class UsernameTaken(Exception):
    pass


def user_register(*, username: str, password: str, email: str = "") -> AbstractUser:
    """Create a user with their `default` counter at 0, both or neither (a Redis failure
    rolls the user back)."""
    User = get_user_model()
    with transaction.atomic():
        if User.objects.filter(username__iexact=username).exists():
            raise UsernameTaken()
        try:
            with transaction.atomic():
                user = User.objects.create_user(username=username, password=password, email=email)
        except IntegrityError:
            raise UsernameTaken() from None
        counter_create(owner_id=user.id, name=DEFAULT_COUNTER)
    return user
