"""backend_proof_check.py DIST BUILT_HTML REPO BACKEND_PHASES REMOTE_PHASES

The backend-proof phase of scripts/verify-public-surface.sh: the Production
Backend Proof page (as built), the reference backend's README and the
scripts it names agree.

  - the built page exists and the built Distributed Proof page links to it;
  - the page names scripts/verify-backend.sh, scripts/verify-remote.sh and
    examples/reference-backend/scripts/verify.sh, and each file exists; the
    backend README names the same three;
  - the page shows each rail's phases, in the order --phases prints them;
  - the page and the README name every recovery signal, and each is a JSON
    field of the backend's Signals (jobs/store.go);
  - the README names every route, and each is registered in api/api.go;
  - the page's measured figures table has a row for each figure the rail
    writes (figures.json keys in verify-backend.sh), with jobs = 200 and
    duplicates = 0.
"""
import os
import re

from rail_json import Drift, arg, equal, expect, load

dist, built, repo = arg(1), arg(2), arg(3)
backend_phases, remote_phases = arg(4).split(), arg(5).split()

page_html = os.path.join(dist, "production-backend-proof.html")
expect(os.path.isfile(page_html), "the docs build has no production-backend-proof.html")
proof_html = open(os.path.join(dist, "distributed-proof.html"), encoding="utf-8").read()
expect(re.search(r'href="[^"]*production-backend-proof(\.html)?(#[^"]*)?"', proof_html),
       "the Distributed Proof page does not link to Production Backend Proof")

blocks = load(os.path.join(built, "production-backend-proof.json"))
text = "\n".join(b["text"] for b in blocks)
code = " ".join(b["text"] for b in blocks if b["code"])
readme_path = os.path.join(repo, "examples", "reference-backend", "README.md")
readme = open(readme_path, encoding="utf-8").read()

SCRIPTS = ["scripts/verify-backend.sh", "scripts/verify-remote.sh", "examples/reference-backend/scripts/verify.sh"]
for s in SCRIPTS:
    expect(os.path.isfile(os.path.join(repo, s)), f"{s} named by the page does not exist")
    expect(s in text, f"the Production Backend Proof page does not name {s}")
    expect(s.split("/")[-1] in readme, f"the backend README does not name {s}")


def in_order(phases, where):
    pos = 0
    for p in phases:
        m = re.search(r"(?<![\w-])" + re.escape(p) + r"(?![\w-])", code[pos:])
        if not m:
            raise Drift(f"the page's {where} phase list lacks {p} (or has it out of order)")
        pos += m.end()


in_order(backend_phases, "verify-backend.sh")
in_order(remote_phases, "verify-remote.sh")

store = open(os.path.join(repo, "examples", "reference-backend", "jobs", "store.go"), encoding="utf-8").read()
signals_src = store[store.index("type Signals struct"):]
signals_src = signals_src[:signals_src.index("\n}")]
fields = re.findall(r'json:"([a-z_]+)"', signals_src)
SIGNALS = ["restart_count", "recovered_jobs", "last_recovery_at", "last_recovery_job_id", "last_exit_reason",
           "fenced_writes_refused"]
equal("recovery signals in jobs.Signals", sorted(fields), sorted(SIGNALS))
for s in SIGNALS:
    expect(s in text, f"the page does not name the recovery signal {s}")
    expect(s in readme, f"the backend README does not name the recovery signal {s}")

api = open(os.path.join(repo, "examples", "reference-backend", "api", "api.go"), encoding="utf-8").read()
for route in ["POST /jobs", "GET /jobs/{id}", "GET /jobs", "GET /health"]:
    expect(f'"{route}"' in api, f"api/api.go registers no {route}")
    expect(route in readme, f"the backend README does not document {route}")

rail = open(os.path.join(repo, "scripts", "verify-backend.sh"), encoding="utf-8").read()
fig_src = rail[rail.index("fig = {"):]
fig_src = fig_src[:fig_src.index("}")]
figures = re.findall(r'"([a-z_]+)":', fig_src)
expect(figures, "verify-backend.sh writes no figures")
rows = {}
for b in blocks:
    m = re.match(r"^([a-z_]+) \| (.+?) \|$", b["text"])
    if m:
        rows[m.group(1)] = m.group(2)
for f in figures:
    expect(f in rows, f"the page's measured figures table has no row for {f}")
expect(rows.get("jobs", "").split()[0] == "200", f"measured jobs {rows.get('jobs')!r}, want 200")
expect(rows.get("duplicates", "").split()[0] == "0", f"measured duplicates {rows.get('duplicates')!r}, want 0")
expect(int(rows.get("fenced_writes_refused", "0").split()[0]) >= 1, "measured fenced_writes_refused is below 1")
print(f"page, README and scripts agree: {len(SCRIPTS)} scripts, {len(backend_phases)} + {len(remote_phases)} phases, "
      f"{len(SIGNALS)} signals, {len(figures)} figures")
