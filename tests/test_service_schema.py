"""schemathesis against the running service's /openapi.json: no 5xx, only documented status codes and shapes."""

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from .service_helpers import Server, coltiva

LIVE: dict = {}


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("schema")
    token = coltiva("keys", "create", "fuzz", "--scope", "admin", "--keys", "keys.json", cwd=tmp).stdout.strip()
    with Server(tmp, "--keys", "keys.json") as server:
        LIVE.update(base=server.base, headers={"Authorization": f"Bearer {token}"})
        spec = httpx.get(server.base + "/openapi.json", headers=LIVE["headers"]).json()
        yield schemathesis.openapi.from_dict(spec)
    assert "Traceback" not in server.log.read_text()


def test_no_5xx_and_only_documented_answers(api):
    """Every operation, fuzzed from its schema, on the real server: each answer passes schemathesis's checks."""
    operations = [result.ok() for result in api.get_all_operations()]
    assert {op.path for op in operations} >= {"/events", "/segment", "/tick", "/actions", "/leads", "/health"}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
        def answers_as_documented(case):
            case.call_and_validate(base_url=LIVE["base"], headers=LIVE["headers"], excluded_checks=[
                # a schema cannot say every rule (a calendar date, a known event type): such a request may get
                # its documented 400; every other check stays on (no 5xx, documented status, content type, shape)
                schemathesis.checks.positive_data_acceptance])

        answers_as_documented()
