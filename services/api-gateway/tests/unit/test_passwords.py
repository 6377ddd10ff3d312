"""SMTP token credentials: secrets, argon2, the verified-password cache, nothing at import."""

import base64
import os
import subprocess
import sys

from mailstream.gateway import passwords
from mailstream.gateway.passwords import VerifiedCache


def test_passwords_carry_at_least_128_random_bits_and_ids_are_unique():
    secrets = {passwords.new_password() for _ in range(200)}
    assert len(secrets) == 200
    assert all(len(base64.urlsafe_b64decode(p + "==")) * 8 >= 128 for p in secrets)
    ids = {passwords.new_token_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(set(i) <= set(passwords.ID_ALPHABET) and len(i) == passwords.ID_LENGTH for i in ids)


def test_passwords_are_stored_as_salted_argon2id_and_verified():
    password = passwords.new_password()
    first, second = passwords.hash_password(password), passwords.hash_password(password)
    assert first.startswith("$argon2id$") and first != second and password not in first
    assert passwords.verify_password(first, password)
    assert not passwords.verify_password(first, password + "x")
    assert not passwords.verify_password(None, password)  # unknown token: same work, refused
    assert not passwords.verify_password("not a hash", password)


def test_importing_computes_no_hash():
    check = (
        "from mailstream.gateway import passwords as p; "
        "assert p._hasher.cache_info().currsize == 0 and p._dummy_hash.cache_info().currsize == 0"
    )
    # a fresh interpreter importing the same modules as this one
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    subprocess.run([sys.executable, "-c", check], check=True, env=env)


def test_the_verified_cache_misses_once_the_stored_hash_changes():
    cache = VerifiedCache(size=2)
    cache.add("hash-1", "pw")
    assert cache.hit("hash-1", "pw") and not cache.hit("hash-1", "other") and not cache.hit("hash-2", "pw")
    cache.add("hash-2", "a")
    cache.add("hash-3", "b")
    assert not cache.hit("hash-1", "pw")  # evicted, least recently used


def test_a_hit_keeps_an_entry_in_the_verified_cache():
    cache = VerifiedCache(size=2)
    cache.add("hash-1", "pw")
    cache.add("hash-2", "a")
    assert cache.hit("hash-1", "pw")  # now the most recently used
    cache.add("hash-3", "b")
    assert cache.hit("hash-1", "pw") and not cache.hit("hash-2", "a")
