#!/usr/bin/env python3
"""redact.py SECRETS_DIR FILE... replaces, in place, every occurrence of each
secret (one file per secret in SECRETS_DIR, named after it) with
<redacted:NAME>.

Secrets are read from files, never from the command line, so they do not show
up in the process list. Longer secrets are replaced first, so a URL that
contains another secret is replaced whole. Files are rewritten in place
(truncate + write) so a writer holding the file open in append mode keeps
writing to the same file.
"""
import os
import sys


def main() -> int:
    secrets_dir, files = sys.argv[1], sys.argv[2:]
    secrets = []
    for name in sorted(os.listdir(secrets_dir)):
        with open(os.path.join(secrets_dir, name), "rb") as f:
            value = f.read()
        if value:
            secrets.append((value, b"<redacted:" + name.encode() + b">"))
    secrets.sort(key=lambda s: len(s[0]), reverse=True)
    for path in files:
        try:
            with open(path, "r+b") as f:
                data = f.read()
                new = data
                for value, placeholder in secrets:
                    new = new.replace(value, placeholder)
                if new != data:
                    f.seek(0)
                    f.write(new)
                    f.truncate()
        except (FileNotFoundError, IsADirectoryError, PermissionError):
            continue
    return 0


if __name__ == "__main__":
    sys.exit(main())
