"""The patient over time on the clinician page: linked visits, the history, two visits compared,
and the patient reference shown back to the browser that entered it (tiny fixture model)."""

from __future__ import annotations

import io
import re
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from service.store import get_store
from tests.conftest import load_example
from tests.test_ui import post

REF = "4711-A"
VISIT_1 = {**load_example("runner_pfp_hip_driven"), "patient_id": REF}
# six weeks later: the symptomatic (right) side stronger, less pelvic drop
VISIT_2_CHANGES = {"hip_abduction_right_nm_per_kg": 1.45, "single_leg_squat_pelvic_drop_deg": 5.0}


def visit(client: FlaskClient, record: dict[str, Any], previous: str | None = None) -> str:
    """Post a record through the form (from ``previous``'s edit form if given); the new id."""
    response = post(client, record if previous is None else {**record, "previous_id": previous})
    assert response.status_code == 303, response.get_data(as_text=True)[:500]
    return str(response.headers["Location"].rsplit("/", 1)[1])


def two_visits(client: FlaskClient) -> tuple[str, str]:
    first = visit(client, VISIT_1)
    edit = client.get(f"/ui/assessments/{first}/edit").get_data(as_text=True)
    assert f'name="previous_id" value="{first}"' in edit
    second = visit(client, {**VISIT_1, **VISIT_2_CHANGES}, previous=first)
    return first, second


def test_add_or_change_findings_stores_the_link_to_the_visit_it_came_from(
        client: FlaskClient, app: Flask) -> None:
    first, second = two_visits(client)
    with app.app_context():
        assert get_store().previous_of(second) == first
        assert get_store().previous_of(first) is None
    page = client.get(f"/ui/assessments/{second}").get_data(as_text=True)
    assert f'href="/ui/assessments/{first}/compare/{second}"' in page


def test_an_edit_without_a_reference_stays_the_earlier_visits_patient(
        client: FlaskClient, app: Flask) -> None:
    first = visit(client, VISIT_1)
    record = {k: v for k, v in VISIT_1.items() if k != "patient_id"}
    second = visit(client, record, previous=first)
    with app.app_context():
        store = get_store()
        assert store.get_assessment(second)["patient_ref"] == store.pseudonym(REF)  # type: ignore[index]
        assert store.previous_of(second) == first


def test_a_link_to_another_patients_assessment_is_not_stored(client: FlaskClient,
                                                              app: Flask) -> None:
    someone_else = visit(client, {**VISIT_1, "patient_id": "9999-Z"})
    mine = visit(client, VISIT_1, previous=someone_else)
    with app.app_context():
        assert get_store().previous_of(mine) is None


def test_history_lists_the_patients_visits_newest_first_and_no_one_elses(
        client: FlaskClient) -> None:
    first, second = two_visits(client)
    other = visit(client, {**VISIT_1, "patient_id": "9999-Z"})
    html = client.get(f"/ui/assessments/{first}/history").get_data(as_text=True)
    assert f"Visits of patient {REF}" in html
    rows = re.findall(r'<th scope="row"><a href="/ui/assessments/([0-9a-f-]{36})"', html)
    assert rows == [second, first]
    assert other not in html
    assert f'href="/ui/assessments/{first}/compare/{second}"' in html


def test_comparison_shows_findings_their_change_the_estimate_change_and_both_contributions(
        client: FlaskClient, app: Flask) -> None:
    first, second = two_visits(client)
    html = client.get(f"/ui/assessments/{first}/compare/{second}").get_data(as_text=True)
    assert re.search(r"hip abduction torque, right[^<]*</th><td>1.08 N·m/kg</td>"
                     r"<td>1.45 N·m/kg</td><td>\+0.37 N·m/kg</td>", html)
    assert re.search(r"pelvic drop</th><td>9°</td><td>5°</td><td>-4°</td>", html)
    with app.app_context():
        store = get_store()
        before, after = (store.get_assessment(a)["result"]["results"][0]  # type: ignore[index]
                         for a in (first, second))
    b, a = round(100 * before["probability"]), round(100 * after["probability"])
    assert f"{b}% →\n{a}%:\n<strong>{a - b:+d} percentage points</strong>" in html
    # each finding's stored contribution at both visits, with its points as on each page
    for f_before in before["factors"]:
        f_after = next(f for f in after["factors"] if f["feature"] == f_before["feature"])
        assert (f'<td class="num">{f_before["points"]:+d}</td>\n      '
                f'<td class="num">{f_after["points"]:+d}</td>\n      '
                f'<td class="num">{f_before["contribution"]:+.3f}</td>\n      '
                f'<td class="num">{f_after["contribution"]:+.3f}</td>') in html, f_before["label"]


def test_two_patients_visits_are_not_compared(client: FlaskClient) -> None:
    mine = visit(client, VISIT_1)
    other = visit(client, {**VISIT_1, "patient_id": "9999-Z"})
    assert client.get(f"/ui/assessments/{mine}/compare/{other}").status_code == 404


def test_pages_show_the_reference_entered_never_an_id_and_logs_never_carry_it(
        client: FlaskClient, service_logs: io.StringIO) -> None:
    first, second = two_visits(client)
    for path in (f"/ui/assessments/{first}", f"/ui/assessments/{first}/history",
                 f"/ui/assessments/{first}/compare/{second}",
                 f"/ui/assessments/{first}/handout"):
        html = client.get(path).get_data(as_text=True)
        assert REF in html, path
        assert not re.search(r"ref <span|ref [0-9a-f]{8}\b", html), path
    assert REF not in service_logs.getvalue()
