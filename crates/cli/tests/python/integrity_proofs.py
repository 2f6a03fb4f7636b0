"""Checks Logbook's proofs with nothing of Logbook's code: SHA-256 from hashlib, an
RFC 8785 (JCS) serialisation written here, RFC 9162's verification algorithms
written here from the RFC's text, Ed25519 from PyNaCl. Every record's leaf is
recomputed from the JSON GET /logbook/v1/records/{id} answers, its inclusion proof
checked against the newest signed checkpoint and against the first, the
consistency proof between the two, each checkpoint's signature and the chain.
Prints "ok ..." and exits 0, or raises."""

import base64
import hashlib
import json
import math
import os
import urllib.request

from nacl.signing import VerifyKey

BASE = os.environ["BASE"]
TOKEN = os.environ["TOKEN"]


def get(path):
    request = urllib.request.Request(BASE + path, headers={"Authorization": "Bearer " + TOKEN})
    with urllib.request.urlopen(request) as response:
        return json.load(response)


# --- RFC 8785 -------------------------------------------------------------------

def jcs_string(s):
    out = ['"']
    for ch in s:
        c = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\b":
            out.append("\\b")
        elif ch == "\f":
            out.append("\\f")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif c < 0x20:
            out.append("\\u%04x" % c)
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def jcs_number(x):
    """ECMAScript's Number.prototype.toString of a double (RFC 8785 section 3.2.2.3)."""
    x = float(x)
    if math.isnan(x) or math.isinf(x):
        raise ValueError("not representable in JSON")
    if x == 0:
        return "0"
    sign = "-" if x < 0 else ""
    r = repr(abs(x))  # Python's repr is the shortest round-tripping form too
    mantissa, _, exponent = r.partition("e")
    exponent = int(exponent) if exponent else 0
    integer, _, fraction = mantissa.partition(".")
    integer = integer.lstrip("0")
    if integer:
        n = len(integer) + exponent
        digits = integer + fraction
    else:
        stripped = fraction.lstrip("0")
        n = exponent - (len(fraction) - len(stripped))
        digits = stripped
    digits = digits.rstrip("0")
    k = len(digits)
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * (-n) + digits
    e = n - 1
    return sign + digits[0] + ("." + digits[1:] if k > 1 else "") + "e" + ("+" if e >= 0 else "-") + str(abs(e))


def jcs(value):
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return jcs_string(value)
    if isinstance(value, (int, float)):
        return jcs_number(value)
    if isinstance(value, list):
        return "[" + ",".join(jcs(v) for v in value) + "]"
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: k.encode("utf-16-be"))
        return "{" + ",".join(jcs_string(k) + ":" + jcs(value[k]) for k in keys) + "}"
    raise TypeError(type(value))


assert jcs({"b": [1.5, 1e22, 0.001, -0.0, 100], "a": "\u00e9\u0001"}) == '{"a":"\u00e9\\u0001","b":[1.5,1e+22,0.001,0,100]}'


# --- RFC 9162 -------------------------------------------------------------------

def sha256(data):
    return hashlib.sha256(data).digest()


def leaf_hash(data):
    return sha256(b"\x00" + data)


def node_hash(left, right):
    return sha256(b"\x01" + left + right)


def verify_inclusion(leaf, index, size, path, root):
    """Section 2.1.3.2."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(first, second, proof, first_hash, second_hash):
    """Section 2.1.4.2."""
    if first == second:
        return not proof and first_hash == second_hash
    if first == 0 or first > second or not proof:
        return False
    if first & (first - 1) == 0:
        proof = [first_hash] + proof
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == first_hash and sr == second_hash and sn == 0


# --- Checkpoints ----------------------------------------------------------------

def checkpoint_body(checkpoint):
    return {k: checkpoint[k] for k in ("tree_size", "root_hash", "ts", "previous")}


def checkpoint_digest(checkpoint):
    return hashlib.sha256(jcs(checkpoint_body(checkpoint)).encode("utf-8")).hexdigest()


key = get("/logbook/v1/integrity/key")
assert key["algorithm"] == "ed25519", key
verify_key = VerifyKey(base64.b64decode(key["public_key"]))

checkpoints = get("/logbook/v1/integrity/checkpoints?limit=100")["checkpoints"]
assert len(checkpoints) >= 2, checkpoints
assert get("/logbook/v1/integrity/checkpoints/latest") == checkpoints[0]
oldest_first = list(reversed(checkpoints))
for i, c in enumerate(oldest_first):
    verify_key.verify(jcs(checkpoint_body(c)).encode("utf-8"), base64.b64decode(c["signature"]))
    expected_previous = checkpoint_digest(oldest_first[i - 1]) if i else None
    assert c["previous"] == expected_previous, (i, c)
forged = dict(checkpoints[0], tree_size=checkpoints[0]["tree_size"] + 1)
try:
    verify_key.verify(jcs(checkpoint_body(forged)).encode("utf-8"), base64.b64decode(forged["signature"]))
    raise AssertionError("a forged checkpoint verified")
except Exception as e:  # nacl.exceptions.BadSignatureError
    if isinstance(e, AssertionError):
        raise

first, newest = oldest_first[0], oldest_first[-1]

# --- Inclusion --------------------------------------------------------------------

records = []
cursor = ""
while True:
    page = get("/logbook/v1/records?order=asc&limit=1000" + cursor)
    records += page["records"]
    if not page["records"]:
        break
    cursor = "&cursor=" + page["next_cursor"]

inclusions = 0
for listed in records:
    record = get("/logbook/v1/records/%d" % listed["id"])
    leaf = leaf_hash(jcs(record).encode("utf-8"))
    newest_proof = get("/logbook/v1/records/%d/proof" % record["id"])
    proofs = [(newest, newest_proof)]
    if newest_proof["leaf_index"] < first["tree_size"]:
        proofs.append((first, get("/logbook/v1/records/%d/proof?tree_size=%d" % (record["id"], first["tree_size"]))))
    for checkpoint, proof in proofs:
        assert proof["checkpoint"] == checkpoint, (proof, checkpoint)
        assert proof["leaf_hash"] == leaf.hex(), (record, proof)
        path = [bytes.fromhex(h) for h in proof["audit_path"]]
        root = bytes.fromhex(checkpoint["root_hash"])
        assert verify_inclusion(leaf, proof["leaf_index"], proof["tree_size"], path, root), proof
        if path:
            bent = [bytes(32)] + path[1:]
            assert not verify_inclusion(leaf, proof["leaf_index"], proof["tree_size"], bent, root)
        inclusions += 1

# --- Consistency ------------------------------------------------------------------

answer = get("/logbook/v1/integrity/consistency?from=%d&to=%d" % (first["tree_size"], newest["tree_size"]))
proof = [bytes.fromhex(h) for h in answer["proof"]]
assert verify_consistency(first["tree_size"], newest["tree_size"], proof,
                          bytes.fromhex(first["root_hash"]), bytes.fromhex(newest["root_hash"])), answer
assert not verify_consistency(first["tree_size"], newest["tree_size"], proof,
                              sha256(b"another history"), bytes.fromhex(newest["root_hash"]))

print("ok %d records, %d inclusion proofs, %d checkpoints, consistency %d -> %d"
      % (len(records), inclusions, len(checkpoints), first["tree_size"], newest["tree_size"]))
