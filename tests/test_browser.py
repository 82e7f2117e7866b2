"""The web app, the admin and the browsable API in a real, headless Chromium.

Debian's chromium and chromium-driver, driven by Selenium against pytest-django's live server,
with the session's real Redis and a real database. Each flow saves screenshots (PNG) under
tests/screenshots/ (or $SCREENSHOTS_DIR) for a person to look at. Without Chromium the whole
module is skipped with one line saying why; `.ci/run` installs it.
"""

import base64
import datetime
import json
import os
import re
import shutil
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.staticfiles.handlers import StaticFilesHandler

from accounts.models import ApiKey
from accounts.services import api_key_create
from counters import services
from counters.models import Counter
from counters.series import Series
from tests.helpers import redis_value

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
    pytest.skip(
        f"browser tests need {CHROMIUM} and {CHROMEDRIVER}: apt-get install chromium chromium-driver (.ci/run does)",
        allow_module_level=True,
    )

from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import TimeoutException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.select import Select  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "a-long-enough-passphrase"
NOT_A_WHOLE_NUMBER = "Must be a whole number (a JSON integer, or ASCII digits in a form)."  # the API's words
SCREENSHOTS = Path(os.environ.get("SCREENSHOTS_DIR", Path(__file__).parent / "screenshots"))
LAPTOP = (1280, 900)
PHONE = (390, 844)


@pytest.fixture(scope="module")
def driver():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="incrementific-chromium-")
    for flag in [
        "--headless=new",
        "--no-sandbox",  # root in a container has no user namespaces for the sandbox
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        # This machine's network is closed: without these, Chromium keeps dialling Google.
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-features=Translate,OptimizationHints,MediaRouter",
        f"--user-data-dir={profile}",
        f"--window-size={LAPTOP[0]},{LAPTOP[1]}",
    ]:
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield browser
    browser.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def site(live_server, driver, monkeypatch):
    """The browser on the live server, logged out, at laptop size. Static files go through
    whitenoise from the collected, hashed files, as in production (the live server's own static
    handler only knows unhashed names)."""
    monkeypatch.setattr(StaticFilesHandler, "_should_handle", lambda self, path: False)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    driver.set_window_size(*LAPTOP)
    driver.get(live_server.url + "/healthz")
    driver.delete_all_cookies()
    return Site(driver, live_server.url)


