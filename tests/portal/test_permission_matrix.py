"""Every API endpoint against DOMAIN §4's roles, walked from the URLconf itself.

Viewers read; Feeders post arrivals and transactions and nothing else (not even
reads); Operators also run job and task commands and window actions;
Administrators also change configuration, reload and shut down. Anonymous
callers get 401 everywhere. A route missing from MATRIX fails the test, so a
new endpoint cannot escape it.
"""

from __future__ import annotations

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from portal import roles

pytestmark = pytest.mark.django_db

READ = frozenset({roles.VIEWER, roles.OPERATOR, roles.ADMINISTRATOR})
FEED = frozenset({roles.FEEDER, roles.OPERATOR, roles.ADMINISTRATOR})
OPERATE = frozenset({roles.OPERATOR, roles.ADMINISTRATOR})
ADMINISTER = frozenset({roles.ADMINISTRATOR})
NO_ROLE = "no role"
LOGGED_IN = frozenset({*roles.ALL_ROLES, NO_ROLE})

# route (as the URLconf spells it, "{id}" for a primary key) -> method -> roles allowed
MATRIX: dict[str, dict[str, frozenset[str]]] = {
    "/api/v1/": {"GET": READ},
    # batch monitor (DOMAIN §1, issue 4)
    "/api/v1/arrivals/": {"GET": READ, "POST": FEED},
    "/api/v1/arrivals/{id}/": {"GET": READ},
    "/api/v1/batch-configs/": {"GET": READ, "POST": ADMINISTER},
    "/api/v1/batch-configs/{id}/": {"GET": READ, "PUT": ADMINISTER, "PATCH": ADMINISTER, "DELETE": ADMINISTER},
    "/api/v1/batch-windows/": {"GET": READ},
    "/api/v1/batch-windows/{id}/": {"GET": READ},
    "/api/v1/batch-windows/{id}/fail/": {"POST": OPERATE},
    "/api/v1/held-arrivals/": {"GET": READ},
    "/api/v1/held-arrivals/{id}/": {"GET": READ},
    "/api/v1/held-arrivals/{id}/release/": {"POST": OPERATE},
    # transactions and summaries (DOMAIN §2, issue 5)
    "/api/v1/transactions/": {"GET": READ, "POST": FEED},
    "/api/v1/transactions/{id}/": {"GET": READ},
    "/api/v1/summaries/": {"GET": READ},
    "/api/v1/summaries/{id}/": {"GET": READ},
    # calendar groups, interfaces, scheduler tasks (DOMAIN §2, issue 3)
    "/api/v1/calendar-groups/": {"GET": READ, "POST": ADMINISTER},
    "/api/v1/calendar-groups/{id}/": {"GET": READ, "PUT": ADMINISTER, "PATCH": ADMINISTER, "DELETE": ADMINISTER},
    "/api/v1/interfaces/": {"GET": READ, "POST": ADMINISTER},
    "/api/v1/interfaces/{id}/": {"GET": READ, "PUT": ADMINISTER, "PATCH": ADMINISTER},
    "/api/v1/scheduler-tasks/": {"GET": READ, "POST": ADMINISTER},
    "/api/v1/scheduler-tasks/{id}/": {"GET": READ, "PUT": ADMINISTER, "PATCH": ADMINISTER, "DELETE": ADMINISTER},
    "/api/v1/scheduler-tasks/{id}/enable/": {"POST": OPERATE},
    "/api/v1/scheduler-tasks/{id}/disable/": {"POST": OPERATE},
    "/api/v1/scheduler-tasks/{id}/suspend/": {"POST": OPERATE},
    "/api/v1/scheduler-tasks/{id}/resume/": {"POST": OPERATE},
    "/api/v1/scheduler-tasks/{id}/run-now/": {"POST": OPERATE},
    "/api/v1/scheduler-tasks/{id}/transitions/": {"GET": READ},
    # workflow jobs (DOMAIN §3, issue 6)
    "/api/v1/spools/": {"GET": READ},
    "/api/v1/spools/{id}/": {"GET": READ, "PATCH": ADMINISTER},
    "/api/v1/spools/{id}/reload/": {"POST": ADMINISTER},
    "/api/v1/spools/{id}/command/": {"POST": OPERATE},
    "/api/v1/jobs/": {"GET": READ, "POST": OPERATE},
    "/api/v1/jobs/add/": {"POST": OPERATE},
    "/api/v1/jobs/{id}/": {"GET": READ},
    "/api/v1/jobs/{id}/attempts/": {"GET": READ},
    "/api/v1/jobs/{id}/start/": {"POST": OPERATE},
    "/api/v1/jobs/{id}/pause/": {"POST": OPERATE},
    "/api/v1/jobs/{id}/reset/": {"POST": OPERATE},
    "/api/v1/jobs/{id}/schedule/": {"POST": OPERATE},
    "/api/v1/jobs/{id}/disable/": {"POST": OPERATE},
    "/api/v1/jobs/{id}/enable/": {"POST": OPERATE},
    "/api/v1/jobs/{id}/comment/": {"POST": OPERATE},
    "/api/v1/scheduler/": {"GET": READ},
    "/api/v1/scheduler/shutdown/": {"POST": ADMINISTER},
    "/api/v1/scheduler/resume/": {"POST": ADMINISTER},
    "/api/v1/scheduler/reload/": {"POST": ADMINISTER},
    # the outbox (issue 2)
    "/api/v1/messages/": {"GET": READ},
    "/api/v1/messages/{id}/": {"GET": READ},
    "/api/v1/audit/": {"GET": READ},
    "/api/v1/audit/{id}/": {"GET": READ},
    # alerts to people (DOMAIN §7, issue 13)
    "/api/v1/alerts/": {"GET": READ},
    "/api/v1/alerts/{id}/": {"GET": READ},
    "/api/v1/alerts/{id}/acknowledge/": {"POST": OPERATE},
    "/api/v1/notification-channels/": {"GET": READ, "POST": ADMINISTER},
    "/api/v1/notification-channels/{id}/": {"GET": READ, "PUT": ADMINISTER, "PATCH": ADMINISTER, "DELETE": ADMINISTER},
    "/api/v1/notification-channels/{id}/test/": {"POST": ADMINISTER},
    "/api/v1/alert-rules/": {"GET": READ, "POST": ADMINISTER},
    "/api/v1/alert-rules/{id}/": {"GET": READ, "PUT": ADMINISTER, "PATCH": ADMINISTER, "DELETE": ADMINISTER},
    # cut-offs and the day's forecast (DOMAIN §8, issue 15)
    "/api/v1/cutoffs/": {"GET": READ, "POST": ADMINISTER},
    "/api/v1/cutoffs/{id}/": {"GET": READ, "PUT": ADMINISTER, "PATCH": ADMINISTER, "DELETE": ADMINISTER},
    "/api/v1/forecast/": {"GET": READ},
    # the web monitor's refresh request (issue 7)
    "/monitor/data/": {"GET": READ},
    # the API's description: any logged-in account, a Feeder's tools included (issue 2)
    "/api/schema/": {"GET": LOGGED_IN},
    "/api/docs/": {"GET": LOGGED_IN},
}

