import re

import pytest
from django.contrib.auth import get_user_model

from accounts.services import api_key_create
from counters import services
from counters.models import Counter
from incrementific.redis.keys import counter as counter_key
from tests.helpers import one_read_per_primary, redis_value


@pytest.fixture
def staff_client(client, db):
    admin = get_user_model().objects.create_superuser("root", "root@example.com", "a-long-enough-passphrase")
    client.force_login(admin)
    return client


def value_cells(html: str) -> list[str]:
    return re.findall(r'<td class="field-value">([^<]*)</td>', html)


def test_the_counter_list_shows_live_values_read_in_one_round_trip(staff_client, alice, bob, redis_round_trips):
    services.counter_set(owner_id=alice.id, name="default", value=2)
    services.counter_create(owner_id=bob.id, name="builds", value=7)
    redis_round_trips.clear()
    r = staff_client.get("/admin/counters/counter/")
    assert r.status_code == 200
    assert value_cells(r.text) == ["2", "7", "0"]  # alice/default, bob/builds, bob/default
    assert redis_round_trips == one_read_per_primary(counter_key(alice.id, "default"), counter_key(bob.id, "builds"))


def test_the_counter_list_renders_when_redis_is_down(staff_client, alice, private_redis):
    services.counter_create(owner_id=alice.id, name="x", value=1)
    private_redis.stop()
    r = staff_client.get("/admin/counters/counter/")
    assert r.status_code == 200
    assert value_cells(r.text) == ["unavailable", "unavailable"]


def test_search_by_name_and_username(staff_client, alice, bob):
    services.counter_create(owner_id=bob.id, name="invoices")
    assert value_cells(staff_client.get("/admin/counters/counter/?q=invoices").text) == ["0"]
    assert len(value_cells(staff_client.get("/admin/counters/counter/?q=alice").text)) == 1


def test_the_change_page_shows_value_and_reservation(staff_client, alice):
    services.counter_set(owner_id=alice.id, name="default", value=2)
    row = Counter.objects.get(owner=alice)
    r = staff_client.get(f"/admin/counters/counter/{row.pk}/change/")
    assert r.status_code == 200
    assert re.search(r'field-value">.*?<div class="readonly">2</div>', r.text, re.S)
    assert re.search(r'field-reserved_through">.*?<div class="readonly">3</div>', r.text, re.S)


def test_set_action_asks_for_a_value_then_sets_it_through_the_service(staff_client, alice, bob):
    pks = [str(pk) for pk in Counter.objects.values_list("pk", flat=True)]
    form = staff_client.post("/admin/counters/counter/", {"action": "set_value", "_selected_action": pks})
    assert form.status_code == 200
    assert "New value" in form.text
    bad = staff_client.post(
        "/admin/counters/counter/", {"action": "set_value", "_selected_action": pks, "apply": "1", "value": "-4"}
    )
    assert bad.status_code == 200
    assert "Must be a whole number (a JSON integer, or ASCII digits in a form)." in bad.text  # the API's rule
    assert redis_value(alice, "default") == 0
    for value, message in [("1.0", "Must be a whole number"), (str(2**63), "Must be from 0 to 9223372036854775807.")]:
        bad = staff_client.post(
            "/admin/counters/counter/", {"action": "set_value", "_selected_action": pks, "apply": "1", "value": value}
        )
        assert message in bad.text
    assert redis_value(alice, "default") == 0
    done = staff_client.post(
        "/admin/counters/counter/",
        {"action": "set_value", "_selected_action": pks, "apply": "1", "value": "1000"},
        follow=True,
    )
    assert "Set 2 counter(s) to 1000." in done.text
    assert (redis_value(alice, "default"), redis_value(bob, "default")) == (1000, 1000)
    assert Counter.objects.get(owner=alice).reserved_through == 1003  # the same code as the API


def test_reset_action(staff_client, alice):
    services.counter_set(owner_id=alice.id, name="default", value=3)
    pk = Counter.objects.get(owner=alice).pk
    staff_client.post("/admin/counters/counter/", {"action": "reset_to_zero", "_selected_action": [pk]})
    assert redis_value(alice, "default") == 0


def test_delete_from_the_admin_removes_the_value_too(staff_client, alice):
    pk = Counter.objects.get(owner=alice).pk
    staff_client.post(
        "/admin/counters/counter/", {"action": "delete_selected", "_selected_action": [pk], "post": "yes"}
    )
    assert not Counter.objects.filter(pk=pk).exists()
    assert redis_value(alice, "default") is None


