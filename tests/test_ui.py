"""The clinician page through Flask's test client: form, result, security headers, CSRF, store.

Fast checks on the tiny fixture model; the real browser is in ``test_ui_browser.py``.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.datastructures import MultiDict

import cds
from cds.facts import NOT_FOR, PURPOSE
from cds.features import BY_NAME, ROWS, record_fields
from service.store import assessments, get_store
from service.ui.pages import CSRF_COOKIE, parse_form
from tests.conftest import load_example

UUID_PAGE = re.compile(r"^/ui/assessments/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def csrf_token(client: FlaskClient) -> str:
    html = client.get("/ui/").get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match is not None
    return match.group(1)


def as_form(record: dict[str, Any]) -> MultiDict[str, str]:
    form: MultiDict[str, str] = MultiDict()
    for name, value in record.items():
        if isinstance(value, bool):
            form.add(name, "yes" if value else "no")
        elif isinstance(value, list):
            for v in value:
                form.add(name, v)
        else:
            form.add(name, str(value))
    return form


def post(client: FlaskClient, record: dict[str, Any], token: str | None = None) -> Any:
    form = as_form(record)
    form.add("csrf_token", csrf_token(client) if token is None else token)
    return client.post("/ui/assessments", data=form)


def assessed(client: FlaskClient, app: Flask, name: str) -> tuple[str, str]:
    """Post an example through the form; the page's path and HTML."""
    response = post(client, load_example(name))
    assert response.status_code == 303
    path = response.headers["Location"]
    return path, client.get(path).get_data(as_text=True)


# ------------------------------------------------------------------------------ security


def test_pages_forbid_inline_script_and_style_and_frame_only_configured_ehrs(
        make_app: Any) -> None:
    framed = make_app(UI_FRAME_ANCESTORS=["https://ehr.example.org"]).test_client()
    response = framed.get("/ui/")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "style-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert csp.endswith("frame-ancestors https://ehr.example.org")
    assert "X-Frame-Options" not in response.headers


def test_frame_ancestors_default_to_same_origin(client: FlaskClient) -> None:
    assert client.get("/ui/").headers["Content-Security-Policy"].endswith("frame-ancestors 'self'")


def test_rendered_pages_carry_no_inline_script_or_style(client: FlaskClient, app: Flask) -> None:
    _, result = assessed(client, app, "runner_pfp_hip_driven")
    pages = [client.get("/ui/").get_data(as_text=True), result,
             client.get("/ui/model").get_data(as_text=True),
             post(client, {"age_years": 5}).get_data(as_text=True)]
    for html in pages:
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
        assert "<style" not in html
        assert not re.search(r"\sstyle=", html)
        assert not re.search(r"\son[a-z]+=", html)  # no inline event handlers either


def test_patient_pages_are_not_cached(client: FlaskClient, app: Flask) -> None:
    path, _ = assessed(client, app, "runner_pfp_hip_driven")
    for url in ("/ui/", path, f"{path}/edit"):
        assert client.get(url).headers["Cache-Control"] == "no-store"


def test_form_post_without_a_valid_csrf_token_is_refused_and_stores_nothing(
        client: FlaskClient, app: Flask) -> None:
    record = load_example("runner_pfp_hip_driven")
    refused = post(client, record, token="forged")
    assert refused.status_code == 400
    assert "Your entries are kept" in refused.get_data(as_text=True)
    fresh = app.test_client()  # a token from another browser does not match this one's cookie
    assert post(fresh, record, token=csrf_token(client)).status_code == 400
    with app.app_context():
        assert get_store().rows(assessments) == []


def test_csrf_cookie_is_http_only_and_scoped_to_the_page(client: FlaskClient) -> None:
    cookie = client.get("/ui/").headers["Set-Cookie"]
    assert cookie.startswith(f"{CSRF_COOKIE}=")
    assert "HttpOnly" in cookie and "Path=/ui/" in cookie


def test_form_post_redirects_to_an_opaque_id_and_stores_a_pseudonym(
        client: FlaskClient, app: Flask) -> None:
    record = load_example("runner_pfp_hip_driven")
    response = post(client, record)
    assert response.status_code == 303
    assert UUID_PAGE.match(response.headers["Location"])
    with app.app_context():
        row = get_store().get_assessment(response.headers["Location"].rsplit("/", 1)[1])
        assert row is not None
        assert row["source"] == "ui"
        assert row["patient_ref"] == get_store().pseudonym(record["patient_id"])
        assert record["patient_id"] not in str(row)


# ------------------------------------------------------------------------------ the form


def test_every_record_field_is_in_the_form_with_a_label(client: FlaskClient) -> None:
    html = client.get("/ui/").get_data(as_text=True)
    for f in record_fields():
        assert f'name="{f.name}"' in html, f.name
        if f.kind in ("number", "integer"):
            assert f'<label for="f-{f.name}">' in html
        else:
            assert re.search(rf'<fieldset[^>]*id="w-{f.name}"[^>]*>\s*<legend>', html), f.name


