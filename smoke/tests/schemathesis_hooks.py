"""schemathesis hooks for the contract fuzz test (`contract_fuzz.rs`).

Every operation but register and log-in needs a session, which OpenAPI links cannot carry (the
token goes into a header the document describes as a security scheme). This auth provider
registers a fresh user and logs in, so generated requests reach the handlers instead of
stopping at 401; the token is renewed every few seconds because generated requests end
sessions (log out, a wrong `current_password`, deleting the user).
"""

import os
import uuid

import requests
import schemathesis

BASE = os.environ["CONTRACT_FUZZ_URL"].rstrip("/")
HEADERS = {"x-api-key": os.environ["CONTRACT_FUZZ_API_KEY"]}


@schemathesis.auth(refresh_interval=2)
class SessionToken:
    def get(self, case, context):
        email = f"fuzz-{uuid.uuid4().hex}@example.com"
        password = "fuzz password " + uuid.uuid4().hex
        user = {"email": email, "name": "Fuzz", "password": password}
        requests.post(f"{BASE}/users", json=user, headers=HEADERS, timeout=30).raise_for_status()
        login = {"email": email, "password": password}
        response = requests.post(f"{BASE}/sessions", json=login, headers=HEADERS, timeout=30)
        response.raise_for_status()
        return response.json()["token"]

    def set(self, case, data, context):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"

