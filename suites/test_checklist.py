"""One test per checklist item and provider, judged from what the other suites measured.

These run last (see conftest.pytest_collection_modifyitems). A failure names the item, the
measured value, the threshold and the case; a skip says why nothing could be judged.
"""

from __future__ import annotations

import pytest

from harness.suite.session import SuiteSession


def test_checklist(suite: SuiteSession, provider: str, check: str) -> None:
    verdict = suite.verdict(provider, check)
    unavailable = suite.state(provider).unavailable
    if unavailable:  # one reason for every item, so pytest's summary groups them into one line
        pytest.skip(unavailable)
    where = f"{verdict.title} [{verdict.case or provider}]"
    if verdict.verdict in ("skip", "inconclusive"):  # not proven: the gate decides what that costs
        pytest.skip(f"{where}: {'' if verdict.verdict == 'skip' else 'inconclusive: '}{verdict.reason}")
    if verdict.verdict == "fail":
        pytest.fail(
            f"{where}: measured {verdict.measured} {verdict.unit}, threshold {verdict.comparison} "
            f"{verdict.threshold} {verdict.unit}: {verdict.reason}",
            pytrace=False,
        )
