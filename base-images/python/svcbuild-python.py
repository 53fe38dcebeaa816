"""Helper baked into the python base image; runs inside image builds only.

manifest VENV
    Print one line per entry of VENV, sorted: "<kind> <digest> <relpath>", where kind is
    "f" (regular file, digest = sha256 of its bytes, plus its mode), "l" (symlink, digest =
    its target) or "d" (directory). This is the base image's record of its environment.

adopt VENV MANIFEST DEST
    After installing a project's dependencies into the base env VENV: every entry that the
    MANIFEST lists must be unchanged (else exit 3, naming each path), and every entry it
    does not list is new and is moved to the same relative path under DEST. The base env is
    left exactly as the base image shipped it; the new files live under /project.
"""

import hashlib
import os
import shutil
import stat
import sys


def scan(root):
    """Yield (relpath, kind, digest) for everything under root, parents before children."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel_dir = os.path.relpath(dirpath, root)
        for name in sorted(dirnames + filenames):
            full = os.path.join(dirpath, name)
            rel = name if rel_dir == "." else rel_dir + "/" + name
            st = os.lstat(full)
            if stat.S_ISLNK(st.st_mode):
                yield rel, "l", os.readlink(full)
            elif stat.S_ISDIR(st.st_mode):
                yield rel, "d", "-"
            elif stat.S_ISREG(st.st_mode):
                h = hashlib.sha256()
                with open(full, "rb") as f:
                    for chunk in iter(lambda: f.read(1 << 20), b""):
                        h.update(chunk)
                yield rel, "f", "%s:%o" % (h.hexdigest(), stat.S_IMODE(st.st_mode))
            else:
                yield rel, "?", "-"


def manifest(venv):
    for rel, kind, digest in scan(venv):
        if " " in rel or "\n" in rel:
            sys.exit("svcbuild: unsupported file name in base env: %r" % rel)
        print("%s %s %s" % (kind, digest, rel))


def read_manifest(path):
    entries = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            kind, digest, rel = line.rstrip("\n").split(" ", 2)
            entries[rel] = (kind, digest)
    return entries


def adopt(venv, manifest_path, dest):
    base = read_manifest(manifest_path)
    seen = set()
    violations = []
    new = []
    for rel, kind, digest in scan(venv):
        if rel in base:
            seen.add(rel)
            if base[rel] != (kind, digest):
                violations.append("changed: %s/%s" % (venv, rel))
        else:
            new.append((rel, kind))
    for rel in sorted(set(base) - seen):
        violations.append("deleted: %s/%s" % (venv, rel))
    if violations:
        sys.stderr.write(
            "svcbuild: installing the dependencies changed files of the base image's "
            "environment, which must stay immutable.\n"
        )
        for v in violations:
            sys.stderr.write("  %s\n" % v)
        sys.stderr.write(
            "fix: require the versions the base image preinstalls (see "
            "/home/user/constraints.txt), or choose another base image.\n"
        )
        sys.exit(3)
    moved_dirs = set()
    for rel, kind in new:
        if any(rel.startswith(d + "/") for d in moved_dirs):
            continue  # moved with its new parent directory
        target = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.move(os.path.join(venv, rel), target)
        if kind == "d":
            moved_dirs.add(rel)
    print("svcbuild: %d new entries moved from %s to %s" % (len(new), venv, dest))


def main(argv):
    if len(argv) == 2 and argv[0] == "manifest":
        manifest(argv[1])
    elif len(argv) == 4 and argv[0] == "adopt":
        adopt(argv[1], argv[2], argv[3])
    else:
        sys.exit("usage: svcbuild-python.py manifest VENV | adopt VENV MANIFEST DEST")


if __name__ == "__main__":
    main(sys.argv[1:])
