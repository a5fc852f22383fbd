"""The naive HubSpot pull most scripts do: search each owner, then per deal one read with history
and one association read, then per contact one read. Same rate limits as leadprep (so the
comparison is about requests, not about being throttled)."""

from __future__ import annotations

import time

import requests

from leadprep.connectors.ratelimit import SlidingWindowLimiter


def naive_hubspot_pull(base_url: str, token: str) -> int:
    """Pull every open deal the naive way; returns the number of requests made."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    search_limit = SlidingWindowLimiter(4, 1.05)
    burst_limit = SlidingWindowLimiter(100, 10.25)
    count = 0

    def call(method: str, path: str, **kwargs):
        nonlocal count
        (search_limit if path.endswith("/search") else burst_limit).acquire()
        count += 1
        response = session.request(method, base_url + path, timeout=30, **kwargs)
        while response.status_code == 429:  # counted: a real script pays for these too
            time.sleep(1.0 if path.endswith("/search") else 10.0)
            count += 1
            response = session.request(method, base_url + path, timeout=30, **kwargs)
        response.raise_for_status()
        return response.json()

    owners = call("GET", "/crm/v3/owners/", params={"limit": 100})["results"]
    for owner in owners:
        after = None
        while True:
            body = {
                "filterGroups": [
                    {
                        "filters": [
                            {
                                "propertyName": "hubspot_owner_id",
                                "operator": "EQ",
                                "value": owner["id"],
                            },
                            {"propertyName": "hs_is_closed", "operator": "NEQ", "value": "true"},
                        ]
                    }
                ],
                "properties": ["dealname"],
                "limit": 100,
                **({"after": after} if after else {}),
            }
            page = call("POST", "/crm/v3/objects/deals/search", json=body)
            for deal in page["results"]:
                call(
                    "GET",
                    f"/crm/v3/objects/deals/{deal['id']}",
                    params={
                        "properties": "dealname,amount,closedate,dealstage",
                        "propertiesWithHistory": "closedate,amount,dealstage",
                    },
                )
                links = call("GET", f"/crm/v4/objects/deals/{deal['id']}/associations/contacts")[
                    "results"
                ]
                for link in links:
                    call("GET", f"/crm/v3/objects/contacts/{link['toObjectId']}")
            after = (page.get("paging") or {}).get("next", {}).get("after")
            if not after:
                break
    return count


def naive_hubspot_requests(owners: int, deals_per_owner: list[int], contacts: int) -> int:
    """What :func:`naive_hubspot_pull` makes, computed (for sizes too slow to run naively)."""
    searches = sum(max(1, -(-n // 100)) for n in deals_per_owner)
    return 1 + searches + 2 * sum(deals_per_owner) + contacts


def naive_salesforce_requests(deals: int) -> int:
    """Opportunities page by page, then one contact-role and one history query per opportunity."""
    return 1 + -(-deals // 2000) + 2 * deals
