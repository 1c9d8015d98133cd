"""Hostile input against the whole API: schemathesis generates requests from the OpenAPI
description (valid and invalid), with and without the API key; none may end in a server
error or a traceback.

schemathesis' own pytest integration does not run under pytest 9 (its `from_fixture` needs
a private pytest attribute), so each operation's Hypothesis strategy is driven here.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings

from engine.bootstrap import Ripen
from ripen.api.app import create_app
from tests.conftest import API_KEY

EXAMPLES = 30


def test_no_request_ends_in_a_server_error(ripen_app: Ripen) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(ripen_app))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 25  # every endpoint of the README's table
    failures: list[tuple[str, str, int, str]] = []
    calls = 0

    for operation in operations:

        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def run(case: Any) -> None:
            nonlocal calls
            for headers in ({"authorization": f"Bearer {API_KEY}"}, {}):
                response = case.call(headers=headers)
                calls += 1
                if response.status_code >= 500 or b"Traceback" in response.content:
                    failures.append((case.method, case.formatted_path,
                                     response.status_code, repr(response.content[:200])))

        run()
    print(f"schemathesis: {calls} requests over {len(operations)} operations, "
          f"{len(failures)} server errors")
    assert calls > len(operations) * 2
    assert failures == []
