"""rail_json: small, fail-closed helpers for the JSON assertions of the proof
rails. A rail runs a check as

    rail_py ARGS... <<'PY'
    from rail_json import *
    status = load(arg(1))
    expect(status["authority"]["cluster_role"] == "primary", "role is not primary")
    PY

A failed expectation prints "drift: <message>" as the last line and exits 1;
rail_py turns that line into the phase's drift reason. Inputs are the JSON
documents of `meshc cluster ... --json` (DESIGN §6) and the files written by
rail_http (<label>.status, <label>.headers, <label>.body).
"""
import json
import os
import sys

__all__ = [
    "Drift", "arg", "load", "expect", "equal", "records", "record", "route_records",
    "entries", "meta", "status_view", "http", "write_json",
]


class Drift(Exception):
    """A contract the rail checks does not hold."""


def arg(i):
    """arg(i) is the i-th command-line argument (1-based)."""
    if i >= len(sys.argv):
        raise Drift(f"check called without argument {i}")
    return sys.argv[i]


def load(path):
    """load(path) parses a JSON file, failing with its name when it is not JSON."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise Drift(f"{os.path.basename(path)} does not exist")
    except json.JSONDecodeError as e:
        raise Drift(f"{os.path.basename(path)} is not JSON: {e}")


def expect(cond, message):
    if not cond:
        raise Drift(message)


def equal(what, got, want):
    """equal fails with 'what = got, want want' unless got == want."""
    if got != want:
        raise Drift(f"{what} = {got!r}, want {want!r}")


def records(listing):
    """records(listing) returns the records of a continuity list document,
    failing closed on a record without request_key or a duplicated key."""
    expect(isinstance(listing, dict) and isinstance(listing.get("records"), list),
           "continuity list has no records array")
    seen = set()
    for r in listing["records"]:
        key = r.get("request_key")
        expect(isinstance(key, str) and key != "", f"continuity record without request_key: {r!r}")
        expect(key not in seen, f"continuity list holds request key {key} twice")
        seen.add(key)
    return listing["records"]


def record(listing, key):
    """record(listing, key) is the one record with request key key."""
    found = [r for r in records(listing) if r["request_key"] == key]
    expect(found, f"no continuity record for {key} (keys: {[r['request_key'] for r in records(listing)]})")
    return found[0]


def route_records(listing):
    return [r for r in records(listing) if r["request_key"].startswith("http-route::")]


def entries(diag, transition=None, key=None):
    """entries(diag, transition, key) filters a diagnostics document."""
    expect(isinstance(diag, dict) and isinstance(diag.get("entries"), list),
           "diagnostics document has no entries array")
    out = diag["entries"]
    if transition is not None:
        out = [e for e in out if e.get("transition") == transition]
    if key is not None:
        out = [e for e in out if e.get("request_key") == key]
    return out


def meta(entry):
    """meta(entry) turns an entry's ordered metadata pairs into a dict."""
    pairs = entry.get("metadata") or []
    return {p.get("key"): p.get("value") for p in pairs}


def status_view(status):
    """status_view(status) flattens a status document for comparisons."""
    m, a = status.get("membership", {}), status.get("authority", {})
    return {
        "local_node": m.get("local_node"),
        "nodes": sorted(m.get("nodes") or []),
        "peer_nodes": sorted(m.get("peer_nodes") or []),
        "cluster_role": a.get("cluster_role"),
        "promotion_epoch": a.get("promotion_epoch"),
        "replication_health": a.get("replication_health"),
    }


def http(prefix):
    """http(prefix) reads what rail_http saved: (status code, headers dict with
    lower-case names, parsed JSON body or the raw text)."""
    try:
        with open(prefix + ".status") as f:
            code = int(f.read().strip() or 0)
        headers = {}
        with open(prefix + ".headers", errors="replace") as f:
            for line in f:
                if ":" in line:
                    k, v = line.split(":", 1)
                    headers[k.strip().lower()] = v.strip()
        with open(prefix + ".body", errors="replace") as f:
            text = f.read()
    except FileNotFoundError as e:
        raise Drift(f"HTTP capture missing: {e.filename}")
    try:
        body = json.loads(text)
    except json.JSONDecodeError:
        body = text
    return code, headers, body


def write_json(path, value):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=2, sort_keys=True)
        f.write("\n")


def _excepthook(kind, value, tb):
    if isinstance(value, Drift):
        print(f"drift: {value}", file=sys.stderr)
        sys.exit(1)
    if isinstance(value, (KeyError, TypeError, IndexError)):
        print(f"drift: unexpected JSON shape: {kind.__name__}: {value}", file=sys.stderr)
        sys.exit(1)
    sys.__excepthook__(kind, value, tb)


sys.excepthook = _excepthook
