"""The Model Hub authorises writes, and its index survives a restart with the model files.

Invariant: only a model's owner writes to it (new versions, uploaded files); anyone else signed in
gets 403 with a clear message, and the listing (which CID a file name points at) is unchanged.
The attack this reproduces: sign up as a stranger, then upload over the devnet's shipped
`price-regression` model (it answered 201 and repointed the listing).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import httpx
import pytest

import opengradient as og
from opengradient.devnet.node import Devnet
from opengradient.devnet.services.hub import DEV_EMAIL, DEV_PASSWORD


def _sign_up(http: httpx.Client, email: str, password: str = "stranger-password") -> dict[str, str]:
    response = http.post("/auth/v1/accounts:signUp", json={"email": email, "password": password,
                                                            "returnSecureToken": True})
    if response.status_code == 400 and "EMAIL_EXISTS" in response.text:
        response = http.post("/auth/v1/accounts:signInWithPassword",
                             json={"email": email, "password": password, "returnSecureToken": True})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['idToken']}"}


def _files(http: httpx.Client, auth: dict[str, str], model: str, version: str) -> list[dict[str, Any]]:
    response = http.get(f"/api/v0/models/{model}/versions/{version}/files", headers=auth)
    assert response.status_code == 200, response.text
    return list(response.json())


@pytest.fixture(scope="module")
def http(devnet_http: Devnet) -> Any:
    with httpx.Client(base_url=devnet_http.url, timeout=30) as client:
        yield client


def test_a_stranger_cannot_upload_over_a_shipped_model(devnet_http: Devnet, http: httpx.Client) -> None:
    owner = _sign_up(http, DEV_EMAIL, DEV_PASSWORD)
    before = _files(http, owner, "price-regression", "1.00")
    stranger = _sign_up(http, "stranger@example.com")
    response = http.post("/api/v0/models/price-regression/versions/1.00/files", headers=stranger,
                         files={"file": ("model.onnx", io.BytesIO(b"not the model"), "application/octet-stream")})
    assert response.status_code == 403, response.text
    message = response.json()["error"]["message"]
    assert "belongs to another user" in message and "only its owner" in message
    assert _files(http, owner, "price-regression", "1.00") == before  # the listing still points at the model
    model = devnet_http.model("price-regression")
    assert any(f["ipfsCid"] == model.cid for f in before)


def test_a_stranger_cannot_add_versions_to_another_users_model(http: httpx.Client) -> None:
    stranger = _sign_up(http, "stranger2@example.com")
    response = http.post("/api/v0/models/price-regression/versions", headers=stranger,
                         json={"notes": "mine now", "is_major": False})
    assert response.status_code == 403, response.text
    owner = _sign_up(http, DEV_EMAIL, DEV_PASSWORD)
    versions = http.get("/api/v0/models/price-regression", headers=owner).json()["versions"]
    assert all(v["notes"] != "mine now" for v in versions)


def test_the_owner_still_writes_and_others_still_read(http: httpx.Client) -> None:
    alice = _sign_up(http, "alice-owner@example.com")
    assert http.post("/api/v0/models/", headers=alice, json={"name": "alices-model", "description": ""}
                     ).status_code == 201
    version = http.post("/api/v0/models/alices-model/versions", headers=alice, json={"notes": "v"}).json()
    upload = http.post(f"/api/v0/models/alices-model/versions/{version['versionString']}/files", headers=alice,
                       files={"file": ("m.onnx", io.BytesIO(b"alice's bytes"), "application/octet-stream")})
    assert upload.status_code == 201, upload.text
    bob = _sign_up(http, "bob-reader@example.com")
    listed = _files(http, bob, "alices-model", version["versionString"])
    assert [f["ipfsCid"] for f in listed] == [upload.json()["ipfsCid"]]


def test_the_sdk_reports_the_refusal_as_a_typed_error(devnet: Devnet) -> None:
    devnet.hub.add_user("sdk-stranger@example.com", "stranger-password")
    client = devnet.new_client(email="sdk-stranger@example.com", password="stranger-password")
    with pytest.raises(og.AuthenticationError) as refused:
        client.model_hub.create_version("price-regression", notes="hijack")
    assert refused.value.status_code == 403
    assert "belongs to another user" in str(refused.value)
    assert "only a model's owner" in (refused.value.hint or "")


def test_the_hub_index_survives_a_restart_with_the_same_data_dir(tmp_path: Path) -> None:
    with og.devnet.start(data_dir=tmp_path) as net:
        repo = net.client.model_hub.create_model("kept-model", "survives restarts")
        path = tmp_path / "upload.bin"
        path.write_bytes(b"bytes that must stay listed")
        uploaded = net.client.model_hub.upload(str(path), "kept-model", repo.initialVersion)
    with og.devnet.start(data_dir=tmp_path) as net:
        files = net.client.model_hub.list_files("kept-model", repo.initialVersion)
        assert [f["ipfsCid"] for f in files] == [uploaded.modelCid]
        assert net.store.get(uploaded.modelCid) == b"bytes that must stay listed"
        assert net.hub.model_names().count("kept-model") == 1
        shipped = net.client.model_hub.list_files("price-regression", "1.00")
        assert [f["ipfsCid"] for f in shipped] == [net.model("price-regression").cid]


def test_an_unreadable_index_is_refused_and_left_alone(tmp_path: Path) -> None:
    (tmp_path / "hub.json").write_text("{not json")
    with pytest.raises(ValueError, match="cannot be read") as refused:
        og.devnet.start(data_dir=tmp_path)
    assert "move it away" in str(refused.value)
    assert (tmp_path / "hub.json").read_text() == "{not json"