def test_form_shows_units_valid_ranges_and_reference_ranges(client: FlaskClient) -> None:
    html = client.get("/ui/").get_data(as_text=True)
    assert ("pain-free people by sex and age; at 25 y F 1.17-2.05, M 1.38-2.43 N·m/kg · "
            "valid 0.2 to 4 N·m/kg") in html
    assert "pain-free people 2-16° · valid -20 to 45°" in html
    assert "Applies to runners only" in html and "Applies to IT band syndrome only" in html
    for label in ROWS.allowed_labels:
        assert label in html


def test_every_question_but_the_required_can_be_left_not_recorded(client: FlaskClient) -> None:
    """One rule for what may stay empty, the contract's ``required``: an optional question
    offers "Not recorded" (chosen by default); a required one does not, and says why."""
    html = client.get("/ui/").get_data(as_text=True)
    radios = [f for f in record_fields() if f.kind in ("boolean", "category") and f is not ROWS]
    for f in radios:
        offered = re.search(rf'name="{f.name}" value="" checked', html) is not None
        assert offered is not f.required, f.name
    assert BY_NAME["sex"].required  # the contract, which the JSON API also enforces
    assert not re.search(r'name="sex" value=""', html)
    assert re.search(r'id="h-sex">[^<]*Needed for an estimate: the model starts from it', html)
    assert "Every finding may be left empty" not in html
    assert "Presenting complaint(s), age and sex are needed for an estimate." in html
    assert " required" not in html  # the browser never blocks an empty field


def test_empty_fields_are_not_recorded_rather_than_zero() -> None:
    record, errors = parse_form(MultiDict([
        ("complaints", "pfp"), ("age_years", "34"), ("sex", "female"), ("bmi_kg_m2", ""),
        ("trendelenburg_sign", ""), ("lateral_hip_pain", "no"), ("foot_posture_index", " "),
        ("hip_abduction_left_nm_per_kg", "1,25")]))
    assert errors == []
    assert record == {"complaints": ["pfp"], "age_years": 34, "sex": "female",
                      "lateral_hip_pain": False, "hip_abduction_left_nm_per_kg": 1.25}


def test_invalid_values_rerender_the_form_with_plain_words_beside_each_field(
        client: FlaskClient) -> None:
    response = post(client, {"complaints": ["pfp"], "age_years": 9, "sex": "female",
                             "pain_nrs": "11", "bmi_kg_m2": "tall", "foot_posture_index": "2.5"})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    age = BY_NAME["age_years"]
    assert re.search(rf'id="e-age_years">.*Enter a value from {age.minimum:g} to {age.maximum:g} '
                     r'years: the model was built on patients in this range only, so it gives '
                     r'no estimate outside it', html)
    assert re.search(r'id="e-pain_nrs">.*Enter a value from 0 to 10<', html)
    assert re.search(r'id="e-bmi_kg_m2">.*Enter a number, such as 1.25', html)
    assert re.search(r'id="e-foot_posture_index">.*Enter a whole number', html)
    for jargon in ("(minimum)", "(maximum)", "(type)", "(integer)", "/10 (", "must be at"):
        assert jargon not in html, jargon
    assert 'value="tall"' in html  # what was typed stays, to be corrected
    assert re.search(r'id="f-age_years"[^>]*aria-describedby="h-age_years e-age_years"', html)


def test_an_empty_form_names_what_an_estimate_needs(client: FlaskClient) -> None:
    html = post(client, {}).get_data(as_text=True)
    for name in ("complaints", "age_years", "sex"):
        assert re.search(rf'id="e-{name}">.*needed for an estimate', html), name
    assert "(required)" not in html
    assert f"{BY_NAME['sex'].label}: Choose one: needed for an estimate" in html  # the summary
    assert f"{BY_NAME['complaints'].label}: Tick at least one: needed" in html


# ------------------------------------------------------------------------------ the result


def test_result_shows_probability_band_scale_chart_and_words(
        client: FlaskClient, app: Flask, tiny_model: cds.Model) -> None:
    _, html = assessed(client, app, "intake_only_pfp_and_lbp")
    expected = cds.assess(load_example("intake_only_pfp_and_lbp"), model=tiny_model).to_dict()
    for r in expected["results"]:
        assert r["complaint_label"] in html
        assert f'<span class="pct">{round(100 * r["probability"])}%</span>' in html
        assert f'band-{r["band"]}">{r["band"].capitalize()}</span>' in html
        if r["next_best_assessment"]:
            assert r["next_best_assessment"]["text"] in html
        for m in r["missing"]:
            assert m["label"] in html
        assert r["factors"][0]["text"] in html
    assert html.count('<svg xmlns="http://www.w3.org/2000/svg" class="waterfall"') == 2
    assert html.count('class="prob-scale"') == 2


def test_red_flag_result_leads_with_the_referral_banner(client: FlaskClient, app: Flask) -> None:
    _, html = assessed(client, app, "red_flag_trauma_swelling")
    assert "Refer / rule out serious pathology first" in html
    assert BY_NAME["rf_trauma_rapid_swelling"].label in html
    assert 'class="pct"' not in html and 'class="waterfall"' not in html  # no estimate at all


