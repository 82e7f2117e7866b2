"""counters/serializers.py: the short way through a whole-number body answers as the serializer does."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rest_framework.exceptions import ValidationError

from counters.serializers import CounterNextSerializer, CounterSetSerializer
from tests.helpers import MAX, NOT_INTEGERS

BODIES = [CounterSetSerializer, CounterNextSerializer]
EDGES = [-1, 0, 1, MAX, MAX + 1, 2**64, -(2**63)]


def through_the_serializer(cls, data):
    serializer = cls(data=data)
    if serializer.is_valid():
        return dict(serializer.validated_data)
    return ValidationError(serializer.errors).detail


def short_way(cls, data):
    try:
        return dict(cls.validated(data))
    except ValidationError as error:
        return error.detail


values = st.one_of(st.integers(), st.sampled_from(EDGES), st.sampled_from(NOT_INTEGERS), st.text(max_size=5))
bodies = st.one_of(
    st.dictionaries(st.sampled_from(["value", "step", "other"]), values, max_size=3),
    st.lists(st.integers(), max_size=2),
    values,
)


@pytest.mark.parametrize("cls", BODIES)
@settings(max_examples=300, deadline=None)
@given(data=bodies)
def test_the_short_way_answers_as_the_serializer_does(cls, data):
    assert short_way(cls, data) == through_the_serializer(cls, data)


@pytest.mark.parametrize(
    ("cls", "data", "expected"),
    [
        (CounterSetSerializer, {"value": MAX}, {"value": MAX}),
        (CounterSetSerializer, {"value": 0, "other": "ignored"}, {"value": 0}),
        (CounterNextSerializer, {}, {"step": 1}),
        (CounterNextSerializer, {"step": 5}, {"step": 5}),
    ],
)
def test_the_usual_bodies_take_the_short_way(cls, data, expected, monkeypatch):
    monkeypatch.setattr(cls, "is_valid", lambda *a, **k: pytest.fail("went through the serializer"))
    assert cls.validated(data) == expected


@pytest.mark.parametrize(
    ("cls", "data"),
    [(CounterSetSerializer, {}), (CounterSetSerializer, {"value": True}), (CounterNextSerializer, {"step": 0})],
)
def test_anything_else_gets_the_serializers_error(cls, data):
    with pytest.raises(ValidationError) as refused:
        cls.validated(data)
    assert refused.value.detail == through_the_serializer(cls, data)
