#!/usr/bin/env bash
# verify-public-surface.sh — proof rail: the README, the generated starter
# READMEs and the built docs site tell one story, and examples/ is what
# meshc init generates.
set -euo pipefail

usage() {
	cat <<'EOF'
Usage: bash scripts/verify-public-surface.sh [--help | --phases]

  --phases  print the phase names, in order, and exit (touches nothing)

Proves:
  - the docs site builds (npm --prefix website run build; its prebuild step
    runs npm ci when website/node_modules is missing or stale);
  - the built pages (text of <main> in website/.vitepress/dist/*.html, not the
    Markdown) teach the starter ladder in order on Getting Started:
      meshc init --clustered  ->  meshc init --template todo-api (SQLite, local)
      ->  meshc init --template todo-api --db postgres (shared, deployable);
  - the rails (verify-staged-deploy.sh, verify-failover.sh,
    verify-public-surface.sh) are named on the Distributed Proof page, in that
    order, and on no other built page and in no generated starter README;
  - README.md shows the same ladder in the same order and points at the
    Distributed Proof page;
  - SQLite is never described as clustered: every paragraph, list item or
    table row (of the README, the generated READMEs and the built pages) that
    mentions SQLite together with cluster/failover/standby/replication words
    also carries a negation or limitation (not, no, never, without, local,
    single-node, non-goal); the generated SQLite README never configures
    MESH_CLUSTER_COOKIE or mesh.Clustered;
  - the Production Backend Proof page is built and linked from Distributed
    Proof, and it, examples/reference-backend/README.md and the scripts it
    names agree: the scripts exist, the page shows verify-backend.sh's and
    verify-remote.sh's phases in order, every recovery signal and route is
    named and is in the backend's code, and the measured figures table has a
    row for each figure the backend rail prints;
  - examples/ holds what meshc init generates (go test ./cmd/meshc -run
    '^(TestExamplesMatchScaffold|TestExampleDriftIsNamed)$'; a filter that
    runs no test, or any skipped example, fails).

Inputs:
  MESHC_BIN  optional prebuilt meshc; else built from this checkout.
  Tools: bash, coreutils, go, python3, node + npm (network access to the npm
  registry only when website/node_modules must be installed).

Never:
  - edits README.md, docs, examples/ or generated output (it only reads them;
    starters are generated into a temp dir outside the repo);
  - writes outside .tmp/public-surface/ and website/.vitepress/{dist,cache}
    (the docs build output) and website/node_modules (npm ci).

Artifacts:
  .tmp/public-surface/verify/{status.txt,current-phase.txt,phase-report.txt,
  full-contract.log,<phase>.log}; the extracted page texts, the generated
  READMEs and summary.json in a dated proof bundle under
  .tmp/public-surface/proof-bundles/ named by verify/latest-proof-bundle.txt.
EOF
}

# The phases, in order; rail_finish requires a passed line for each.
PHASES=(preflight build-meshc docs-build built-html generate-starters story backend-proof examples-parity retain-bundle)

LIB="$(cd "$(dirname "${BASH_SOURCE[0]}")/lib" && pwd)"
source "$LIB/rail.sh"
source "$LIB/rail-mesh.sh"
rail_args "$@"

rail_init public-surface "${PHASES[@]}"

SITE="$RAIL_REPO_ROOT/website"
# The examples parity tests of cmd/meshc: regenerate each example with meshc
# init and compare; and prove a hand edit is named. Renaming them without
# updating this filter fails the phase (zero tests ran).
PARITY_TESTS='^(TestExamplesMatchScaffold|TestExampleDriftIsNamed)$'
DIST="$SITE/.vitepress/dist"

preflight() {
	rail_require_tools go python3 node npm
	[[ -f "$SITE/package.json" ]] || rail_drift "website/package.json is missing"
	echo "site: $SITE"
}

docs_build() {
	rm -rf "$DIST"
	rail_cmd docs-build.npm 900 npm --prefix "$SITE" run build
	[[ -f "$DIST/index.html" ]] || rail_drift "the docs build left no $DIST/index.html"
	[[ -f "$DIST/distributed-proof.html" ]] || rail_drift "the docs build has no distributed-proof.html"
	ls "$DIST"
}

# Extract the visible text of every built page: <main> without script/style,
# tags removed, entities decoded, whitespace collapsed, one block per
# paragraph, list item, table row, heading or code line. Code lines are marked
# so the prose checks can tell a claim from a quoted command or output.
built_html() {
	mkdir -p "$RAIL_VERIFY_DIR/built-html"
	rail_py "$DIST" "$RAIL_VERIFY_DIR/built-html" <<'PY'
from rail_json import *
import glob, html, os, re
dist, out = arg(1), arg(2)
pages = sorted(glob.glob(os.path.join(dist, "*.html")))
expect(pages, "no built pages")
BLOCK = re.compile(r"</?(p|li|tr|h[1-6]|div|table|ul|ol|blockquote|br)\b[^>]*>", re.I)

def blocks_of(fragment, code):
    fragment = re.sub(r"</(td|th)>", " | ", fragment, flags=re.I)
    fragment = BLOCK.sub("\n", fragment) if not code else fragment
    fragment = re.sub(r"<[^>]+>", "", fragment)
    lines = [" ".join(html.unescape(l).split()) for l in fragment.split("\n")]
    return [{"code": code, "text": l} for l in lines if l]

summary = {}
for path in pages:
    raw = open(path, encoding="utf-8").read()
    m = re.search(r"<main\b.*?</main>", raw, re.S | re.I)
    body = m.group(0) if m else raw
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", body, flags=re.S | re.I)
    blocks, pos = [], 0
    for pre in re.finditer(r"<pre\b.*?</pre>", body, re.S | re.I):
        blocks += blocks_of(body[pos:pre.start()], False)
        blocks += blocks_of(pre.group(0), True)
        pos = pre.end()
    blocks += blocks_of(body[pos:], False)
    name = os.path.basename(path)[:-5]
    write_json(os.path.join(out, name + ".json"), blocks)
    with open(os.path.join(out, name + ".txt"), "w") as f:
        for b in blocks:
            f.write(("    " if b["code"] else "") + b["text"] + "\n")
    summary[name] = {"blocks": len(blocks), "code_lines": sum(b["code"] for b in blocks)}
write_json(os.path.join(out, "summary.json"), summary)
for required in ("index", "getting-started", "distributed-proof"):
    expect(required in summary, f"built site lacks {required}.html")
print(f"extracted {len(summary)} pages: {', '.join(sorted(summary))}")
PY
}

# Generate the three starters outside the repo and keep their READMEs.
generate_starters() {
	local ws="$RAIL_TMP/starters" meshc
	meshc="$(rail_get meshc)"
	mkdir -p "$ws" "$RAIL_VERIFY_DIR/starter-readmes"
	rail_cmd init-clustered 60 rail__in_dir "$ws" "$meshc" init --clustered --mesh-source "$RAIL_REPO_ROOT" clustered-app
	rail_cmd init-sqlite 60 rail__in_dir "$ws" "$meshc" init --template todo-api --mesh-source "$RAIL_REPO_ROOT" todo-sqlite
	rail_cmd init-postgres 60 rail__in_dir "$ws" "$meshc" init --template todo-api --db postgres --mesh-source "$RAIL_REPO_ROOT" todo-postgres
	local p
	for p in clustered-app todo-sqlite todo-postgres; do
		[[ -f "$ws/$p/README.md" ]] || rail_drift "meshc init generated no README.md for $p"
		cp "$ws/$p/README.md" "$RAIL_VERIFY_DIR/starter-readmes/$p.README.md"
	done
	ls -l "$RAIL_VERIFY_DIR/starter-readmes"
}

story() {
	[[ -f "$RAIL_REPO_ROOT/README.md" ]] || rail_drift "README.md is missing"
	rail_py -f "$LIB/story_check.py" "$RAIL_REPO_ROOT/README.md" "$RAIL_VERIFY_DIR/built-html" \
		"$RAIL_VERIFY_DIR/starter-readmes" "$RAIL_VERIFY_DIR/story-summary.json"
}

# backend_proof checks that the Production Backend Proof page, the reference
# backend's README and the scripts they name agree (scripts/lib/backend_proof_check.py).
backend_proof() {
	local bp rp
	bp="$(bash "$RAIL_REPO_ROOT/scripts/verify-backend.sh" --phases)"
	rp="$(bash "$RAIL_REPO_ROOT/scripts/verify-remote.sh" --phases)"
	rail_py -f "$LIB/backend_proof_check.py" "$DIST" "$RAIL_VERIFY_DIR/built-html" "$RAIL_REPO_ROOT" "$bp" "$rp"
}

retain_bundle() {
	local b
	b="$(rail_bundle_begin retained-public-surface)"
	cp "${BASH_SOURCE[0]}" "$b/"
	cp -r "$RAIL_VERIFY_DIR/built-html" "$RAIL_VERIFY_DIR/starter-readmes" "$b/"
	cp "$RAIL_VERIFY_DIR/story-summary.json" "$RAIL_REPO_ROOT/README.md" "$b/"
	rail_bundle_seal
}

rail_phase preflight 30 preflight
rail_phase build-meshc 600 rail_build_meshc
rail_phase docs-build 900 docs_build
rail_phase built-html 60 built_html
rail_phase generate-starters 180 generate_starters
rail_phase story 60 story
rail_phase backend-proof 60 backend_proof
rail_phase_go_test examples-parity 600 "$RAIL_REPO_ROOT" --no-skip ./cmd/meshc -run "$PARITY_TESTS"
rail_phase retain-bundle 60 retain_bundle
rail_finish