class Site:
    def __init__(self, driver, url: str):
        self.driver = driver
        self.url = url

    def visit(self, path: str):
        self.driver.get(self.url + path)

    def wait(self, condition, timeout: float = 10):
        return WebDriverWait(self.driver, timeout).until(condition)

    def find(self, css: str):
        return self.wait(EC.visibility_of_element_located((By.CSS_SELECTOR, css)))

    def labelled(self, label: str):
        """The input a visible <label> names, found the way a person finds it."""
        for element in self.driver.find_elements(By.TAG_NAME, "label"):
            if element.text.strip() == label:
                return self.driver.find_element(By.ID, element.get_attribute("for"))
        raise AssertionError(f"no input is labelled {label!r}")

    def fill(self, label: str, text: str):
        field = self.labelled(label)
        field.clear()
        field.send_keys(text)

    def press(self, text: str, within: str = "main"):
        """Clicks the button or link named `text`, as a screen reader names it (its text, hidden
        parts included: the page says "Next" and a screen reader "Next value of invoices"),
        and waits until the browser has left the page."""
        scope = self.driver.find_element(By.CSS_SELECTOR, within)
        for element in scope.find_elements(By.CSS_SELECTOR, "button, a, input[type=submit]"):
            name = " ".join((element.get_attribute("textContent") or element.get_attribute("value") or "").split())
            if name == text and element.is_displayed():
                with self.leaving():
                    element.click()
                return
        raise AssertionError(f"no button or link {text!r} in {within}")

    @contextmanager
    def leaving(self):
        """Waits, after the block, until the browser shows a new, loaded document: a page, or
        one the browsable API wrote over the old one. (A mark on the old document rather than
        a stale element: chromedriver sometimes reports an element of a replaced document as an
        inspector error instead of as stale.)"""
        self.driver.execute_script("document.documentElement.dataset.leaving = 'yes';")
        yield
        self.wait(
            lambda d: d.execute_script(
                "return !document.documentElement.dataset.leaving && document.readyState === 'complete';"
            )
        )

    def text(self, css: str = "main") -> str:
        return self.find(css).text

    def counter_value(self, name: str) -> str:
        return self.find(f'[id="c-{name}"] [data-value]').text

    def errors_of(self, label: str) -> list[str]:
        field = self.labelled(label)
        described = (field.get_attribute("aria-describedby") or "").split()
        return [
            item.text
            for ident in described
            if ident.endswith("-errors")
            for item in self.driver.find_elements(By.CSS_SELECTOR, f'[id="{ident}"] li')
        ]

    def console_errors(self) -> list[str]:
        """What the browser logged as errors since the last call: CSP refusals, script errors,
        and files that failed to load. (Chromium also logs a page's own 4xx status, which the
        flows cause on purpose: a refused form is a 400; those are left out.)"""
        return [
            entry["message"]
            for entry in self.driver.get_log("browser")
            if entry["level"] == "SEVERE"
            and ("Failed to load resource" not in entry["message"] or "/static/" in entry["message"])
        ]

    def screenshot(self, name: str) -> Path:
        """The whole page, not only the window, as a PNG under SCREENSHOTS."""
        size = self.driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        shot = self.driver.execute_cdp_cmd(
            "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
        )
        path = SCREENSHOTS / f"{name}.png"
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def api(self, method: str, path: str, key: str) -> tuple[int, dict]:
        request = urllib.request.Request(
            self.url + path, method=method, headers={"Authorization": f"Bearer {key}", "Accept": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())


def sign_up(site: Site, username: str):
    site.visit("/")
    site.press("Create an account")
    site.fill("Username", username)
    site.fill("Password", PASSWORD)
    site.press("Sign up")
    site.wait(EC.title_contains("Your counters"))


def test_sign_up_create_next_set_delete_log_out_and_in(site):
    site.visit("/")
    assert "Numbers that never repeat." in site.text("h1")
    site.screenshot("01-landing")

    # A password the API refuses is refused here with the API's words, next to the field.
    site.press("Create an account")
    site.fill("Username", "carol")
    site.fill("Password", "12345678")
    site.press("Sign up")
    site.wait(EC.title_contains("Sign up"))
    assert site.errors_of("Password") == ["This password is too common.", "This password is entirely numeric."]
    assert not get_user_model().objects.filter(username="carol").exists()
    site.screenshot("02-signup-error")

    site.fill("Password", PASSWORD)
    site.press("Sign up")
    site.wait(EC.title_contains("Your counters"))
    assert "Welcome, carol." in site.text(".messages")
    assert site.counter_value("default") == "0"
    carol = get_user_model().objects.get(username="carol")

    site.fill("Name", "invoices")
    site.fill("Starting value (optional)", "41")
    site.press("Create")
    site.wait(EC.text_to_be_present_in_element((By.CSS_SELECTOR, ".messages"), "Created “invoices” at 41."))
    assert site.counter_value("invoices") == "41"

    for expected in (42, 43, 44):
        site.press("Next value of invoices", within='[id="c-invoices"]')
        site.wait(EC.text_to_be_present_in_element((By.CSS_SELECTOR, ".messages"), f"invoices: {expected}"))
        assert site.counter_value("invoices") == str(expected)
    assert redis_value(carol, "invoices") == 44
    site.screenshot("03-counters-after-next")

    # A set the API would refuse changes nothing, and says why next to the box.
    site.fill("New value of invoices", "1e3")
    site.press("Set invoices", within='[id="c-invoices"]')
    site.wait(EC.presence_of_element_located((By.CSS_SELECTOR, '[id="set-invoices-errors"]')))
    assert (
        site.text('[id="set-invoices-errors"]') == "Must be a whole number (a JSON integer, or ASCII digits in a form)."
    )
    assert site.labelled("New value of invoices").get_attribute("value") == "1e3"
    assert redis_value(carol, "invoices") == 44
    site.screenshot("04-set-error")

    site.fill("New value of invoices", "1000")
    site.press("Set invoices", within='[id="c-invoices"]')
    site.wait(EC.text_to_be_present_in_element((By.CSS_SELECTOR, ".messages"), "Set “invoices” to 1000."))
    assert site.counter_value("invoices") == "1000"
    assert redis_value(carol, "invoices") == 1000

    site.press("Delete invoices", within='[id="c-invoices"]')
    site.wait(EC.title_contains("Delete invoices"))
    assert "Its value is 1000." in site.text()
    site.screenshot("05-delete-confirm")
    site.press("Delete counter")
    site.wait(EC.text_to_be_present_in_element((By.CSS_SELECTOR, ".messages"), "Deleted “invoices”."))
    assert site.driver.find_elements(By.CSS_SELECTOR, '[id="c-invoices"]') == []
    assert list(Counter.objects.filter(owner=carol).values_list("name", flat=True)) == ["default"]
    assert redis_value(carol, "invoices") is None

    site.press("Log out", within="header")
    site.wait(EC.title_contains("Log in"))
    assert "You are logged out." in site.text(".messages")
    site.visit("/keys")  # a page that needs a login sends the browser to log in first
    site.wait(EC.title_contains("Log in"))
    site.fill("Username", "carol")
    site.fill("Password", "not-the-password")
    site.press("Log in", within="main")
    site.wait(EC.presence_of_element_located((By.CSS_SELECTOR, "[role=alert]")))
    assert site.text("[role=alert]") == "No active account found with the given credentials"
    site.screenshot("06-login-error")
    site.fill("Password", PASSWORD)
    site.press("Log in", within="main")
    site.wait(EC.title_contains("API keys"))  # back where the login began
    # Nothing failed to load, and the Content-Security-Policy refused nothing the pages use.
    assert site.console_errors() == []


def test_an_api_key_is_shown_once_copied_works_and_is_revoked(site):
    sign_up(site, "dave")
    site.press("API keys", within="header")
    site.wait(EC.title_contains("API keys"))
    site.fill("What it is for", "")
    site.press("Create key")
    site.wait(EC.title_contains("API keys"))
    assert site.errors_of("What it is for") == ["This field may not be blank."]

    site.fill("What it is for", "billing server")
    site.press("Create key")
    secret = site.find("#new-key-value").get_attribute("value")
    assert re.fullmatch(r"inc_\d+\.[A-Za-z0-9_-]{43}", secret), secret
    site.screenshot("07-new-key")
    copy = site.driver.find_element(By.CSS_SELECTOR, 'button[data-copy="#new-key-value"]')
    copy.click()
    site.wait(EC.text_to_be_present_in_element((By.CSS_SELECTOR, 'button[data-copy="#new-key-value"]'), "Copied"))

    # The key works from code, as the page's curl line says.
    assert f"Authorization: Bearer {secret}" in site.text("#new-key-curl")
    assert site.api("POST", "/api/counters/default/next", secret)[0] == 200

    # Shown once: the list shows its prefix only, and a reload does not show it again.
    site.visit("/keys")
    assert secret not in site.driver.page_source
    assert f"{secret[: secret.index('.') + 9]}…" in site.text("table")

    site.press("Revoke billing server", within="table")
    site.wait(EC.title_contains("Revoke a key"))
    site.press("Revoke key")
    site.wait(EC.text_to_be_present_in_element((By.CSS_SELECTOR, ".messages"), "Revoked the key “billing server”"))
    assert ApiKey.objects.count() == 0
    status, body = site.api("POST", "/api/counters/default/next", secret)
    assert (status, body) == (401, {"detail": "Invalid or revoked API key.", "code": "invalid_api_key"})


def test_the_keyboard_alone_takes_the_next_value_and_focus_is_visible(site):
    sign_up(site, "erin")
    body = site.driver.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.TAB)
    first = site.driver.switch_to.active_element
    assert first.text == "Skip to content"
    # Tab until the Next button of "default" holds the focus, then press Enter.
    for _ in range(30):
        site.driver.switch_to.active_element.send_keys(Keys.TAB)
        focused = site.driver.switch_to.active_element
        if focused.get_attribute("textContent").strip() == "Next value of default":
            break
    else:
        raise AssertionError("Tab never reached the Next button")
    outline = site.driver.execute_script(
        "const s = getComputedStyle(document.activeElement); return [s.outlineStyle, s.outlineWidth];"
    )
    assert outline == ["solid", "3px"]
    site.screenshot("08-keyboard-focus")
    with site.leaving():
        focused.send_keys(Keys.ENTER)
    site.wait(EC.text_to_be_present_in_element((By.CSS_SELECTOR, ".messages"), "default: 1"))
    erin = get_user_model().objects.get(username="erin")
    assert redis_value(erin, "default") == 1


