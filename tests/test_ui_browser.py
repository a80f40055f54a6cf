"""The clinician page in a real browser: Debian's chromium, driven headless by Playwright.

The app (shipped model, fresh SQLite store) is served by werkzeug on a random loopback port in a
thread for this module. Pages are driven through their labels, as a person (or a screen reader)
finds the controls. Screenshots of the form and the results are saved under ``out/ui/`` (ignored
by git) for a person to look at. Waits are explicit (``expect``), never sleeps.
"""

from __future__ import annotations

import json
import os
import re
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cds.features import BY_NAME, ROWS
from service import create_app
from tests.conftest import ROOT, load_example
from tests.service_fixtures import hook_call
from tests.test_service_smart import CLIENT_ID, FakeEhr

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = ROOT / "out" / "ui"
TIMEOUT_MS = 15_000
UUID_PATH = re.compile(r"/ui/assessments/[0-9a-f-]{36}$")

if not CHROMIUM.exists():
    reason = "Debian's chromium is not installed (make test installs it)"
    if os.environ.get("CI"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason, allow_module_level=True)

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect
pytestmark = pytest.mark.shipped


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app on 127.0.0.1:<free port>, shut down after the module."""
    from werkzeug.serving import make_server

    work = tmp_path_factory.mktemp("ui-browser")
    app = create_app({"MODEL": "production", "DATABASE_URL": f"sqlite:///{work / 'store.sqlite3'}",
                      "PSEUDONYM_SECRET": "browser-test", "AUTH": "off", "UI_AUTH": "off",
                      "ENVIRONMENT": "development"})
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    base = f"http://127.0.0.1:{httpd.server_port}"
    app.config["BASE_URL"] = base
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield base
    finally:
        httpd.shutdown()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=TIMEOUT_MS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page that records Content-Security-Policy violations in ``page.csp_violations``."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    p = context.new_page()
    violations: list[str] = []
    p.on("console", lambda m: violations.append(m.text)
         if "Content Security Policy" in m.text else None)
    p.csp_violations = violations
    try:
        yield p
    finally:
        context.close()


def shot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def fill_record(page: Any, record: dict[str, Any]) -> None:
    """Enter a record through the form's labels: checkboxes, radios and text boxes."""
    for name, value in record.items():
        if name == "patient_id":
            page.get_by_label("Patient reference").fill(str(value))
            continue
        f = BY_NAME[name]
        box = page.locator(f"#w-{name}")
        if f is ROWS:
            for v in value:
                box.get_by_label(f.allowed_labels[f.allowed.index(v)], exact=True).check()
        elif f.kind == "boolean":
            box.get_by_label("Yes" if value else "No", exact=True).check()
        elif f.kind == "category":
            box.get_by_label(f.allowed_labels[f.allowed.index(value)], exact=True).check()
        else:
            box.get_by_role("textbox").fill(str(value))


def submit(page: Any) -> None:
    page.get_by_role("button", name="Estimate").click()


def test_hip_driven_patient_sees_probability_chart_and_factors(server: str, page: Any) -> None:
    page.goto(f"{server}/ui/")
    expect(page.get_by_role("heading", name="New assessment")).to_be_visible()
    fill_record(page, load_example("runner_pfp_hip_driven"))
    shot(page, "form-filled")
    submit(page)
    page.wait_for_url(UUID_PATH)
    assert "?" not in page.url  # no patient data in the URL: an opaque id only
    section = page.locator("section.complaint").first
    expect(section.get_by_role("heading", name="Patellofemoral (anterior knee) pain")).to_be_visible()
    expect(section.locator(".pct")).to_have_text(re.compile(r"^\d{1,3}%$"))
    expect(section.locator(".band")).to_have_text(re.compile("^(Low|Moderate|High)$"))
    expect(section.locator("svg.prob-scale")).to_be_visible()
    chart = section.locator("svg.waterfall")
    expect(chart).to_be_visible()
    assert chart.locator("g.wf-row").count() >= 5
    expect(chart).to_contain_text("Hip abduction deficit against the other side")
    expect(section.locator("ol.why li")).to_have_count(3)
    expect(section.locator("p.start")).to_contain_text("starting point for patellofemoral")
    expect(chart).to_contain_text("pts")
    expect(section.get_by_role("heading", name="Not recorded")).to_be_visible()
    expect(page.locator(".sim-note")).to_have_count(1)  # one notice, above the result
    expect(page.locator(".sim-note")).to_contain_text("SIMULATED cohort")
    shot(page, "result-hip-driven")
    assert page.csp_violations == []