def test_the_user_page_lists_their_counters(staff_client, alice):
    services.counter_create(owner_id=alice.id, name="tickets")
    r = staff_client.get(f"/admin/auth/user/{alice.pk}/change/")
    assert r.status_code == 200
    # Each row labelled by the counter's name (not "1/tickets"), linking to the counter's page.
    labels = re.findall(r'<td class="original">\s*<p>\s*([^<]*?)\s*<a href="/admin/counters/counter/\d+/', r.text)
    assert labels == ["default", "tickets"]


def test_the_admin_says_api_keys(staff_client):
    index = staff_client.get("/admin/").text
    assert ">API keys</a>" in index
    assert "Api keys" not in index
    assert (
        "<title>Select API key to view | incrementific admin</title>"
        in staff_client.get("/admin/accounts/apikey/").text
    )


def test_non_staff_cannot_get_in(client, alice):
    client.force_login(alice)
    r = client.get("/admin/counters/counter/")
    assert r.status_code == 302
    assert r["Location"].startswith("/admin/login/")


def test_api_keys_are_listed_and_revoked_from_the_admin(staff_client, alice):
    from rest_framework.test import APIClient

    from accounts.models import ApiKey
    from accounts.services import api_key_create

    row, secret = api_key_create(user_id=alice.id, name="deploy")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert client.get("/api/counters").status_code == 200
    listing = staff_client.get("/admin/accounts/apikey/")
    assert listing.status_code == 200
    assert row.prefix in listing.text
    assert secret not in listing.text
    assert "deploy" in staff_client.get(f"/admin/auth/user/{alice.pk}/change/").text
    staff_client.post("/admin/accounts/apikey/", {"action": "revoke", "_selected_action": [row.pk]})
    assert not ApiKey.objects.exists()
    assert client.get("/api/counters").status_code == 401


def test_filter_by_owner_keeps_the_search_and_each_owner_links_to_it(staff_client, alice, bob):
    services.counter_create(owner_id=bob.id, name="builds", value=7)
    services.counter_create(owner_id=alice.id, name="builds", value=3)
    r = staff_client.get("/admin/counters/counter/?owner=BOB")
    assert value_cells(r.text) == ["7", "0"]  # bob/builds, bob/default: usernames ignore case
    r = staff_client.get("/admin/counters/counter/?owner=bob&q=builds")
    assert value_cells(r.text) == ["7"]
    assert '<input type="hidden" name="q" value="builds">' in r.text  # the filter form keeps the search
    listing = staff_client.get("/admin/counters/counter/").text
    assert '<a href="/admin/counters/counter/?owner=alice" title="Only the counters of alice">alice</a>' in listing


def test_a_users_page_shows_their_counters_with_live_values_and_their_keys(staff_client, alice, redis_round_trips):
    services.counter_create(owner_id=alice.id, name="invoices", value=41)
    api_key_create(user_id=alice.id, name="billing")
    redis_round_trips.clear()
    r = staff_client.get(f"/admin/auth/user/{alice.pk}/change/")
    assert r.status_code == 200
    values = re.findall(r'<td class="field-value">\s*<p>([^<]*)</p>', r.text)
    assert values == ["0", "41"]  # default, invoices
    assert redis_round_trips == one_read_per_primary(counter_key(alice.id, "default"))
    assert "billing" in r.text


def test_a_series_shows_its_settings_its_periods_and_its_print(staff_client, alice):
    from datetime import date

    from counters.series import Series

    services.counter_create(owner_id=alice.id, name="sales", series=Series.of("yearly", "UTC", "S{yy}-{value:03}"))
    for day in [date(2025, 5, 1), date(2026, 5, 1), date(2026, 5, 2)]:
        services.counter_next(owner_id=alice.id, name="sales", day=day)
    row = Counter.objects.get(owner=alice, name="sales")
    r = staff_client.get(f"/admin/counters/counter/{row.pk}/change/")
    assert r.status_code == 200
    assert re.search(r'field-reset">.*?<div class="readonly">yearly</div>', r.text, re.S)
    assert re.search(r'field-format">.*?<div class="readonly">S\{yy\}-\{value:03\}</div>', r.text, re.S)
    periods = re.search(r'field-periods">.*?<tbody>(.*?)</tbody>', r.text, re.S).group(1)
    assert re.findall(r"<tr><td>(\d+)</td><td>(\d+)</td><td>(\d+)</td></tr>", periods) == [
        ("2026", "2", "4"),  # each period's reservation: its first number and the block of 3
        ("2025", "1", "4"),
    ]
    listed = staff_client.get("/admin/counters/counter/?q=sales").text
    [cell] = value_cells(listed)
    period = services.counter_get(owner_id=alice.id, name="sales").period
    assert cell.startswith(f"{2 if period == '2026' else 0} (S{period[2:]}-")
