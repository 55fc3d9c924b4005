"""story_check.py README PAGES_DIR STARTERS_DIR SUMMARY_JSON — the story rules
of scripts/verify-public-surface.sh, kept apart so e2e/rails_test.go can feed
them small fixtures.

Inputs: README.md; PAGES_DIR/<page>.json, the blocks of each built docs page
([{"code": bool, "text": str}], one per paragraph, list item, table row,
heading or code line, as the rail's built-html phase writes them);
STARTERS_DIR/<starter>.README.md, the READMEs meshc init generates.

Rules (each violation is one "problem:" line; any problem fails the check):
  1. the starter ladder -- meshc init --clustered, then meshc init --template
     todo-api (SQLite), then meshc init --template todo-api --db postgres --
     appears, in that order, on the built Getting Started page and in README.md;
  2. the rails (verify-staged-deploy.sh, verify-failover.sh,
     verify-public-surface.sh) are named, in that order, on the Distributed
     Proof page and on no other built page nor in any generated README;
     README.md points at the Distributed Proof page;
  3. SQLite is never described as clustered: a prose block (code is skipped;
     flag syntax such as [--db sqlite|postgres] is ignored) that names SQLite
     together with a cluster word (clustered, cluster, failover, standby,
     promotion, replication, two-node, multi-node) must also carry a negation
     or limitation (not, no, never, n't, without, local, single-node,
     non-goal); the generated SQLite README never mentions
     MESH_CLUSTER_COOKIE or mesh.Clustered(.
"""
from rail_json import *
import glob, os, re
readme_path, pages_dir, starters_dir = arg(1), arg(2), arg(3)

LADDER = [
    ("clustered scaffold", "meshc init --clustered <name>", re.compile(r"meshc init --clustered\b")),
    ("SQLite starter", "meshc init --template todo-api <name>",
     re.compile(r"meshc init --template todo-api(?! --db postgres)(?: --db sqlite)?\b")),
    ("PostgreSQL starter", "meshc init --template todo-api --db postgres <name>",
     re.compile(r"meshc init --template todo-api --db postgres\b")),
]
LADDER_TEXT = " -> ".join(example for _, example, _ in LADDER)
RAILS = ["verify-staged-deploy.sh", "verify-failover.sh", "verify-public-surface.sh"]
CLAIM = re.compile(r"\bclustered\b|\bclusters?\b|failover|standby|promot|replicat|two-node|multi-node", re.I)
LIMIT = re.compile(r"\bnot\b|\bno\b|\bnever\b|n't\b|\bwithout\b|single-node|\blocal\b|non-goal"
                   r"|describ\w* sqlite as clustered", re.I)
# Flag syntax names SQLite without saying anything about it.
FLAGS = re.compile(r"\[?--db (?:sqlite\|postgres|postgres\|sqlite|sqlite)\]?|sqlite\|postgres|postgres\|sqlite", re.I)
problems = []

def ladder_order(where, text):
    at = []
    for label, example, rx in LADDER:
        m = rx.search(text)
        if not m:
            problems.append(f"{where} never shows the {label} command `{example}` (the ladder: {LADDER_TEXT})")
            return
        at.append((m.start(), label))
    if [l for _, l in sorted(at)] != [l for l, _, _ in LADDER]:
        problems.append(f"{where} shows the ladder out of order: {[l for _, l in sorted(at)]} (want {LADDER_TEXT})")

def sqlite_honest(where, prose_blocks):
    for b in prose_blocks:
        t = FLAGS.sub(" ", b)
        if re.search(r"sqlite", t, re.I) and CLAIM.search(t) and not LIMIT.search(t):
            problems.append(f"{where} describes SQLite as clustered: {b[:200]!r}")

def md_blocks(text):
    """Prose blocks of a Markdown file (paragraphs, list items, table rows,
    headings); fenced code is left out."""
    blocks, cur, fenced = [], [], False
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("```"):
            fenced = not fenced
            if cur:
                blocks.append(" ".join(cur))
                cur = []
            continue
        if fenced:
            continue
        if not s or s.startswith(("- ", "* ", "|", "#")) or re.match(r"\d+\. ", s):
            if cur:
                blocks.append(" ".join(cur))
            cur = [s] if s else []
            if s.startswith(("|", "#")):
                blocks.append(s)
                cur = []
        else:
            cur.append(s)
    if cur:
        blocks.append(" ".join(cur))
    return blocks

# Built pages: all blocks for rail names and the ladder, prose for SQLite.
pages = {}
for p in glob.glob(os.path.join(pages_dir, "*.json")):
    name = os.path.basename(p)[:-5]
    if name != "summary":
        pages[name] = load(p)
expect("getting-started" in pages and "distributed-proof" in pages, "built page texts missing")
full = {n: "\n".join(b["text"] for b in bl) for n, bl in pages.items()}
ladder_order("built getting-started page", full["getting-started"])
proof = full["distributed-proof"]
at = [proof.find(r) for r in RAILS]
if min(at) < 0:
    problems.append(f"Distributed Proof page lacks {[r for r, i in zip(RAILS, at) if i < 0]}")
elif at != sorted(at):
    problems.append("Distributed Proof page names the rails out of order")
for name in sorted(pages):
    if name != "distributed-proof":
        for r in RAILS:
            if r in full[name]:
                problems.append(f"built page {name}.html names the rail {r} (only Distributed Proof may)")
    sqlite_honest(f"built page {name}.html", [b["text"] for b in pages[name] if not b["code"]])

# README.
readme = open(readme_path).read()
ladder_order("README.md", readme)
if "Distributed Proof" not in readme and "distributed-proof" not in readme:
    problems.append("README.md does not point at the Distributed Proof page")
sqlite_honest("README.md", md_blocks(readme))

# Generated starter READMEs.
starters = {os.path.basename(p).split(".")[0]: open(p).read() for p in glob.glob(os.path.join(starters_dir, "*.README.md"))}
for name, text in sorted(starters.items()):
    for r in RAILS:
        if r in text:
            problems.append(f"generated {name} README names the rail {r}")
    sqlite_honest(f"generated {name} README", md_blocks(text))
sq = starters.get("todo-sqlite", "")
for forbidden in ("MESH_CLUSTER_COOKIE", "mesh.Clustered("):
    if forbidden in sq:
        problems.append(f"generated todo-sqlite README mentions {forbidden}")

write_json(arg(4), {"problems": problems, "pages": sorted(pages), "starters": sorted(starters)})
for p in problems:
    print("problem:", p)
expect(not problems, f"{len(problems)} story problem(s); first: {problems[0] if problems else ''}")
print("story consistent across README.md, %d generated READMEs and %d built pages" % (len(starters), len(pages)))