def test_red_flag_patient_sees_referral_banner(server: str, page: Any) -> None:
    page.goto(f"{server}/ui/")
    fill_record(page, load_example("red_flag_trauma_swelling"))
    submit(page)
    page.wait_for_url(UUID_PATH)
    banner = page.get_by_role("alert")
    expect(banner).to_contain_text("Refer / rule out serious pathology first")
    expect(banner).to_contain_text("Trauma with rapid swelling")
    # a red flag means no score: nothing of an estimate is on the page
    expect(page.locator(".pct")).to_have_count(0)
    expect(page.locator("svg.waterfall")).to_have_count(0)
    shot(page, "result-red-flag")


def test_invalid_value_shows_the_rule_beside_the_field(server: str, page: Any) -> None:
    page.goto(f"{server}/ui/")
    fill_record(page, {"complaints": ["itbs"], "age_years": 9, "sex": "male",
                       "hip_abduction_left_nm_per_kg": "strong"})
    submit(page)
    age_error = page.locator("#e-age_years")
    expect(age_error).to_contain_text("the model was built on patients in this range only")
    expect(page.locator("#e-hip_abduction_left_nm_per_kg")).to_have_text(
        "Error: Enter a number, such as 1.25")
    expect(page.locator("#f-age_years")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#f-age_years")).to_have_value("9")  # what was typed is kept
    expect(page.locator(".error-summary")).to_be_focused()
    shot(page, "form-invalid")
    page.locator(".error-summary a").first.click()
    expect(page.locator("#f-age_years")).to_be_focused()


def test_a_finding_is_dimmed_while_no_chosen_complaint_or_activity_needs_it(
        server: str, page: Any) -> None:
    page.goto(f"{server}/ui/")
    effusion, ober = page.locator("#w-knee_effusion"), page.locator("#w-ober_test_positive")
    expect(effusion).not_to_have_class(re.compile("not-applicable"))  # nothing chosen yet
    fill_record(page, {"complaints": ["lbp"]})
    expect(effusion).to_have_class(re.compile("not-applicable"))  # the knee: not for the back
    expect(ober).to_have_class(re.compile("not-applicable"))
    fill_record(page, {"complaints": ["pfp"]})  # now the knee too: effusion applies, Ober not
    expect(effusion).not_to_have_class(re.compile("not-applicable"))
    expect(ober).to_have_class(re.compile("not-applicable"))
    fill_record(page, {"activity_profile": "cyclist"})
    expect(page.locator("#w-pain_worse_late_in_activity")).to_have_class(
        re.compile("not-applicable"))
    expect(page.locator("#w-training_load_change_recent")).not_to_have_class(
        re.compile("not-applicable"))


def test_form_works_from_the_keyboard(server: str, page: Any) -> None:
    page.goto(f"{server}/ui/")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.locator("#f-complaints").focus()
    page.keyboard.press("Space")
    expect(page.locator("#f-complaints")).to_be_checked()
    page.locator("#f-age_years").focus()
    page.keyboard.type("41")
    page.locator("#f-sex").focus()  # first radio of the group: Female
    page.keyboard.press("Space")
    page.locator("#f-bmi_kg_m2").focus()
    page.keyboard.type("24.5")
    page.keyboard.press("Enter")  # a text box submits its form
    page.wait_for_url(UUID_PATH)
    expect(page.locator(".pct").first).to_be_visible()


def test_every_control_has_a_label(server: str, page: Any) -> None:
    page.goto(f"{server}/ui/")
    unlabelled = page.evaluate("""() => [...document.querySelectorAll(
        'input:not([type=hidden]), select, textarea, button')]
        .filter(el => el.labels !== null && el.tagName !== 'BUTTON' ? el.labels.length === 0
                       : el.tagName === 'BUTTON' && !el.textContent.trim())
        .map(el => el.name || el.id)""")
    assert unlabelled == []
    assert page.csp_violations == []


def test_card_link_opens_the_stored_assessment(server: str, page: Any) -> None:
    call = json.dumps(hook_call()).encode()
    request = urllib.request.Request(f"{server}/cds-services/gmed-driver", data=call, method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        cards = json.loads(response.read())["cards"]
    link = cards[0]["links"][0]
    assert link["type"] == "smart"
    # an EHR adds its launch parameters to a SMART link; the page needs only the id in the path.
    # It opens in the EHR's narrow side panel or frame: the page must still read well there.
    page.set_viewport_size({"width": 720, "height": 900})
    page.goto(f"{link['url']}?launch=opaque-launch-token&iss=https%3A%2F%2Fehr.example.org%2Ffhir")
    section = page.locator("section.complaint").first
    expect(section.get_by_role("heading", name="Patellofemoral (anterior knee) pain")).to_be_visible()
    percent = re.search(r"\((\d+)%\)", cards[0]["summary"])
    assert percent is not None
    expect(section.locator(".pct")).to_have_text(f"{percent.group(1)}%")
    shot(page, "result-card-link-narrow")
    page.goto(f"{server}/ui/hook-instances/{json.loads(call)['hookInstance']}")
    expect(page.locator(".pct").first).to_have_text(f"{percent.group(1)}%")


def test_print_stylesheet_drops_navigation_and_buttons(server: str, page: Any) -> None:
    page.goto(f"{server}/ui/")
    fill_record(page, load_example("intake_only_pfp_and_lbp"))
    submit(page)
    page.wait_for_url(UUID_PATH)
    expect(page.locator("#print-button")).to_be_visible()
    page.emulate_media(media="print")
    expect(page.locator("#print-button")).to_be_hidden()
    expect(page.locator(".topbar nav")).to_be_hidden()
    shot(page, "result-print")


def test_model_facts_page_shows_use_population_performance_and_limits(server: str, page: Any) -> None:
    page.goto(f"{server}/ui/model")
    facts = page.locator("#model-facts")
    for heading in ("Intended use", "Do not use it for", "Outcome it predicts",
                    "Population and setting", "Performance on held-out data", "Known limitations",
                    "When to stop using it"):
        expect(facts.get_by_role("heading", name=heading)).to_be_visible()
    expect(page.locator(".sim-note")).to_contain_text("Trained on simulated data")
    for plot in ("Calibration on held-out data", "Decision curve on held-out data"):
        expect(facts.get_by_role("img", name=re.compile(plot))).to_be_visible()
    performance = facts.locator("table", has_text="AUROC")  # the bands' table follows it
    expect(performance).to_contain_text(re.compile(r"0\.\d\d \(0\.\d\d to 0\.\d\d\)"))
    shot(page, "model-facts")
    assert page.csp_violations == []


@pytest.fixture(scope="module")
def smart_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, FakeEhr]]:
    """The app with ``UI_AUTH="smart"`` and a fake EHR that approves every launch."""
    from werkzeug.serving import make_server

    ehr = FakeEhr()
    work = tmp_path_factory.mktemp("ui-smart")
    app = create_app({"MODEL": "production", "DATABASE_URL": f"sqlite:///{work / 'store.sqlite3'}",
                      "PSEUDONYM_SECRET": "browser-test", "AUTH": "off", "UI_AUTH": "smart",
                      "SMART_CLIENT_ID": CLIENT_ID, "FHIR_SERVER_ALLOWLIST": [ehr.iss],
                      "OUTBOUND_PRIVATE_HOSTS": ["127.0.0.1"],  # the fake EHR on loopback
                      "ENVIRONMENT": "development"})
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    base = f"http://127.0.0.1:{httpd.server_port}"
    app.config["BASE_URL"] = base
    ehr.callback = f"{base}/ui/smart/callback"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield base, ehr
    finally:
        httpd.shutdown()
        ehr.httpd.shutdown()
        thread.join(timeout=10)


def test_a_smart_launch_from_the_ehr_opens_the_patients_assessment(
        smart_server: tuple[str, FakeEhr], page: Any) -> None:
    """The EHR opens the card's link with iss and launch; the browser goes to the EHR's
    authorization endpoint and back, and lands on the assessment, signed in for its patient;
    another patient's assessment stays closed."""
    base, ehr = smart_server
    ids = []
    for patient in ("p1", "p2"):
        request = urllib.request.Request(
            f"{base}/v1/assessments", method="POST", headers={"Content-Type": "application/json"},
            data=json.dumps({**load_example("runner_pfp_hip_driven"), "patient_id": patient}
                            ).encode())
        with urllib.request.urlopen(request) as response:
            ids.append(json.loads(response.read())["id"])
    page.goto(f"{base}/ui/assessments/{ids[0]}?iss={ehr.iss}&launch=abc")
    expect(page).to_have_url(re.compile(rf"/ui/assessments/{ids[0]}$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Assessment")
    assert ehr.requests[-1] == "POST /auth/token"
    response = page.goto(f"{base}/ui/assessments/{ids[1]}")
    assert response is not None and response.status == 403
    expect(page.get_by_role("heading", name="Not this patient's assessment")).to_be_visible()
    assert page.csp_violations == []