@pytest.mark.parametrize("size", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_after_next_far_down_the_list_the_header_stays_in_view_above_the_counter(site, size):
    sign_up(site, f"gwen{size[0]}")
    gwen = get_user_model().objects.get(username=f"gwen{size[0]}")
    for n in range(25):
        services.counter_create(owner_id=gwen.id, name=f"c{n:02}")
    site.driver.set_window_size(*size)
    site.visit("/")
    site.press("Next value of c24", within='[id="c-c24"]')
    site.wait(EC.text_to_be_present_in_element((By.CSS_SELECTOR, ".messages"), "c24: 1"))
    header, row, scrolled = site.driver.execute_script(
        "const box = (e) => e.getBoundingClientRect();"
        "return [box(document.querySelector('header.bar')).toJSON(),"
        " box(document.getElementById('c-c24')).toJSON(), window.scrollY];"
    )
    site.screenshot(f"14-after-next-far-down-{size[0]}")
    assert scrolled > 0  # the page did go to the counter's row, far down the list
    assert header["top"] == 0 and header["height"] > 0  # the header is in view
    assert header["bottom"] <= row["top"] < size[1]  # and the row is below it, not hidden under it


def test_a_typed_logout_address_asks_and_logs_out(site):
    sign_up(site, "hana")
    site.visit("/logout")
    site.wait(EC.title_contains("Log out"))
    assert site.text("h1") == "Log out?"
    assert "You are logged in as hana." in site.text()
    site.screenshot("15-logout-page")
    site.press("Log out")
    site.wait(EC.title_contains("Log in"))
    assert "You are logged out." in site.text(".messages")


def test_sign_up_shows_every_field_error_at_once(site, alice):
    site.visit("/signup")
    site.fill("Username", "alice")  # taken
    site.fill("Password", "12345678")
    site.press("Sign up")
    site.wait(EC.title_contains("Sign up"))
    assert site.errors_of("Username") == ["A user with that username already exists."]
    assert site.errors_of("Password") == ["This password is too common.", "This password is entirely numeric."]
    site.screenshot("16-signup-every-error")


def test_a_series_is_made_with_a_live_example_that_prints_as_the_service_does(site):
    sign_up(site, "gina")
    site.visit("/")
    site.find("details.series-settings summary").click()
    today = datetime.date.today()  # the browser's and this process's: the same machine, the same zone
    for template in ["INV-{year}-{value:05}", "{yy}{month}{day}/{value}", "{{x}} {value:020}", "{nope}", "a}"]:
        site.fill("Format (optional)", template)
        try:
            expected = Series.of("yearly", "UTC", template).render(42, today)
        except Exception:
            expected = "not a valid format yet"
        assert site.text("#format-example") == expected, template
    Select(site.labelled("Starts again")).select_by_value("yearly")
    site.fill("Time zone", "Europe/Paris")
    site.fill("Name", "sales")
    site.fill("Format (optional)", "INV-{year}-{value:05}")
    site.screenshot("17-series-form")
    site.press("Create")
    site.press("Next value of sales")
    assert site.counter_value("sales") == f"INV-{today.year}-00001"
    assert site.console_errors() == []
    site.screenshot("18-series-listed")


def test_the_counters_page_fits_a_phone(site):
    sign_up(site, "frank")
    site.driver.set_window_size(*PHONE)
    site.visit("/")
    overflow = site.driver.execute_script("return document.documentElement.scrollWidth - window.innerWidth;")
    assert overflow <= 0
    for label in ("Name", "New value of default"):
        site.screenshot("09-phone")
        assert site.labelled(label).size["width"] > 200  # inputs span the narrow screen
    site.screenshot("09-phone")


def test_admin_shows_live_values_and_sets_them(site, alice, bob):
    get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    services.counter_set(owner_id=alice.id, name="default", value=7)
    services.counter_create(owner_id=bob.id, name="builds", value=12)
    site.visit("/admin/")
    site.find("#id_username").send_keys("root")
    site.find("#id_password").send_keys(PASSWORD + Keys.ENTER)
    site.wait(EC.title_contains("Users, counters and keys"))
    site.visit("/admin/counters/counter/")
    values = lambda: [cell.text for cell in site.driver.find_elements(By.CSS_SELECTOR, "td.field-value")]  # noqa: E731
    assert values() == ["7", "12", "0"]  # alice/default, bob/builds, bob/default
    site.screenshot("10-admin-counters")

    for checkbox in site.driver.find_elements(By.CSS_SELECTOR, "input.action-select")[:2]:
        checkbox.click()
    Select(site.find("select[name=action]")).select_by_value("set_value")
    with site.leaving():
        site.driver.find_element(By.CSS_SELECTOR, "button[name=index]").click()
    site.wait(EC.title_contains("Set counters to a value"))
    site.find("#id_value").send_keys("500")
    site.screenshot("11-admin-set-form")
    with site.leaving():
        site.driver.find_element(By.CSS_SELECTOR, "input[name=apply]").click()
    site.wait(EC.text_to_be_present_in_element((By.CSS_SELECTOR, ".messagelist"), "Set 2 counter(s) to 500."))
    assert values() == ["500", "500", "0"]
    assert (redis_value(alice, "default"), redis_value(bob, "builds"), redis_value(bob, "default")) == (500, 500, 0)


def test_browsable_api_log_in_and_post_next(site, alice):
    site.visit("/api-auth/login/?next=/api/counters/default/next")
    site.find("#id_username").send_keys("alice")
    site.find("#id_password").send_keys(PASSWORD + Keys.ENTER)
    site.wait(EC.title_contains("Next value · incrementific API"))
    site.find("form#post-generic-content-form, form[action='/api/counters/default/next']")
    buttons = [b for b in site.driver.find_elements(By.CSS_SELECTOR, "button") if b.text.strip() == "POST"]
    assert buttons, "the browsable API shows a POST button for next"
    with site.leaving():
        buttons[0].click()
    try:
        site.wait(EC.text_to_be_present_in_element((By.CSS_SELECTOR, ".response-info"), "HTTP 200 OK"))
    except TimeoutException:
        raise AssertionError(site.text("body")) from None
    assert '"value": 1' in site.text(".response-info")
    assert redis_value(alice, "default") == 1
    site.screenshot("12-browsable-api-next")

    # The set form (PUT) follows the API's input rules: "1.0" is refused, digits are a number.
    site.visit("/api/counters/default")
    for typed, status, shown in [
        ("1.0", "HTTP 400 Bad Request", NOT_A_WHOLE_NUMBER),
        ("77", "HTTP 200 OK", '"value": 77'),
    ]:
        form = site.find("#put-object-form form[data-method=PUT]")
        field = form.find_element(By.NAME, "value")
        field.clear()
        field.send_keys(typed)
        with site.leaving():
            form.find_element(By.CSS_SELECTOR, "button.js-tooltip").click()  # PUT
        assert status in site.text(".response-info")
        assert shown in site.text(".response-info")
    site.screenshot("13-browsable-api-set")
    assert redis_value(alice, "default") == 77


# For each visible input, button and link: its label or name, and the contrast of its text
# against the background it is drawn on (WCAG's formula; the first opaque background up).
AUDIT = """
const luminance = (rgb) => {
  const [r, g, b] = rgb.map((c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
};
const parse = (color) => color.match(/[\\d.]+/g).map(Number);
const background = (el) => {
  for (; el; el = el.parentElement) {
    const c = parse(getComputedStyle(el).backgroundColor);
    if (c.length === 3 || c[3] > 0) return c.slice(0, 3);
  }
  return [255, 255, 255];
};
const contrast = (el) => {
  const [a, b] = [luminance(parse(getComputedStyle(el).color).slice(0, 3)), luminance(background(el))];
  return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
};
const shown = (el) => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== "hidden";
const problems = [];
for (const input of document.querySelectorAll("input:not([type=hidden])")) {
  if (!shown(input)) continue;
  const label = input.labels && input.labels.length ? input.labels[0].textContent : input.getAttribute("aria-label");
  if (!(label || "").trim()) problems.push(`input ${input.name} has no label`);
}
for (const el of document.querySelectorAll("button, a, label, p, li, h1, h2, h3, td, th, code, dd, dt")) {
  if (!shown(el) || el.closest(".visually-hidden, .skip")) continue;
  if ((el.matches("button, a")) && !el.textContent.trim()) problems.push(`${el.tagName} without a name`);
  const ratio = contrast(el);
  if (el.textContent.trim() && ratio < 4.5) {
    problems.push(`${el.tagName} "${el.textContent.trim().slice(0, 30)}" contrast ${ratio.toFixed(2)}`);
  }
}
return problems;
"""


def test_every_page_labels_its_inputs_names_its_buttons_and_has_enough_contrast(site, alice):
    services.counter_create(owner_id=alice.id, name="invoices", value=3)
    key, _ = api_key_create(user_id=alice.id, name="ci")
    pages = ["/", "/signup", "/login"]
    for path in pages:
        site.visit(path)
        assert site.driver.execute_script(AUDIT) == [], path
    site.visit("/login")
    site.fill("Username", "alice")
    site.fill("Password", PASSWORD)
    site.press("Log in", within="main")
    site.wait(EC.title_contains("Your counters"))
    for path in ["/", "/keys", "/account", "/counters/invoices/delete", f"/keys/{key.pk}/revoke"]:
        site.visit(path)
        assert site.driver.title and "Not found" not in site.driver.title, path
        assert site.driver.execute_script(AUDIT) == [], path
    # An error state too: the red of an error against its own background.
    site.visit("/")
    site.fill("New value of invoices", "x")
    site.press("Set invoices", within='[id="c-invoices"]')
    assert site.driver.execute_script(AUDIT) == []


FRONT_END = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>The prototype's front end</title></head>
<body><h1>Counter</h1><p>next: <output id="next"></output>, <output id="again"></output></p>
<p>current: <output id="current"></output></p><p id="error"></p>
<script>
const API = "%(api)s";
async function main() {
  const registered = await fetch(API + "/v1/register", {
    method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({username: "vue-client", password: "correct-horse-battery"}),
  }).then((r) => r.json());
  const auth = {headers: {Authorization: "Bearer " + registered.apiKey}};
  const call = (path) => fetch(API + path, auth).then((r) => r.json());
  for (const id of ["next", "again"]) {
    document.getElementById(id).textContent = (await call("/v1/next")).result;
  }
  document.getElementById("current").textContent = (await call("/v1/current")).result;
}
main().catch((e) => { document.getElementById("error").textContent = String(e); });
</script></body></html>
"""


def test_the_prototypes_front_end_works_from_another_origin_against_make_run(site, tmp_path):
    """The prototype's browser client, served from an origin of its own (here another port), calls
    /v1/register, /v1/next and /v1/current with fetch against a plain `make run`, whose default
    lets any origin in: the preflights and the answers carry what the browser needs."""
    import functools
    import http.server
    import threading

    from tests.test_serve import Launcher

    service = Launcher(tmp_path / "var")
    pages = tmp_path / "front-end"
    pages.mkdir()
    (pages / "index.html").write_text(FRONT_END % {"api": f"http://127.0.0.1:{service.port}"})
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(pages))
    front_end = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=front_end.serve_forever, daemon=True).start()
    try:
        service.wait_until_serving()
        site.driver.get(f"http://127.0.0.1:{front_end.server_address[1]}/index.html")
        site.wait(lambda driver: driver.find_element(By.ID, "current").text or driver.find_element(By.ID, "error").text)
        assert site.driver.find_element(By.ID, "error").text == ""
        assert [site.driver.find_element(By.ID, id).text for id in ("next", "again", "current")] == ["1", "2", "2"]
        site.screenshot("17-prototype-front-end-cross-origin")
    finally:
        front_end.shutdown()
        service.cleanup()


def test_a_next_only_key_for_one_counter_is_made_in_the_key_form(site):
    sign_up(site, "ivan")
    ivan = get_user_model().objects.get(username="ivan")
    services.counter_create(owner_id=ivan.id, name="builds")
    site.visit("/keys")
    site.fill("What it is for", "build server")
    site.driver.find_element(By.CSS_SELECTOR, "input[name=scope][value=some]").click()
    site.driver.find_element(By.CSS_SELECTOR, "input[name=counters][value=builds]").click()
    for action in ("read", "set", "create", "delete"):
        site.driver.find_element(By.CSS_SELECTOR, f"input[name=actions][value={action}]").click()
    site.press("Create key")
    site.wait(EC.presence_of_element_located((By.ID, "new-key-value")))
    secret = site.find("#new-key-value").get_attribute("value")
    assert "next on builds" in site.text("table")
    site.screenshot("18-scoped-key")
    assert site.api("POST", "/api/counters/builds/next", secret)[0] == 200
    status, body = site.api("POST", "/api/counters/default/next", secret)
    assert (status, body["code"]) == (403, "api_key_scope")
    assert ApiKey.objects.get(user=ivan).actions == ["next"]


def test_two_quick_clicks_on_next_take_one_value(site, monkeypatch):
    """The first click's answer is slow (a second on the server), so the second click sends the
    form again before it arrives, as a person does: the browser drops the first answer and shows
    the second. The form's key makes both sends one change."""
    sign_up(site, "judy")
    judy = get_user_model().objects.get(username="judy")
    real, calls = services.counter_next, []

    def slow_first(**kwargs):
        calls.append(kwargs)
        if len(calls) == 1:
            time.sleep(1.0)
        return real(**kwargs)

    monkeypatch.setattr("counters.web.services.counter_next", slow_first)
    button = next(
        b for b in site.driver.find_elements(By.CSS_SELECTOR, '[id="c-default"] button')
        if b.get_attribute("textContent").strip() == "Next value of default"
    )  # fmt: skip
    # Selenium's own click waits for the page it leads to: a person does not.
    site.driver.execute_script("const b = arguments[0]; b.click(); setTimeout(() => b.click(), 300);", button)
    site.wait(EC.text_to_be_present_in_element((By.CSS_SELECTOR, ".messages"), "default: 1"))
    time.sleep(1.0)  # the first send's answer, which nobody sees, has been made by now
    assert len(calls) == 2  # both sends reached the server
    assert site.counter_value("default") == "1"
    assert redis_value(judy, "default") == 1
    site.screenshot("19-double-click-next")


def test_the_browsable_apis_next_form_sent_twice_takes_one_value(site, alice, monkeypatch):
    site.visit("/api-auth/login/?next=/api/counters/default/next")
    site.find("#id_username").send_keys("alice")
    site.find("#id_password").send_keys(PASSWORD + Keys.ENTER)
    site.wait(EC.title_contains("Next value · incrementific API"))
    form = site.find("form[action='/api/counters/default/next'][method='POST']")
    key = form.find_element(By.NAME, "_idempotency_key").get_attribute("value")
    assert re.fullmatch(r"[0-9a-f]{32}", key)
    real, calls = services.counter_next, []

    def slow_first(**kwargs):  # the first send's answer is slow, so the second is sent before it
        calls.append(kwargs)
        if len(calls) == 1:
            time.sleep(1.0)
        return real(**kwargs)

    monkeypatch.setattr(services, "counter_next", slow_first)
    site.driver.execute_script("const f = arguments[0]; f.submit(); setTimeout(() => f.submit(), 300);", form)
    site.wait(EC.text_to_be_present_in_element((By.CSS_SELECTOR, ".response-info"), "HTTP 200 OK"))
    time.sleep(1.0)
    assert len(calls) == 2  # both sends reached the server
    assert '"value": 1' in site.text(".response-info")
    assert redis_value(alice, "default") == 1


def test_log_in_with_the_provider_and_land_on_the_dashboard(site, tmp_path, settings):
    """Single sign-on in the browser: our log-in page, the provider's own pages (panva's
    oidc-provider, tests/harness/oidc.py: any password), and back on the dashboard with a new account."""
    from accounts import oidc
    from tests.harness import oidc as harness

    reason = harness.missing()
    if reason:
        pytest.skip(reason)
    with harness.Provider(tmp_path / "provider", site.url + "/oidc/callback/") as provider:
        settings.OIDC_ISSUER = provider.issuer
        settings.OIDC_CLIENT_ID, settings.OIDC_CLIENT_SECRET = harness.CLIENT_ID, harness.CLIENT_SECRET
        settings.OIDC_PROVIDER_NAME = "Example ID"
        oidc._discovery.__init__()
        site.visit("/login")
        site.screenshot("40-login-with-provider")
        site.press("Log in with Example ID")
        assert site.driver.current_url.startswith(provider.issuer + "/interaction/")
        site.driver.find_element(By.NAME, "login").send_keys("ada")
        site.driver.find_element(By.NAME, "password").send_keys("anything")
        site.screenshot("41-provider-login")
        with site.leaving():
            site.driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        if "/interaction/" in site.driver.current_url:  # the provider asks to consent
            with site.leaving():
                site.driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        site.wait(EC.title_contains("Your counters"))
        assert "Welcome, ada." in site.text(".messages")
        assert site.counter_value("default") == "0"
        site.screenshot("42-provider-dashboard")
        user = get_user_model().objects.get(username="ada")
        assert not user.has_usable_password()
        assert user.provider_identities.get().subject == "ada"
        assert site.console_errors() == []
