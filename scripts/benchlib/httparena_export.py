"""Write chopin's HttpArena entries into DIR/frameworks/, in HttpArena's layout
(github.com/MDA2AV/HttpArena, site/content/docs/add-framework/):

  DIR/frameworks/chopin/               the per-core runtime (chopin's default)
  DIR/frameworks/chopin-multithread/   CHOPIN_RUNTIME=multithread
each holding
  meta.json     type "engine", tests: the seven profiles HttpArena scores for
                engines (baseline, limited-conn, async, latency-1m,
                latency-10k, json-tls, 8gbit)
  Dockerfile    builds chopin; with no arguments it serves HTTP/1.1 on port
                8080 and TLS 1.3 on 8081 with the certificate and key HttpArena
                mounts at /certs, and GET /json/{count} from the dataset it
                mounts at /data/dataset.json (neither is copied into the image)
  .dockerignore
  Cargo.toml    chopin's own (it declares no example, so it builds without
                examples/)
  Cargo.lock, src/

DIR is usually a clone of HttpArena; commit the two directories there and
open a pull request (docs/httparena.md, "Submitting"). The base images are
the ones chopin's own Dockerfile uses, read from it, so both stay in step.

Exit status: 0 written, 1 a source file is missing or unreadable, 2 usage
error (including an existing entry without --force).
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys

from .common import ROOT

# The H1 profiles HttpArena scores for "type": "engine" entries
# (site/leaderboard's scoredForType, frameworks/libioxd/meta.json), in its
# order. Each is a key of scripts/lib/profiles.sh's PROFILES; validate.sh
# fails an entry naming one that is not.
TESTS = ["baseline", "limited-conn", "async", "latency-1m", "latency-10k", "json-tls", "8gbit"]

# Where HttpArena's harness mounts the pair json-tls and 8gbit use
# (-v certs:/certs:ro) and the port it reaches them on.
TLS_PORT = 8081
TLS_CERT = "/certs/server.crt"
TLS_KEY = "/certs/server.key"

# name -> (CHOPIN_RUNTIME, display name, description)
FLAVOURS = {
    "chopin": (
        "per-core",
        "chopin",
        "Pipelined HTTP/1.1 server on tokio and httparse: one pinned single-threaded "
        "runtime per CPU, each with its own SO_REUSEPORT listener, sharing nothing.",
    ),
    "chopin-multithread": (
        "multithread",
        "chopin-multithread",
        "chopin's HTTP/1.1 connection loop on one work-stealing multi-threaded tokio "
        "runtime, one pinned worker thread per CPU.",
    ),
}


class ExportError(Exception):
    pass


def base_images():
    """(build image, runtime image) from the FROM lines of chopin's Dockerfile."""
    path = os.path.join(ROOT, "Dockerfile")
    try:
        text = open(path).read()
    except OSError as e:
        raise ExportError("cannot read %s (the base images are taken from it): %s" % (path, e))
    images = re.findall(r"^FROM\s+(\S+)", text, re.M)
    rust = [i for i in images if i.startswith("rust:")]
    debian = [i for i in images if i.startswith("debian:")]
    if not rust or not debian:
        raise ExportError("%s has no `FROM rust:TAG` and `FROM debian:TAG` lines to take the "
                          "base images from (found: %s)" % (path, ", ".join(images) or "none"))
    return rust[0], debian[0]


def dockerfile(name, runtime, images):
    """The one Dockerfile; the flavours differ only in CHOPIN_RUNTIME."""
    build, run = images
    return """\
# chopin for HttpArena (github.com/MDA2AV/HttpArena): the {runtime} runtime.
# Written by chopin's scripts/httparena-export; chopin's docs/httparena.md
# describes the profiles and how chopin answers them.
#
# HttpArena builds this directory (docker build frameworks/{name}) and runs the
# image with no arguments, --network host and --cpuset-cpus: chopin listens on
# port 8080, and on {tls_port} for TLS 1.3 with the pair mounted at
# /certs ({cert}, {key}; never copied into
# the image), and serves GET /json/{{count}} from the mounted
# /data/dataset.json. It starts one worker per CPU it may run on (its affinity
# mask, which is the container's cpuset), each pinned to its own CPU; both
# listeners share the workers.

FROM {build} AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
RUN RUSTFLAGS="-C target-cpu=native" cargo build --release --locked --bin chopin \\
 && cp target/release/chopin /usr/local/bin/chopin

FROM {run}
COPY --from=build /usr/local/bin/chopin /usr/local/bin/chopin
ENV PORT=8080 CHOPIN_RUNTIME={runtime}
EXPOSE 8080 {tls_port}
# Exec form: chopin is PID 1 and receives the container's SIGTERM itself. A
# missing or unreadable certificate or key fails the start, naming the file.
ENTRYPOINT ["/usr/local/bin/chopin"]
CMD ["--tls-port", "{tls_port}", "--tls-cert", "{cert}", "--tls-key", "{key}"]
""".format(name=name, runtime=runtime, build=build, run=run,
           tls_port=TLS_PORT, cert=TLS_CERT, key=TLS_KEY)