def test_out_of_population_inputs_are_warned_about(client: FlaskClient, app: Flask) -> None:
    response = post(client, {**load_example("runner_pfp_hip_driven"),
                             "single_leg_squat_knee_fppa_deg": 44.0})  # above training
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Outside the training population." in html
    assert "lies outside the population the model was trained on" in html
    # beside the estimate it qualifies (under the score), not above the result
    section = html.index('class="complaint"')
    assert section < html.index("Outside the training population.")
    assert html.index('class="scale"') < html.index("Outside the training population.")


def test_model_facts_panel_comes_from_the_model_metadata(
        client: FlaskClient, app: Flask, tiny_model: cds.Model) -> None:
    _, html = assessed(client, app, "runner_pfp_hip_driven")
    assert f"About model {tiny_model.id} {tiny_model.version}" in html
    assert PURPOSE in html
    assert all(item in html for item in NOT_FOR)
    assert "trained on a SIMULATED cohort" in html  # the page's one notice (the disclaimer)
    auroc = tiny_model.metadata["metrics"]["model"]
    lo, hi = auroc["auroc_ci95"]
    assert f"{auroc['auroc']:.2f} ({lo:.2f} to {hi:.2f})" in html


def test_each_page_has_one_simulated_data_notice_above_the_result_and_cites_no_file(
        client: FlaskClient, app: Flask) -> None:
    _, result = assessed(client, app, "runner_pfp_hip_driven")
    model = client.get("/ui/model").get_data(as_text=True)
    for html in (result, model):
        assert html.count('class="sim-note"') == 1
        assert html.lower().count("trained on simulated data") <= 1
        assert not re.search(r"\b[\w-]+\.(md|parquet|csv|json)\b", html.split("<main")[1])
        assert "/v1/model/card" not in html  # an API address a clinician cannot open
    assert result.index('class="sim-note"') < result.index('class="complaint"')


def test_unknown_assessment_is_a_404_page(client: FlaskClient) -> None:
    for path in ("/ui/assessments/00000000-0000-0000-0000-000000000000", "/ui/assessments/%3Cx%3E",
                 "/ui/hook-instances/nope"):
        response = client.get(path)
        assert response.status_code == 404
        assert response.mimetype == "text/html"


def test_hook_instance_opens_the_assessment_it_made(client: FlaskClient, app: Flask) -> None:
    path, _ = assessed(client, app, "runner_pfp_hip_driven")
    aid = path.rsplit("/", 1)[1]
    with app.app_context():
        store = get_store()
        row = store.get_assessment(aid)
        assert row is not None
        hooked = store.save_assessment(source="cds-hooks", inputs=row["inputs"],
                                       result=row["result"], patient_ref=None, caller="test",
                                       hook_instance="d1577c69-dfbe-44ad-ba6d-3e05e953b2ea")
    response = client.get("/ui/hook-instances/d1577c69-dfbe-44ad-ba6d-3e05e953b2ea")
    assert response.status_code == 303
    assert response.headers["Location"] == f"/ui/assessments/{hooked}"


def test_edit_fills_the_form_with_the_stored_inputs(client: FlaskClient, app: Flask) -> None:
    path, _ = assessed(client, app, "runner_pfp_hip_driven")
    html = client.get(f"{path}/edit").get_data(as_text=True)
    assert re.search(r'name="age_years"[^>]*value="29"', html)
    assert re.search(r'name="trendelenburg_sign" value="yes"[^>]*checked', html)
    assert re.search(r'name="complaints" value="pfp"[^>]*checked', html)
    # the reference comes back from this browser's session, never from the store
    assert re.search(r'name="patient_id"[^>]*value="example-runner-pfp"', html)
    other_browser = app.test_client().get(f"{path}/edit").get_data(as_text=True)
    assert "example-runner-pfp" not in other_browser
    with app.app_context(), get_store().engine.connect() as conn:
        assert "example-runner-pfp" not in str(conn.execute(assessments.select()).all())


@pytest.mark.parametrize("name", ["runner_pfp_hip_driven", "cyclist_itbs", "lbp_radicular"])
def test_examples_render_through_the_form(client: FlaskClient, app: Flask, name: str) -> None:
    path, html = assessed(client, app, name)
    assert UUID_PAGE.match(path)
    assert "Why: the largest factors" in html


def test_an_assessment_stored_before_starting_points_still_renders(
        client: FlaskClient, app: Flask, tiny_model: cds.Model) -> None:
    result = cds.assess(load_example("runner_pfp_hip_driven"), model=tiny_model).to_dict()
    del result["referral"]
    for r in result["results"]:
        for key in ("starting_point", "starting_probability", "not_recorded"):
            del r[key]
        for f in r["factors"]:
            del f["probability_change"], f["points"]
    with app.app_context():
        aid = get_store().save_assessment(source="ui", inputs={}, result=result,
                                          caller="test", patient_ref=None)
    response = client.get(f"/ui/assessments/{aid}")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and 'class="pct"' in html
    assert "Starting point: the average patient" in html