# Open on purpose: logging in.
PUBLIC = {"/api/v1/token/", "/api/v1/token/refresh/"}

USERS = {
    roles.VIEWER: "m-viewer",
    roles.FEEDER: "m-feeder",
    roles.OPERATOR: "m-operator",
    roles.ADMINISTRATOR: "m-administrator",
}
MISSING_ID = 987654321


def url_routes(patterns=None, prefix: str = "/") -> dict[str, object]:
    """Every route of the URLconf as "/api/v1/jobs/{id}/start/" -> its view callback."""
    found: dict[str, object] = {}
    for pattern in patterns if patterns is not None else get_resolver().url_patterns:
        text = str(pattern.pattern).lstrip("^").rstrip("$")
        if "format" in text:  # DRF's ".json" suffix variants answer like the route itself
            continue
        text = re.sub(r"\(\?P<pk>[^)]*\)", "{id}", text)
        if isinstance(pattern, URLResolver):
            found.update(url_routes(pattern.url_patterns, prefix + text))
        elif isinstance(pattern, URLPattern):
            found[prefix + text] = pattern.callback
    return found


def api_routes() -> dict[str, object]:
    return {
        route: view
        for route, view in url_routes().items()
        if route.startswith("/api/") or route == "/monitor/data/"
    }


def view_methods(view) -> set[str]:
    """The HTTP methods a route answers (a viewset's action map, or the view's own)."""
    actions = getattr(view, "actions", None)
    if actions:
        allowed = set(getattr(view.cls, "http_method_names", actions))
        # DRF adds "head" to the action map at the first GET: it answers like GET.
        return {method.upper() for method in actions if method in allowed and method != "head"}
    if hasattr(view, "cls"):
        return {m.upper() for m in ("get", "post", "put", "patch", "delete") if hasattr(view.cls, m)}
    return {"GET"}


