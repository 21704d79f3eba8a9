"""Fixtures for the OpenAPI fuzzing run (tools/fuzz/openapi_fuzz.sh).

Against a fresh coordinator at BASE_URL: registers a user, a node owned by
another user (with a new ed25519 key), submits (as the first user) tasks the node is leased, and
fetches those leases like a real node would. Prints shell `export` lines:

    GM_FUZZ_TOKEN      the user's bearer token
    GM_FUZZ_NODE_ID    the node's id
    GM_FUZZ_NODE_SEED  the node's ed25519 seed (hex), which hooks.py signs with
    GM_FUZZ_LEASES     comma-separated lease ids delivered to the node

so that the fuzzer reaches past authentication: user calls carry the
token, node calls (heartbeat, lease poll, result, refuse, roster) are
signed by hooks.py.
"""

import hashlib
import json
import os
import sys
import time

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives import serialization


def main() -> int:
    base = sys.argv[1].rstrip("/")
    api = base + "/api/v1"
    s = requests.Session()

    def must(resp, *ok):
        if resp.status_code not in ok:
            sys.exit(f"fixtures: {resp.request.method} {resp.request.url} answered {resp.status_code}: {resp.text}")
        return resp.json()

    # The fuzzer's user, and the node's owner: another user, so that the
    # fuzzer's own calls (DELETE /nodes/{id}) cannot withdraw the node.
    token = must(s.post(api + "/users", json={"name": "fuzz"}), 201)["token"]
    auth = {"Authorization": f"Bearer {token}"}
    owner = must(s.post(api + "/users", json={"name": "fuzz node owner"}), 201)["token"]

    seed = os.urandom(32)
    key = Ed25519PrivateKey.from_private_bytes(seed)
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()
    node = must(
        s.post(
            api + "/nodes",
            headers={"Authorization": f"Bearer {owner}"},
            json={
                "name": "fuzz node",
                "region": "GB",
                "public_key": public,
                "capabilities": [{"name": "image-filter", "price": 1.0}, {"name": "audio-denoise", "price": 1.0}],
                "capacity": {"cpu_cores": 2, "memory_mb": 2048},
                "energy": {"sources": [["solar", 0.7], ["grid", 0.3]], "clean_share": 0.7, "carbon_intensity": 120.0},
                "allowed_tasks": ["*"],
            },
        ),
        201,
    )
    node_id = node["id"]

    def signed(method, path, body=None):
        data = b"" if body is None else json.dumps(body).encode()
        ts = int(time.time() * 1000)
        msg = f"greenmesh-request-v1\n{method}\n{path}\n{ts}\n{hashlib.sha256(data).hexdigest()}".encode()
        headers = {
            "x-greenmesh-node": node_id,
            "x-greenmesh-timestamp": str(ts),
            "x-greenmesh-signature": key.sign(msg).hex(),
        }
        if body is not None:
            headers["content-type"] = "application/json"
        return s.request(method, base + path, data=data, headers=headers)

    must(signed("PUT", f"/api/v1/nodes/{node_id}/heartbeat", {"load": 0.0}), 200)
    for i in range(4):
        must(
            s.post(
                api + "/tasks",
                headers=auth,
                json={"task_type": "image-filter", "inputs": {"x": i}, "max_price": 20.0},
            ),
            201,
        )
    # Tasks no node offers, whose importance comes from each source: their
    # polls (1 s in the fuzzing coordinator) have closed by the time the
    # fuzzer lists and reads the user's tasks.
    for extra in [
        {"importance": "low"},
        {"importance": "critical"},
        {"name": "vaccine trial analysis"},
        {},
    ]:
        must(s.post(api + "/tasks", headers=auth, json={"task_type": "object-detect", **extra}), 201)
    leases = []
    deadline = time.time() + 30
    while len(leases) < 4 and time.time() < deadline:
        poll = must(signed("GET", f"/api/v1/nodes/{node_id}/leases?wait=2"), 200)
        leases += [entry["lease"]["lease_id"] for entry in poll["leases"]]
    if not leases:
        sys.exit("fixtures: no lease was delivered to the fuzz node")

    print(f"export GM_FUZZ_TOKEN={token}")
    print(f"export GM_FUZZ_NODE_ID={node_id}")
    print(f"export GM_FUZZ_NODE_SEED={seed.hex()}")
    print(f"export GM_FUZZ_LEASES={','.join(leases)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
