"""schemathesis against the OpenAPI document of a live server: every check of schemathesis (no 5xx, responses
match the schema, statuses and content types documented, schema-valid requests accepted and invalid ones
rejected, 405 with ``Allow`` for undocumented methods, ...), positive and negative data, bounded examples."""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from lob.server.openapi import openapi_document

from server_support import LiveServer

schema = schemathesis.openapi.from_dict(openapi_document())


@pytest.fixture(scope="module")
def live():
    with LiveServer(seed=9, read_rate=0, write_rate=0) as srv:
        yield srv


def test_the_served_document_is_the_one_tested(live):
    import json
    import urllib.request

    with urllib.request.urlopen(live.url + "/api/openapi.json") as r:
        assert json.loads(r.read()) == json.loads(json.dumps(openapi_document()))


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_api_conforms(case, live):
    # no checks= : schemathesis's whole registry (not_a_server_error, response_schema_conformance,
    # status_code_conformance, content_type_conformance, response_headers_conformance, positive_data_acceptance,
    # negative_data_rejection, unsupported_method, ...)
    case.call_and_validate(base_url=live.url, headers={"Authorization": "Bearer tok-alice-0001"})


def test_schemathesis_really_sent_requests(live):
    # runs after the parametrized test above (file order): the API saw many generated requests
    assert live.call(lambda: live.hub.stats["http_requests"]) > 100