@pytest.fixture
def role_clients(db) -> dict[str | None, APIClient]:
    from tests.conftest import make_user

    clients: dict[str | None, APIClient] = {None: APIClient()}
    for role, username in USERS.items():
        client = APIClient()
        client.force_login(make_user(username, role))  # session: also what /monitor/data/ takes
        clients[role] = client
    nobody = APIClient()
    nobody.force_login(make_user("m-no-role"))  # logged in, but in no role group
    clients[NO_ROLE] = nobody
    return clients


def test_every_api_route_is_in_the_permission_matrix():
    routes = api_routes()
    listed = set(MATRIX) | PUBLIC
    assert sorted(set(routes) - listed) == [], "a new endpoint needs its line in MATRIX"
    assert sorted(listed - set(routes)) == [], "MATRIX names a route the URLconf no longer has"
    for route, methods in MATRIX.items():
        assert view_methods(routes[route]) == set(methods), route


@pytest.mark.parametrize("route", sorted(MATRIX))
def test_each_role_gets_exactly_what_domain_allows(route, role_clients):
    url = route.replace("{id}", str(MISSING_ID))
    for method, allowed in MATRIX[route].items():
        for role, client in role_clients.items():
            answer = client.generic(method, url, "{}", content_type="application/json")
            who = role or "anonymous"
            if role is None:
                assert answer.status_code == 401, f"{method} {route} as {who}: {answer.status_code}"
            elif role in allowed:
                # Past the permission check: the missing object, or the empty body, is what answers.
                assert answer.status_code not in (401, 403, 405), f"{method} {route} as {who}: {answer.status_code}"
                assert answer.status_code < 500, f"{method} {route} as {who}: {answer.status_code}"
            else:
                assert answer.status_code == 403, f"{method} {route} as {who}: {answer.status_code}"


def test_anonymous_options_and_head_are_refused_too(role_clients):
    anonymous = role_clients[None]
    for route in MATRIX:
        url = route.replace("{id}", str(MISSING_ID))
        # 405: a plain Django view that answers GET only; never the data, never a 2xx.
        assert anonymous.options(url).status_code in (401, 405), route
        assert anonymous.head(url).status_code in (401, 405), route


def test_a_jwt_carries_the_same_roles_as_a_session(api_client_for, feeder, viewer):
    assert api_client_for(feeder).get("/api/v1/jobs/").status_code == 403
    assert api_client_for(feeder).get("/api/v1/transactions/").status_code == 403
    assert api_client_for(viewer).get("/api/v1/jobs/").status_code == 200
    assert api_client_for(viewer).post("/api/v1/transactions/", [], format="json").status_code == 403
