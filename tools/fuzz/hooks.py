"""Schemathesis hooks for the greenmesh OpenAPI fuzzing run.

Loaded through `hooks` in tools/fuzz/schemathesis.toml. They act on each
prepared HTTP request, just before it is sent (so the bytes signed are the
bytes sent):

- Node calls (`/nodes/{id}/heartbeat`, `/nodes/{id}/leases`,
  `/leases/{id}/result|refuse|roster`) are, most of the time (GM_FUZZ_SIGN_SHARE,
  default 0.8), pointed at the fixture node or one of its leases and signed
  with its key, as `greenmesh provide` signs them: the generated bodies and
  queries then reach the handlers instead of stopping at `401`. The rest go
  out as generated (unknown ids, generated or missing signatures).
- `?wait=N` (long-polls of up to 25 s) is sent as `wait=0` when N is a
  whole number the server would accept, so that the run is not spent
  waiting; malformed values (negative, fractional, text, too large) go out
  as generated.

Generated `text/csv` bodies (a region's grid signal, `PUT
/admin/regions/{region}/signal`) are mostly trace-shaped: a header, then
`date time,value` lines with dates, times and values in and out of range,
mixed with arbitrary lines and bytes, so that the trace parser, not just
its first check, is exercised.

They also count the requests sent and the responses by status, and write
the counts as JSON to GM_FUZZ_STATS when the run ends (the script's
summary).

The fixture (tools/fuzz/fixtures.py) exports GM_FUZZ_NODE_ID,
GM_FUZZ_NODE_SEED and GM_FUZZ_LEASES.
"""

import atexit
import collections
import hashlib
import json
import os
import random
import re
import threading
import time
from urllib.parse import urlsplit, urlunsplit

import requests
import schemathesis
from hypothesis import strategies as st
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

NODE_ID = os.environ.get("GM_FUZZ_NODE_ID", "")
SEED = os.environ.get("GM_FUZZ_NODE_SEED", "")
LEASES = [l for l in os.environ.get("GM_FUZZ_LEASES", "").split(",") if l]
SIGN_SHARE = float(os.environ.get("GM_FUZZ_SIGN_SHARE", "0.8"))
KEY = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(SEED)) if SEED else None

NODE_PATH = re.compile(r"^(/api/v1/nodes/)([^/]+)(/(?:heartbeat|leases))$")
LEASE_PATH = re.compile(r"^(/api/v1/leases/)([^/]+)(/(?:result|refuse|roster))$")
WAIT = re.compile(r"(^|&)wait=(\d+)(?=&|$)")
U64_MAX = 2**64 - 1

_rng = random.Random(os.environ.get("GM_FUZZ_HOOK_SEED", "greenmesh"))
_send = requests.Session.send
_lock = threading.Lock()
_stats = {"requests": 0, "signed": 0, "no_response": 0, "status": collections.Counter()}
_by_operation = collections.defaultdict(collections.Counter)


def _no_long_poll(query: str) -> str:
    def repl(m: re.Match) -> str:
        value = int(m.group(2))
        return m.group(0) if value > U64_MAX else f"{m.group(1)}wait=0"

    return WAIT.sub(repl, query)


def _sign(request: requests.PreparedRequest) -> None:
    body = request.body or b""
    if isinstance(body, str):
        body = body.encode()
    if not isinstance(body, (bytes, bytearray)):
        return  # a streamed body: sent unsigned
    ts = int(time.time() * 1000)
    msg = (
        f"greenmesh-request-v1\n{request.method.upper()}\n{request.path_url}\n{ts}\n"
        f"{hashlib.sha256(body).hexdigest()}"
    ).encode()
    request.headers["x-greenmesh-node"] = NODE_ID
    request.headers["x-greenmesh-timestamp"] = str(ts)
    request.headers["x-greenmesh-signature"] = KEY.sign(msg).hex()


def send(self: requests.Session, request: requests.PreparedRequest, **kwargs):
    parts = urlsplit(request.url)
    path, query = parts.path, parts.query
    if "wait=" in query:
        query = _no_long_poll(query)
    sign = False
    if KEY is not None and _rng.random() < SIGN_SHARE:
        if m := NODE_PATH.match(path):
            path, sign = f"{m.group(1)}{NODE_ID}{m.group(3)}", True
        elif LEASES and (m := LEASE_PATH.match(path)):
            path, sign = f"{m.group(1)}{_rng.choice(LEASES)}{m.group(3)}", True
    request.url = urlunsplit((parts.scheme, parts.netloc, path, query, parts.fragment))
    if sign:
        _sign(request)
    with _lock:
        _stats["requests"] += 1
        _stats["signed"] += sign
    try:
        response = _send(self, request, **kwargs)
    except Exception:
        with _lock:
            _stats["no_response"] += 1
        raise
    with _lock:
        _stats["status"][response.status_code] += 1
    return response


_csv_time = st.builds(
    "{:04}-{:02}-{:02}{}{:02}:{:02}:{:02}".format,
    st.integers(0, 10000),
    st.integers(0, 13),
    st.integers(0, 32),
    st.sampled_from([" ", "T", "", "  "]),
    st.integers(0, 25),
    st.integers(0, 61),
    st.integers(0, 61),
)
_csv_value = st.one_of(
    st.floats(min_value=0, max_value=2000).map(str),
    st.floats().map(str),
    st.integers(-(10**3), 10**40).map(str),
    st.text(max_size=8),
)
_csv_line = st.one_of(
    st.tuples(_csv_time, _csv_value).map(",".join),
    st.tuples(st.text(max_size=25), _csv_value).map(",".join),
    st.text(max_size=40),
)
_csv = st.one_of(
    st.lists(_csv_line, max_size=60).map(lambda lines: "\n".join(["Time,Carbon Intensity", *lines]).encode()),
    st.lists(_csv_line, max_size=10).map(lambda lines: "\r\n".join(lines).encode()),
    st.binary(max_size=200),
)
schemathesis.openapi.media_type("text/csv", _csv)


@schemathesis.hook
def after_call(context, case, response) -> None:
    with _lock:
        _by_operation[case.operation.label][response.status_code] += 1


def _write_stats() -> None:
    path = os.environ.get("GM_FUZZ_STATS")
    if path:
        with _lock, open(path, "w") as f:
            json.dump(
                {
                    **_stats,
                    "status": {str(k): v for k, v in sorted(_stats["status"].items())},
                    "operations": {
                        op: {str(k): v for k, v in sorted(c.items())} for op, c in sorted(_by_operation.items())
                    },
                },
                f,
            )


requests.Session.send = send
atexit.register(_write_stats)
