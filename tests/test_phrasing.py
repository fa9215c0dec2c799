"""The shared wording of tables and findings (``ecrm_research.phrasing``): never p = 0, never 100% of a part."""

from __future__ import annotations

import pytest

from ecrm_research import association, loyalty, phrasing, survival


@pytest.mark.parametrize(("k", "n", "text"), [
    (1118, 1121, "1,118 of 1,121 rules (99.7%)"), (2999, 3000, "2,999 of 3,000 rules (99.97%)"),
    (1, 3000, "1 of 3,000 rules (0.03%)"), (77, 77, "77 of 77 rules (100%)"), (0, 5, "0 of 5 rules (0%)"),
    (3, 4, "3 of 4 rules (75.0%)"), (0, 0, "0 of 0 rules"),
])
def test_share_text_never_rounds_to_all_or_none(k, n, text):
    assert phrasing.share_text(k, n, "rules") == text


@pytest.mark.parametrize(("p", "text"), [
    (0.0, "< 1e-300"), (1e-310, "< 1e-300"), (3.2e-7, "3.2e-07"), (0.0412345, "0.0412"), (1.0, "1"),
    (3.2e-45, "3.2e-45"), (float("nan"), "not available"), (None, "not available"),
])
def test_p_values_are_never_printed_as_zero(p, text):
    assert phrasing.format_p_value(p) == text


@pytest.mark.parametrize(("p", "text"), [
    (0.0, "p < 1e-300"), (1e-320, "p < 1e-300"), (0.0123, "p = 0.012"), (2.3e-41, "p = 2.3e-41"),
    (float("nan"), "p not available"),
])
def test_p_text_for_running_text(p, text):
    assert phrasing.p_text(p) == text


def test_every_analysis_uses_the_one_wording():
    assert association.format_p_value is phrasing.format_p_value and association.share_text is phrasing.share_text
    assert loyalty.format_p_value is phrasing.format_p_value and survival.p_text is phrasing.p_text
