"""LangGraph's own conformance suite (langgraph-checkpoint-conformance), on every store.

Each capability (put, put_writes, get_tuple, list, delete_thread, delete_for_runs,
copy_thread, prune) runs as its own test against a fresh saver, so a failure names
the capability, the store and the failing spec tests.
"""

from __future__ import annotations

import asyncio

import pytest
from langgraph.checkpoint.conformance.capabilities import ALL_CAPABILITIES, DetectedCapabilities
from langgraph.checkpoint.conformance.initializer import RegisteredCheckpointer
from langgraph.checkpoint.conformance.validate import validate

from kaizen.integrations.langgraph import AsyncKaizenSaver, KaizenSaver

CAPABILITIES = sorted(cap.value for cap in ALL_CAPABILITIES)


def registered(url: str) -> RegisteredCheckpointer:
    async def factory():
        async with AsyncKaizenSaver.from_conn_string(url) as saver:
            yield saver

    return RegisteredCheckpointer(name=f"KaizenSaver({url.split(':', 1)[0]})", factory=factory)


@pytest.mark.parametrize("capability", CAPABILITIES)
def test_conformance(saver_url, capability):
    report = asyncio.run(validate(registered(saver_url), capabilities={capability}))
    result = report.results[capability]
    assert result.detected, f"{capability} is not implemented"
    assert result.tests_failed == 0 and result.tests_passed > 0, "\n".join(result.failures)


def test_every_capability_is_detected():
    """The suite only runs what it detects: all eight must be there, base and extended."""
    saver = KaizenSaver("memory://")
    assert DetectedCapabilities.from_instance(saver).missing == frozenset()