DOCKERIGNORE = "target/\n"


def meta(display, description, repo, maintainers):
    m = {
        "display_name": display,
        "language": "Rust",
        "type": "engine",
        "engine": "chopin",
        "description": description,
    }
    if repo:
        m["repo"] = repo
    m["enabled"] = True
    m["tests"] = list(TESTS)
    m["maintainers"] = list(maintainers)
    return json.dumps(m, indent=2) + "\n"


def manifest():
    """chopin's Cargo.toml, as it is: it declares no example, so the image
    builds from Cargo.toml, Cargo.lock and src/ alone."""
    path = os.path.join(ROOT, "Cargo.toml")
    try:
        return open(path).read()
    except OSError as e:
        raise ExportError("cannot read %s: %s" % (path, e))


def sources():
    """Paths under src/ relative to ROOT: git's tracked and untracked-but-not-
    ignored files when ROOT is a work tree, else every file below src/."""
    try:
        out = subprocess.run(
            ["git", "-C", ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", "src"],
            check=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout
        files = [f for f in out.decode().split("\0") if f]
        files = [f for f in files if os.path.isfile(os.path.join(ROOT, f))]  # deleted, not yet staged
    except (OSError, subprocess.CalledProcessError):
        files = []
        for dirpath, dirnames, filenames in os.walk(os.path.join(ROOT, "src")):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for f in filenames:
                if not f.startswith(".") and not f.endswith((".swp", "~", ".bk")):
                    files.append(os.path.relpath(os.path.join(dirpath, f), ROOT))
    if not any(f == os.path.join("src", "main.rs") for f in files):
        raise ExportError("no src/main.rs under %s: run this from a chopin checkout" % ROOT)
    return sorted(files)


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def export(dest, repo, maintainers, force):
    frameworks = os.path.join(dest, "frameworks")
    targets = [os.path.join(frameworks, name) for name in FLAVOURS]
    existing = [t for t in targets if os.path.exists(t)]
    if existing and not force:
        print("httparena-export: %s already exist%s; pass --force to replace %s"
              % (", ".join(existing), "s" if len(existing) == 1 else "",
                 "it" if len(existing) == 1 else "them"), file=sys.stderr)
        return 2
    images = base_images()
    cargo_toml = manifest()
    files = sources()
    lock = os.path.join(ROOT, "Cargo.lock")
    if not os.path.isfile(lock):
        raise ExportError("no Cargo.lock in %s (the image builds with --locked): run `cargo generate-lockfile`" % ROOT)
    for name, (runtime, display, description) in FLAVOURS.items():
        out = os.path.join(frameworks, name)
        if os.path.exists(out):
            shutil.rmtree(out)
        os.makedirs(out)
        write(os.path.join(out, "meta.json"), meta(display, description, repo, maintainers))
        write(os.path.join(out, "Dockerfile"), dockerfile(name, runtime, images))
        write(os.path.join(out, ".dockerignore"), DOCKERIGNORE)
        write(os.path.join(out, "Cargo.toml"), cargo_toml)
        shutil.copyfile(lock, os.path.join(out, "Cargo.lock"))
        for f in files:
            target = os.path.join(out, f)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copyfile(os.path.join(ROOT, f), target)
        print("wrote %s (%s runtime, %d source files)" % (out, runtime, len(files)))
    return 0


def main(argv):
    ap = argparse.ArgumentParser(
        prog="scripts/httparena-export",
        description="Write chopin's HttpArena entries, DIR/frameworks/chopin/ and "
        "DIR/frameworks/chopin-multithread/, in HttpArena's layout.",
        epilog="DIR is usually a clone of github.com/MDA2AV/HttpArena. "
        "See docs/httparena.md for the profiles and how to submit the entries.",
    )
    ap.add_argument("dir", metavar="DIR", help="where to write frameworks/chopin*/ (created if missing)")
    ap.add_argument("--repo", default="", metavar="URL",
                    help="meta.json's \"repo\", the link to chopin's source repository (left out if not given)")
    ap.add_argument("--maintainer", action="append", default=[], metavar="GITHUB_USER",
                    help="a GitHub user for meta.json's \"maintainers\" (repeatable; default: none)")
    ap.add_argument("--force", action="store_true",
                    help="replace DIR/frameworks/chopin*/ if they exist")
    args = ap.parse_args(argv)
    if args.repo and not re.match(r"^https?://\S+$", args.repo):
        ap.error("--repo %r: expected an http(s) URL" % args.repo)
    for m in args.maintainer:
        if not re.match(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$", m):
            ap.error("--maintainer %r: expected a GitHub user name" % m)
    if os.path.exists(args.dir) and not os.path.isdir(args.dir):
        ap.error("DIR %r exists and is not a directory" % args.dir)
    try:
        return export(args.dir, args.repo, args.maintainer, args.force)
    except (ExportError, OSError) as e:
        print("httparena-export: %s" % e, file=sys.stderr)
        return 1

