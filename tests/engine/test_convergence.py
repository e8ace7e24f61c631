"""Every dataset gets an answer, and it is the REML maximum.

tests/fixtures/metafor/nonconvergence.json: 2000 simulated six-study datasets (generate.R, case l).
metafor's Fisher scoring (REML, Knapp-Hartung, default controls) stops with an error on 9 of them
and silently returns tau^2 = 0 on 3 where the restricted likelihood is higher inside; 'reference'
is the REML maximum found by a grid search and root polishing independent of Fisher scoring.
"""

import json

import numpy as np
import pytest

from hatmeta.api import pool_by
from hatmeta.io.trial_table import read_table

from ..conftest import FIXTURES

FIXTURE = json.loads((FIXTURES / "metafor" / "nonconvergence.json").read_text())


@pytest.fixture(scope="module")
def fits():
    table = read_table(FIXTURES / "data" / "nonconvergence.csv", measure="GEN")
    return {r.group: r for r in pool_by(table, "group", "GEN", method="REML", ci="hksj")}


def test_the_fixture_holds_metafor_failures():
    cases = FIXTURE["cases"]
    assert len(cases) == 2000
    assert sum(not c["converged"] for c in cases) == FIXTURE["options"]["failures"] > 0
    assert sum(bool(c.get("metafor_local_max")) for c in cases) == FIXTURE["options"]["local_max"] > 0


def test_every_dataset_is_answered_with_the_reml_maximum(fits):
    for case in FIXTURE["cases"]:
        r, ref = fits[case["group"]], case["reference"]
        assert np.isfinite(r.estimate), case["group"]
        assert r.tau2 == pytest.approx(ref["tau2"], rel=1e-6, abs=1e-10), case["group"]
        for key in ("estimate", "se", "ci_low", "ci_high", "p"):
            assert getattr(r, key) == pytest.approx(ref[key], rel=1e-6, abs=1e-10), (case["group"], key)


def test_where_metafor_converged_to_the_maximum_we_agree_with_it(fits):
    """metafor's default controls stop when a Fisher step is below 1e-5, which can leave tau^2 off by
    more than that where the iteration crawls (d1079: 1.3e-4), so this comparison is loose; the
    tight one is against 'reference' above."""
    for case in FIXTURE["cases"]:
        if not case["converged"] or case.get("metafor_local_max"):
            continue
        r, exp = fits[case["group"]], case["expected"]
        assert r.tau2 == pytest.approx(exp["tau2"], rel=5e-3, abs=1e-4), case["group"]
        assert r.estimate == pytest.approx(exp["estimate"], rel=5e-3, abs=1e-4), case["group"]
