"""A request fuzzer against the devnet's gateway, facilitator and Model Hub routes (in-process).

Hypothesis generates bodies, headers and paths; every answer must be below 500, every error a JSON
`{"error": …}` body, and no bad request may move money: after each request the payments chain's
block number and the OPG balances of the payer and of the gateway's payTo are unchanged.

A "bad request" here is built to be bad: a chat or completion body broken in one field (checked
against the gateway's own validation), any garbage in `PAYMENT-SIGNATURE` / `X-PAYMENT`, or a
*genuine* payment signed for a valid request but attached to a broken body. Known 500s and
non-JSON errors are pinned by the xfail tests at the end (and kept out of the sweeps so the sweeps
guard everything else). Examples are derandomised (stable in CI); OG_FUZZ_EXPLORE=1 explores with fresh
seeds and OG_FUZZ_EXAMPLES=N runs N examples per test.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import opengradient as og
from opengradient.client.payments import Payer, payment_required_of
from opengradient.client.wallet import Wallet
from opengradient.devnet.node import IN_PROCESS_URL, Devnet
from opengradient.devnet.services.hub import DEV_EMAIL, DEV_PASSWORD
from opengradient.devnet.services.llm.gateway import _BadRequestError, _validate_chat, _validate_completion
from tests.reliability.chainview import ChainView

pytestmark = pytest.mark.timeout(600)

FUZZ = settings(max_examples=int(os.environ.get("OG_FUZZ_EXAMPLES", "120")), deadline=None,
                derandomize=not os.environ.get("OG_FUZZ_EXPLORE"),
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                       HealthCheck.filter_too_much])


class Quiet:
    """A devnet of its own (nothing else moves its chain) and an httpx client into it."""

    def __init__(self, net: Devnet) -> None:
        self.net = net
        self.http = httpx.Client(transport=net._bridge.transport, base_url=IN_PROCESS_URL, timeout=30)
        self.view = ChainView(net, "payments")
        self.token = net.network.payments.token_address
        self.payer = net.accounts[1]
        self.watched = [self.payer.address, net.gateway.pay_to]
        sign_in = self.http.post("/auth/v1/accounts:signInWithPassword",
                                 json={"email": DEV_EMAIL, "password": DEV_PASSWORD, "returnSecureToken": True})
        self.token_header = {"Authorization": f"Bearer {sign_in.json()['idToken']}"}
        self.http.post("/api/v0/models/", json={"name": "fuzz-model", "description": "x"},
                       headers=self.token_header)
        # A genuine payment for a valid request, to attach to broken ones.
        valid = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 10}
        offer = payment_required_of(self.http.post("/v1/chat/completions", json=valid))
        self.genuine_payment = Payer(Wallet(self.payer.private_key), net.network.payments,
                                     max_payment=10**20).sign(offer).header
        self.baseline = self.snapshot()

    def snapshot(self) -> tuple[int, list[int]]:
        return self.view.block_number(), [self.view.token_balance(self.token, a) for a in self.watched]

    def check(self, response: httpx.Response, *, known_route: bool = True) -> None:
        assert response.status_code < 500, f"{response.status_code}: {response.text[:300]}"
        if response.status_code >= 400 and known_route:
            assert response.headers.get("content-type", "").startswith("application/json"), response.text[:200]
            body = response.json()
            assert isinstance(body, dict) and isinstance(body.get("error"), dict), body
            assert body["error"].get("message"), body
        assert self.snapshot() == self.baseline, "a bad request moved money on the payments chain"


@pytest.fixture(scope="module")
def quiet() -> Iterator[Quiet]:
    with og.devnet.start() as net:
        harness = Quiet(net)
        yield harness
        harness.http.close()


# --------------------------------------------------------------------------------------------------
# Strategies
# --------------------------------------------------------------------------------------------------

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=10))
KEYS = st.text(max_size=6).filter(lambda k: k != "tool_calls")  # see test_malformed_tool_calls_… below
JSON = st.recursive(SCALARS, lambda c: st.one_of(st.lists(c, max_size=3), st.dictionaries(KEYS, c, max_size=3)),
                    max_leaves=15)
HEADER_TEXT = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


PAYMENT_JUNK = st.one_of(
    HEADER_TEXT,
    JSON.map(lambda v: b64(json.dumps(v).encode())),
    st.binary(max_size=40).map(b64),
    st.fixed_dictionaries({"x402Version": st.sampled_from([1, 2, 3, "2", None]), "payload": JSON,
                           "accepted": JSON, "scheme": JSON, "network": JSON}).map(
        lambda v: b64(json.dumps(v).encode())),
    st.fixed_dictionaries({"x402Version": st.just(2), "accepted": JSON, "payload": st.fixed_dictionaries({
        "signature": st.one_of(HEADER_TEXT, st.just("0x" + "11" * 65)),
        "authorization": st.fixed_dictionaries({}, optional={
            "from": st.one_of(HEADER_TEXT, st.just("0x" + "22" * 20)), "to": JSON, "value": JSON,
            "validAfter": JSON, "validBefore": JSON, "nonce": st.one_of(HEADER_TEXT, st.just("0x" + "33" * 32))})})}
    ).map(lambda v: b64(json.dumps(v).encode())),
)

VALID_CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 10,
              "temperature": 0.0}
VALID_COMPLETION = {"model": "gpt-4o", "prompt": "Once", "max_tokens": 10}
CHAT_BREAKS: dict[str, Any] = {
    "model": st.one_of(st.none(), st.integers(), st.just(""), st.just("   "), st.lists(SCALARS, max_size=2),
                       st.just("no-such-provider/model")),
    "messages": st.one_of(st.none(), st.just([]), SCALARS, st.lists(SCALARS, min_size=1, max_size=3),
                          st.lists(st.dictionaries(KEYS, JSON, max_size=3), min_size=1, max_size=2),
                          st.lists(st.fixed_dictionaries({"role": st.text(max_size=8), "content": JSON}), min_size=1,
                                   max_size=2),
                          st.lists(st.fixed_dictionaries({"role": st.just("user"),
                                                          "content": st.one_of(st.integers(), st.booleans(),
                                                                               st.dictionaries(KEYS, SCALARS))}),
                                   min_size=1, max_size=2)),
    "max_tokens": st.one_of(st.integers(max_value=0), st.integers(min_value=1_000_001), st.floats(), st.booleans(),
                            st.text(max_size=4)),
    "temperature": st.one_of(st.floats(max_value=-0.001), st.floats(min_value=2.001), st.text(max_size=3),
                             st.booleans(), st.lists(SCALARS, max_size=1)),
    "stream": st.one_of(st.integers(), st.text(max_size=3), st.lists(SCALARS, max_size=1)),
    "stop": st.one_of(st.integers(), st.booleans(), st.lists(st.one_of(st.integers(), st.none()), min_size=1,
                                                             max_size=2)),
    "stream_options": st.one_of(st.integers(), st.text(max_size=3), st.lists(SCALARS, max_size=1)),
    "tools": st.one_of(st.integers(), st.text(max_size=3), st.lists(SCALARS, min_size=1, max_size=2),
                       st.lists(st.dictionaries(KEYS, JSON, max_size=2), min_size=1, max_size=2)),
    "tool_choice": st.one_of(st.integers(), st.text(max_size=5).filter(lambda s: s not in ("auto", "none", "required")),
                             st.lists(SCALARS, max_size=1)),
    "response_format": st.one_of(st.integers(), st.text(max_size=5), st.lists(SCALARS, max_size=1)),
}


@st.composite
def broken_chat_bodies(draw: st.DrawFn) -> Any:
    """A chat body the gateway must refuse (checked with its own validator)."""
    if draw(st.integers(0, 9)) == 0:
        body: Any = draw(st.one_of(SCALARS, st.lists(JSON, max_size=3)))
    else:
        body = dict(VALID_CHAT)
        for key in draw(st.lists(st.sampled_from(sorted(CHAT_BREAKS)), min_size=1, max_size=3, unique=True)):
            body[key] = draw(CHAT_BREAKS[key])
        if draw(st.booleans()):
            extra = draw(st.dictionaries(KEYS, JSON, max_size=2))
            body.update({k: v for k, v in extra.items() if k not in body})
    try:
        _validate_chat(body)
    except _BadRequestError:
        return body
    assume(False)  # the breaks happened to make a valid body: not a bad request
    return body


@st.composite
def broken_completion_bodies(draw: st.DrawFn) -> Any:
    body = dict(VALID_COMPLETION)
    body[draw(st.sampled_from(["prompt", "max_tokens", "temperature", "model", "stop"]))] = draw(
        st.one_of(st.none(), st.integers(max_value=0), st.lists(st.integers(), min_size=1, max_size=2),
                  st.floats(min_value=3), st.booleans(), st.dictionaries(KEYS, SCALARS, max_size=2)))
    try:
        _validate_completion(body)
    except _BadRequestError:
        return body
    assume(False)
    return body


def encoded(body: Any, how: str) -> bytes:
    if how == "json":
        return json.dumps(body).encode()
    if how == "truncated":
        return json.dumps(body).encode()[:-1]
    return b"\xff\xfe" + json.dumps(body).encode()  # not UTF-8


# --------------------------------------------------------------------------------------------------
# The gateway
# --------------------------------------------------------------------------------------------------


@FUZZ
@given(body=broken_chat_bodies(), how=st.sampled_from(["json", "json", "truncated", "binary"]),
       payment=st.sampled_from(["none", "genuine", "junk"]), junk=PAYMENT_JUNK,
       settlement=st.one_of(st.none(), st.sampled_from(["settle", "settle-metadata", "batch"]), HEADER_TEXT),
       stream=st.booleans())
def test_broken_chat_requests_get_4xx_json_and_settle_nothing(quiet: Quiet, body: Any, how: str, payment: str,
                                                              junk: str, settlement: str | None,
                                                              stream: bool) -> None:
    if stream and isinstance(body, dict):
        body = {**body, "stream": True} if "stream" not in body else body
    headers = {"Content-Type": "application/json"}
    if settlement is not None:
        headers["X-SETTLEMENT-TYPE"] = settlement
    if payment == "genuine":
        headers["PAYMENT-SIGNATURE"] = quiet.genuine_payment
    elif payment == "junk":
        headers["PAYMENT-SIGNATURE"] = junk
    response = quiet.http.post("/v1/chat/completions", content=encoded(body, how), headers=headers)
    assert response.status_code in (400, 402), response.text[:300]
    quiet.check(response)


@FUZZ
@given(body=broken_completion_bodies(), payment=st.sampled_from(["genuine", "junk", "legacy"]), junk=PAYMENT_JUNK)
def test_broken_completion_requests_get_4xx_json_and_settle_nothing(quiet: Quiet, body: Any, payment: str,
                                                                    junk: str) -> None:
    headers = {"PAYMENT-SIGNATURE": quiet.genuine_payment} if payment == "genuine" else (
        {"PAYMENT-SIGNATURE": junk} if payment == "junk" else {"X-PAYMENT": junk})
    response = quiet.http.post("/v1/completions", content=json.dumps(body), headers=headers)  # NaN/inf allowed
    assert response.status_code == 400, response.text[:300]
    quiet.check(response)


@FUZZ
@given(junk=PAYMENT_JUNK, legacy=st.booleans(), route=st.sampled_from(["/v1/chat/completions", "/v1/completions"]),
       max_tokens=st.integers(1, 2000), genuine=st.booleans())
def test_valid_requests_with_junk_payments_are_refused_and_settle_nothing(quiet: Quiet, junk: str, legacy: bool,
                                                                          route: str, max_tokens: int,
                                                                          genuine: bool) -> None:
    if genuine:  # a real authorization, but for another price (it pays gpt-4o with max_tokens=10)
        assume(max_tokens != 10)
        junk = quiet.genuine_payment
    body = dict(VALID_CHAT if route.endswith("chat/completions") else VALID_COMPLETION, max_tokens=max_tokens)
    response = quiet.http.post(route, json=body, headers={"X-PAYMENT" if legacy else "PAYMENT-SIGNATURE": junk})
    assert response.status_code == 402, response.text[:300]
    assert response.headers.get("PAYMENT-REQUIRED")
    quiet.check(response, known_route=False)  # a 402 body is `{}` or the x402 v1 offer


@FUZZ
@given(route=st.sampled_from(["/facilitator/verify", "/facilitator/settle"]),
       body=st.one_of(JSON, st.fixed_dictionaries({"x402Version": st.sampled_from([1, 2]),
                                                   "paymentPayload": JSON, "paymentRequirements": JSON})))
def test_facilitator_refuses_junk_and_settles_nothing(quiet: Quiet, route: str, body: Any) -> None:
    response = quiet.http.post(route, json=body)
    quiet.check(response)
    if response.status_code == 200:
        answer = response.json()
        assert answer.get("isValid") is not True and answer.get("success") is not True


@FUZZ
@given(nonce=HEADER_TEXT)
def test_attestation_nonce_fuzz(quiet: Quiet, nonce: str) -> None:
    quiet.check(quiet.http.get("/enclave/attestation", params={"nonce": nonce}))


# --------------------------------------------------------------------------------------------------
# The Model Hub and its sign-in
# --------------------------------------------------------------------------------------------------

SEGMENT = st.one_of(st.text(max_size=12), st.sampled_from(["fuzz-model", "1.00", "..", ".", "%2F", "a b"]))


@FUZZ
@given(route=st.sampled_from(["models", "models/{name}", "models/{name}/versions",
                              "models/{name}/versions/{version}/files"]),
       method=st.sampled_from(["GET", "POST"]), name=SEGMENT, version=SEGMENT,
       auth=st.one_of(st.just("valid"), st.just("none"), HEADER_TEXT),
       body=st.one_of(JSON.map(lambda v: json.dumps(v).encode()), st.binary(max_size=64)),
       content_type=st.sampled_from(["application/json", "multipart/form-data; boundary=x", "text/plain",
                                     "multipart/form-data"]))
def test_hub_routes_answer_4xx_json_to_junk(quiet: Quiet, route: str, method: str, name: str, version: str,
                                            auth: str, body: bytes, content_type: str) -> None:
    path = "/api/v0/" + route.format(name=quote(name, safe=""), version=quote(version, safe=""))
    headers = {"Content-Type": content_type}
    if auth == "valid":
        headers.update(quiet.token_header)
    elif auth != "none":
        headers["Authorization"] = auth
    response = quiet.http.request(method, path, content=body, headers=headers)
    known = (method == "POST" and route != "models/{name}") or (method == "GET" and route != "models"
                                                                and route != "models/{name}/versions")
    if response.status_code in (404, 405) and not response.headers.get("content-type", "").startswith(
            "application/json"):
        known = False  # the router's own 404/405 (see test_unknown_routes_answer_json_errors)
    quiet.check(response, known_route=known)


@FUZZ
@given(route=st.sampled_from(["accounts:signInWithPassword", "verifyPassword", "accounts:signUp", "signupNewUser",
                              "token"]),
       body=st.one_of(JSON, st.fixed_dictionaries({"email": JSON, "password": JSON}),
                      st.fixed_dictionaries({"grant_type": JSON, "refresh_token": JSON})),
       form=st.booleans())
def test_sign_in_routes_answer_4xx_json_to_junk(quiet: Quiet, route: str, body: Any, form: bool) -> None:
    if form and isinstance(body, dict):
        response = quiet.http.post(f"/auth/v1/{route}", data={str(k): str(v) for k, v in body.items()})
    else:
        response = quiet.http.post(f"/auth/v1/{route}", json=body)
    quiet.check(response)


@FUZZ
@given(method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]),
       path=st.one_of(st.sampled_from(["/", "/v1/chat/completions", "/v1/completions", "/signing-key",
                                       "/enclave/attestation", "/rpc/payments", "/rpc/alpha", "/api/v0/models/",
                                       "/auth/v1/token", "/facilitator/supported",
                                       "/artela-network/artela-rollkit/inference/tx/x"]),
                      st.text(max_size=20).map(lambda s: "/" + quote(s))),
       body=st.binary(max_size=64))
def test_any_method_and_path_is_below_500(quiet: Quiet, method: str, path: str, body: bytes) -> None:
    response = quiet.http.request(method, path, content=body)
    quiet.check(response, known_route=False)


# --------------------------------------------------------------------------------------------------
# Known gaps, pinned
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tool_calls", ["x", ["x"], [{"function": 5}], [{"id": "a", "function": "f"}]])
def test_malformed_tool_calls_in_messages_are_a_400(quiet: Quiet, tool_calls: Any) -> None:
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"},
                                            {"role": "assistant", "content": None, "tool_calls": tool_calls}]}
    response = quiet.http.post("/v1/chat/completions", json=body, headers={"PAYMENT-SIGNATURE": quiet.genuine_payment})
    assert response.status_code == 400, response.text[:200]
    quiet.check(response)


@pytest.mark.parametrize(("method", "path"), [("GET", "/no-such-route"), ("GET", "/api/v0/no-such-route"),
                                              ("GET", "/v1/chat/completions"), ("DELETE", "/api/v0/models/")])
def test_unknown_routes_answer_json_errors(quiet: Quiet, method: str, path: str) -> None:
    response = quiet.http.request(method, path)
    assert response.status_code in (404, 405)
    quiet.check(response)
