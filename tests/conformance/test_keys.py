"""API keys stored by the engine: create, look up by secret hash, list, revoke (every engine)."""

from __future__ import annotations

import hashlib

import pytest

from conveyor.backend import Backend
from conveyor.backend.protocol import CreateKeyRequest, RevokeKeyRequest
from conveyor.errors import ConfigError
from tests.conformance.conftest import OpenBackend


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _req(key_id: str, secret: str, tenant: str = "a", scopes: tuple[str, ...] = ("read",)) -> CreateKeyRequest:
    return CreateKeyRequest(key_id=key_id, secret_hash=_hash(secret), tenant=tenant, scopes=scopes, name=f"n-{key_id}")


async def test_create_then_find_by_hash(backend: Backend) -> None:
    before = await backend.now()
    created = await backend.create_key(_req("k1", "s1", tenant="acme", scopes=("submit", "read")))
    after = await backend.now()
    assert (created.key_id, created.name, created.tenant) == ("k1", "n-k1", "acme")
    assert created.scopes == ("submit", "read") and created.secret_hash == _hash("s1")
    assert before <= created.created_at <= after, "created_at comes from the engine clock"
    assert created.revoked_at is None and created.active
    assert await backend.find_key(_hash("s1")) == created
    assert await backend.find_key(_hash("other")) is None


async def test_an_empty_name_defaults_to_the_key_id(backend: Backend) -> None:
    created = await backend.create_key(CreateKeyRequest("k0", _hash("s0"), "a", ("read",)))
    assert created.name == "k0"


async def test_a_taken_id_or_secret_hash_is_refused_and_the_first_key_kept(backend: Backend) -> None:
    first = await backend.create_key(_req("k1", "s1"))
    with pytest.raises(ConfigError):
        await backend.create_key(_req("k1", "s2", tenant="b"))
    with pytest.raises(ConfigError):
        await backend.create_key(_req("k2", "s1", tenant="b"))
    assert await backend.find_key(_hash("s1")) == first
    assert await backend.find_key(_hash("s2")) is None
    assert [k.key_id for k in await backend.list_keys()] == ["k1"]


async def test_list_is_oldest_first(backend: Backend) -> None:
    assert await backend.list_keys() == []
    for i in range(3):
        await backend.create_key(_req(f"k{i}", f"s{i}"))
    listed = await backend.list_keys()
    assert [(k.created_at, k.key_id) for k in listed] == sorted((k.created_at, k.key_id) for k in listed)
    assert {k.key_id for k in listed} == {"k0", "k1", "k2"}


async def test_revoke_once_and_the_revoked_key_is_still_found(backend: Backend) -> None:
    await backend.create_key(_req("k1", "s1"))
    await backend.create_key(_req("k2", "s2"))
    before = await backend.now()
    assert await backend.revoke_key(RevokeKeyRequest("k1")) is True
    assert await backend.revoke_key(RevokeKeyRequest("k1")) is False, "already revoked"
    assert await backend.revoke_key(RevokeKeyRequest("nope")) is False, "unknown key"
    found = await backend.find_key(_hash("s1"))
    assert found is not None and not found.active and found.revoked_at is not None
    assert found.revoked_at >= before
    other = await backend.find_key(_hash("s2"))
    assert other is not None and other.active
    assert {k.key_id: k.active for k in await backend.list_keys()} == {"k1": False, "k2": True}


async def test_keys_are_seen_by_another_instance_on_the_same_store(backend: Backend, open_backend: OpenBackend) -> None:
    await backend.create_key(_req("k1", "s1"))
    other = await open_backend()
    assert (await other.find_key(_hash("s1"))) is not None
    assert await other.revoke_key(RevokeKeyRequest("k1")) is True
    found = await backend.find_key(_hash("s1"))
    assert found is not None and not found.active
