"""Re-record tests/cassettes/salesforce_pull.yaml from the fake Salesforce (run from the repo root):

    .venv/bin/python -m tests.cassettes.record_salesforce

A password login plus one pull. Hosts are rewritten to login.salesforce.com and
acme.my.salesforce.com; the SOAP login's username and password, the session id it returns and
every Authorization header are scrubbed before anything is written.
"""

from __future__ import annotations

import re
import tempfile
from datetime import date
from pathlib import Path

import requests
import vcr

from leadprep.connectors.salesforce import RetryingSession, SalesforceConnector, SalesforceSettings
from tests.fakes.salesforce_server import TOKEN, FakeSalesforce, build_org

HERE = Path(__file__).resolve().parent

CASSETTE = HERE / "salesforce_pull.yaml"
INSTANCE = "acme.my.salesforce.com"
SESSION_PLACEHOLDER = "SESSION_ID_FILTERED"


class ToFake(requests.adapters.HTTPAdapter):
    def __init__(self, host: str) -> None:
        super().__init__()
        self.host = host

    def send(self, request, **kwargs):
        request.url = request.url.replace("login.salesforce.com", self.host)
        return super().send(request, **kwargs)


def main() -> None:
    org = build_org([3, 2], closed=1, seed=40, max_roles=3)
    with (
        tempfile.TemporaryDirectory() as tmp,
        FakeSalesforce(org, Path(tmp), child_page_size=2) as fake,
    ):

        def scrub_request(request):
            login = "/services/Soap/" in request.uri
            request.uri = request.uri.replace(
                fake.host, "login.salesforce.com" if login else INSTANCE
            )
            if login and request.body:
                body = request.body.decode() if isinstance(request.body, bytes) else request.body
                body = re.sub(
                    r"<n1:username>.*?</n1:username>",
                    "<n1:username>USER_FILTERED</n1:username>",
                    body,
                )
                body = re.sub(
                    r"<n1:password>.*?</n1:password>",
                    "<n1:password>PASSWORD_FILTERED</n1:password>",
                    body,
                )
                request.body = body.encode()
            return request

        def scrub_response(response):
            body = response["body"]["string"]
            text = body.decode() if isinstance(body, bytes) else body
            text = text.replace(TOKEN, SESSION_PLACEHOLDER).replace(fake.host, INSTANCE)
            response["body"]["string"] = text.encode()
            return response

        recorder = vcr.VCR(
            record_mode="all",
            filter_headers=["authorization"],
            before_record_request=scrub_request,
            before_record_response=scrub_response,
        )
        settings = SalesforceSettings(
            auth="password",
            username="integration@example.com",
            password="hunter2",
            security_token="TOKENX",
            ca_bundle=fake.ca_path,
        )
        session = RetryingSession(settings)
        session.mount("https://login.salesforce.com", ToFake(fake.host))
        CASSETTE.unlink(missing_ok=True)
        with recorder.use_cassette(str(CASSETTE)):
            SalesforceConnector(settings, session=session).fetch(None, date(2026, 11, 30))
    print(f"wrote {CASSETTE}")


if __name__ == "__main__":
    main()
