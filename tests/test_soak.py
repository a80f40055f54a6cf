"""A short soak (the code of ``bench/soak.py``): steady open-loop load on 2 gunicorn workers while
the production alias flips between two versions of the shipped model.

Asserts what the full 10-minute benchmark reports, on ~25 s at a modest rate: zero errors; every
answer names one of the two versions and both are seen after the flips; for the same record every
answer is identical apart from ids and the version; no worker died; each worker's RSS after
warm-up grows by less than a generous bound (a leak catcher, not a timing test: a leak of a few
hundred bytes per request would pass, one of tens of KiB per request would not).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.soak import Server, report, soak, two_versions

pytestmark = pytest.mark.shipped

RATE = 30.0
SECONDS = 25.0
FLIPS = 3
WARMUP_S = 6.0
RSS_GROWTH_BOUND = 1.5  # last / first RSS sample after warm-up, per worker


def test_soak_has_no_errors_and_only_the_version_changes_on_reload(tmp_path: Path) -> None:
    models_root = two_versions(tmp_path)
    server = Server(tmp_path, model="production",
                    env={"GMED_MODELS_DIR": str(models_root), "GMED_MODEL_RELOAD_INTERVAL": "0.5"})
    with server:
        figures = soak(server, models_root, rate=RATE, seconds=SECONDS, flips=FLIPS,
                       sample_s=1.0, window_s=5.0, warmup_s=WARMUP_S)
    print(report(figures, rate=RATE, seconds=SECONDS))
    assert figures.requests == int(RATE * SECONDS)
    assert figures.errors == 0, figures.by_status
    assert set(figures.versions) == {"0.1.0", "0.1.1"}
    assert [f["to"] for f in figures.flips] == ["0.1.1", "0.1.0", "0.1.1"]
    for flip in figures.flips:  # every flip reached the clients before the next one
        assert flip["first_seen_after_s"] is not None, flip
    assert figures.distinct_answers == {"assessment": 1, "cds-hook": 1}
    assert figures.workers_after == figures.workers_before and len(figures.workers_before) == 2
    assert set(figures.rss_ratio) == set(figures.workers_before)
    for pid, ratio in figures.rss_ratio.items():
        assert ratio < RSS_GROWTH_BOUND, (pid, figures.rss[pid])
