"""Write chopin's TechEmpower Framework Benchmarks (TFB) folder into DIR.

DIR becomes what a TFB pull request adds as frameworks/Rust/chopin/: only what
the benchmark's image build and its two tests need, as TFB's pull-request
template asks (no functional tests, no scripts that start the server outside
TFB, no local development settings):

  benchmark_config.json   the two tests, "default" (chopin) and "multithread"
  Dockerfile              chopin's own, unchanged: it builds from this folder
  Cargo.toml, Cargo.lock  chopin's own, unchanged
  src/                    the server's sources
  config/NAME.env         the preset of each test, applied by the entrypoint
  scripts/docker-entrypoint
  README.md               TFB's framework README: description, test URLs,
                          homepage and documentation

Usage: scripts/tfb-export DIR [--homepage URL] [--force]

  --homepage URL   the framework's homepage and documentation, linked from
                   README.md (default: Cargo.toml's `homepage`, then its
                   `repository`; without either, README.md says so and a
                   warning is printed)
  --force          replace DIR's contents if DIR exists and is not empty

Check the result as TFB would build it:
  ../shared/tools/container-smoke --context DIR --path /plaintext --path /json
  ../shared/tools/container-smoke --context DIR --build-arg TFB_TEST_NAME=chopin-multithread ...

Exit status: 0 written, 1 a source file is missing, 2 usage error.
"""

import argparse
import json
import os
import re
import shutil
import sys

from .common import ROOT

FILES = ["benchmark_config.json", "Dockerfile", "Cargo.toml", "Cargo.lock",
         "scripts/docker-entrypoint"]


class ExportError(Exception):
    pass


def test_names(config):
    """TFB's name for each test of benchmark_config.json: the framework's
    name for "default", framework-KEY for the others (toolset/utils/
    metadata.py, parse_config)."""
    framework = config["framework"]
    names = []
    for group in config["tests"]:
        for key, test in group.items():
            names.append((framework if key == "default" else f"{framework}-{key}", test))
    return names


def cargo_field(name):
    """A `name = "value"` of Cargo.toml's [package] section, or None."""
    text = open(os.path.join(ROOT, "Cargo.toml")).read()
    package = text.split("[package]", 1)[-1].split("\n[", 1)[0]
    match = re.search(rf'^{name}\s*=\s*"([^"]*)"', package, re.M)
    return match.group(1) if match else None


def readme(config, homepage):
    tests = test_names(config)
    first = tests[0][1]
    lines = [
        f"# [chopin]({homepage}) Benchmarking Test" if homepage else "# chopin Benchmarking Test",
        "",
        "## Description",
        "",
        "chopin is a pipelined HTTP/1.1 server written in Rust on tokio and httparse. A",
        "request is parsed, routed to its handler, and answered through a response API:",
        "the handler sets a status, its header fields and a body; the server writes the",
        "status line, `Server`, `Date` (rendered once a second), `Content-Length` and",
        "`Connection`. The JSON body is serialized by serde_json from a fresh object per",
        "request.",
        "",
        "The tests differ only in the runtime layout (`config/NAME.env`, applied by the",
        "container's entrypoint):",
        "",
    ]
    for name, test in tests:
        lines.append(f"* `{name}`: {test.get('notes', '')}")
    lines += [
        "",
        "## Test URLs",
        "",
        "### Test 1: JSON Encoding",
        "",
        f"    http://localhost:{first['port']}{first['json_url']}",
        "",
        "### Test 2: Plaintext",
        "",
        f"    http://localhost:{first['port']}{first['plaintext_url']}",
        "",
        "## Homepage and documentation",
        "",
    ]
    if homepage:
        lines.append(f"Homepage, documentation and benchmark methodology: <{homepage}>")
    else:
        lines.append("Homepage and documentation: not given when this folder was exported "
                     "(`scripts/tfb-export --homepage URL`).")
    return "\n".join(lines) + "\n"


def export(out, homepage, force):
    config = json.load(open(os.path.join(ROOT, "benchmark_config.json")))
    presets = [f"config/{name}.env" for name, _ in test_names(config)]
    for rel in FILES + presets + ["src"]:
        if not os.path.exists(os.path.join(ROOT, rel)):
            raise ExportError(f"{rel} is missing from {ROOT}")
    if os.path.isdir(out) and os.listdir(out):
        if not force:
            raise ValueError(f"{out} exists and is not empty; pass --force to replace it")
        shutil.rmtree(out)
    os.makedirs(out, exist_ok=True)
    for rel in FILES + presets:
        os.makedirs(os.path.dirname(os.path.join(out, rel)) or out, exist_ok=True)
        shutil.copy2(os.path.join(ROOT, rel), os.path.join(out, rel))
    shutil.copytree(os.path.join(ROOT, "src"), os.path.join(out, "src"))
    with open(os.path.join(out, "README.md"), "w") as f:
        f.write(readme(config, homepage))
    return [name for name, _ in test_names(config)]


def main(argv):
    p = argparse.ArgumentParser(prog="scripts/tfb-export",
                                description="Write chopin's TFB framework folder into DIR.")
    p.add_argument("dir", metavar="DIR", help="where to write the framework folder "
                   "(what a TFB pull request adds as frameworks/Rust/chopin/)")
    p.add_argument("--homepage", default=None, metavar="URL",
                   help="the framework's homepage and documentation, linked from README.md "
                        "(default: Cargo.toml's `homepage`, then its `repository`)")
    p.add_argument("--force", action="store_true",
                   help="replace DIR's contents if DIR exists and is not empty")
    args = p.parse_args(argv)
    homepage = args.homepage or cargo_field("homepage") or cargo_field("repository")
    if not homepage:
        print("tfb-export: warning: no homepage (Cargo.toml has no `homepage` or "
              "`repository`); README.md links none: pass --homepage URL", file=sys.stderr)
    try:
        names = export(args.dir, homepage, args.force)
    except ValueError as e:
        print(f"tfb-export: {e}", file=sys.stderr)
        return 2
    except (ExportError, OSError) as e:
        print(f"tfb-export: {e}", file=sys.stderr)
        return 1
    print(f"tfb-export: wrote {args.dir} (tests: {', '.join(names)})")
    return 0

