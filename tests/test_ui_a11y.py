"""Accessibility as a test: axe-core (through ``axe-playwright-python``) on every page and state
of the clinician page, in Debian's chromium, at 1280, 768 and 390 px wide.

Each view is audited against WCAG 2.1 AA (axe tags ``wcag2a``, ``wcag2aa``, ``wcag21a``,
``wcag21aa``) and must have 0 violations; no view may be wider than the window (a page that
scrolls sideways at 390 px fails reflow, WCAG 1.4.10). Open ``<details>`` are opened first so
what they hide is audited too. A screenshot of each view at each width is saved under
``out/ui/`` and the figures (violations per view and width) under ``out/ui/axe.json``.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest

from tests.conftest import load_example
from tests.test_ui_browser import (
    SCREENSHOTS,
    TIMEOUT_MS,
    UUID_PATH,
    fill_record,
    submit,
)
from tests.test_ui_browser import browser as browser
from tests.test_ui_browser import server as server

axe_module = pytest.importorskip("axe_playwright_python.sync_playwright")
playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect
pytestmark = pytest.mark.shipped

WIDTHS = (1280, 768, 390)
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
FIGURES: dict[str, dict[str, int]] = {}


def _post(server: str, record: dict[str, Any]) -> str:
    request = urllib.request.Request(f"{server}/v1/assessments", method="POST",
                                     headers={"Content-Type": "application/json"},
                                     data=json.dumps(record).encode())
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(json.loads(response.read())["id"])


@pytest.fixture(scope="module")
def views(server: str) -> dict[str, str]:
    """Every page and state to audit: its name and its path (states made through the API)."""
    hip = _post(server, {**load_example("runner_pfp_hip_driven"), "patient_id": "a11y-1"})
    red = _post(server, {**load_example("red_flag_trauma_swelling"), "patient_id": "a11y-2"})
    later = _post(server, {**load_example("runner_pfp_hip_driven"), "patient_id": "a11y-1",
                           "hip_abduction_right_nm_per_kg": 1.45})
    return {"form": "/ui/", "form-errors": "", "result": f"/ui/assessments/{hip}",
            "red-flag": f"/ui/assessments/{red}", "model": "/ui/model",
            "history": f"/ui/assessments/{later}/history",
            "comparison": f"/ui/assessments/{hip}/compare/{later}",
            "handout": f"/ui/assessments/{hip}/handout",
            "handout-red-flag": f"/ui/assessments/{red}/handout"}


def _open(page: Any, server: str, name: str, path: str) -> None:
    if name == "form-errors":
        page.goto(f"{server}/ui/")
        fill_record(page, {"complaints": ["itbs"], "age_years": 9, "sex": "male",
                           "hip_abduction_left_nm_per_kg": "strong"})
        submit(page)
        expect(page.locator(".error-summary")).to_be_visible()
        return
    page.goto(f"{server}{path}")
    page.evaluate("() => document.querySelectorAll('details').forEach(d => d.open = true)")


def audit(page: Any) -> list[str]:
    """axe-core's WCAG 2.1 AA violations on the page as it is: ``rule: target`` per node."""
    results = axe_module.Axe().run(page, options={"runOnly": {"type": "tag", "values": TAGS},
                                                  "resultTypes": ["violations"]})
    return [f"{v['id']} ({v['impact']}): {', '.join(str(t) for t in n['target'])}"
            for v in results.response["violations"] for n in v["nodes"]]


@pytest.mark.parametrize("width", WIDTHS)
def test_every_view_has_no_wcag21aa_violations_and_fits_the_width(
        server: str, views: dict[str, str], browser: Any, width: int) -> None:
    context = browser.new_context(viewport={"width": width, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    found: dict[str, list[str]] = {}
    try:
        for name, path in views.items():
            _open(page, server, name, path)
            found[name] = audit(page)
            overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
            if overflow > 0:
                found[name].append(f"reflow: the page is {overflow} px wider than the window")
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / f"{name}-{width}.png"), full_page=True)
    finally:
        context.close()
    FIGURES[str(width)] = {name: len(v) for name, v in found.items()}
    (SCREENSHOTS / "axe.json").write_text(json.dumps(FIGURES, indent=1, sort_keys=True))
    failing = {name: v for name, v in found.items() if v}
    assert not failing, json.dumps(failing, indent=1)


def test_the_main_paths_work_from_the_keyboard_alone(server: str, browser: Any) -> None:
    """Form -> result -> add or change findings -> new result -> comparison -> visits ->
    handout, with Tab, Shift+Tab, Space, typing and Enter only."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()

    def tab_to(name: str, limit: int = 400) -> None:
        """Press Tab until the focused control is ``name`` (its text, value or id)."""
        for _ in range(limit):
            page.keyboard.press("Tab")
            focused = page.evaluate("() => [document.activeElement.id, (document.activeElement"
                                    ".innerText || document.activeElement.value || '').trim()]")
            if name in focused:
                return
        raise AssertionError(f"{name!r} not reached by the keyboard")

    try:
        page.goto(f"{server}/ui/")
        page.keyboard.press("Tab")
        expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
        page.keyboard.press("Enter")  # to the form, past the navigation
        tab_to("f-patient_id")
        page.keyboard.type("kbd-4711")
        tab_to("f-complaints")  # the first complaint
        page.keyboard.press("Space")
        tab_to("f-age_years")
        page.keyboard.type("29")
        tab_to("f-sex")  # the first radio of the group
        page.keyboard.press("Space")
        page.keyboard.press("Enter")  # a form control submits its form
        expect(page).to_have_url(UUID_PATH)
        expect(page.locator(".meta")).to_contain_text("Patient kbd-4711")
        tab_to("Add or change findings")
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", name="New assessment")).to_be_visible()
        expect(page.locator("#f-patient_id")).to_have_value("kbd-4711")
        tab_to("f-bmi_kg_m2")
        page.keyboard.type("24.5")
        page.keyboard.press("Enter")
        expect(page).to_have_url(UUID_PATH)
        tab_to("Compare with the visit this was made from")
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", level=1)).to_contain_text("Two visits compared")
        expect(page.locator("tr.changed")).to_contain_text("24.5")
        tab_to("All visits")
        page.keyboard.press("Enter")
        newest = page.locator("table.visits tbody tr th a")
        expect(newest).to_have_count(2)
        tab_to(newest.first.inner_text())
        page.keyboard.press("Enter")
        expect(page).to_have_url(UUID_PATH)
        tab_to("Handout for the patient")
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", name="Your visit: what we found")).to_be_visible()
        expect(page.locator(".handout")).to_contain_text("For kbd-4711")
    finally:
        context.close()
