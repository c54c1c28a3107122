#!/usr/bin/env python3
"""One version source: the workspace version in Cargo.toml ([workspace.package] version). Fails (exit 1,
every disagreement listed) when any other place that names llmledger's version says something else:

- each workspace crate (`version.workspace = true`, or the same literal) and the workspace's own
  llmledger-* dependency versions;
- pyproject.toml (`dynamic = ["version"]`: maturin takes the crate's, i.e. the workspace's; or a literal);
- package.json, and every platform package npm/<platform>/package.json, whose set must also be exactly the
  platforms of package.json's `napi.targets` (the release workflow publishes one per target).

Run by scripts/test.sh; stdlib only.
"""

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def table(toml: str, name: str) -> str:
    """The body of `[name]` in a TOML text (up to the next table header)."""
    m = re.search(rf"^\[{re.escape(name)}\]\s*$(.*?)(?=^\[|\Z)", toml, re.M | re.S)
    return m.group(1) if m else ""


def key(body: str, name: str):
    m = re.search(rf'^{re.escape(name)}\s*=\s*"([^"]*)"', body, re.M)
    return m.group(1) if m else None


def platform_of(triple: str) -> str:
    """napi-rs's platform name of a Rust target triple (as bindings-node/scripts/pack.mjs)."""
    arch, _, os_, *abi = triple.split("-")
    cpu = {"x86_64": "x64", "aarch64": "arm64"}[arch]
    if os_ == "darwin":
        return f"darwin-{cpu}"
    if os_ == "windows":
        return f"win32-{cpu}-{abi[0]}"
    return f"{os_}-{cpu}-{abi[0]}"


def main() -> int:
    problems = []
    cargo = (ROOT / "Cargo.toml").read_text()
    version = key(table(cargo, "workspace.package"), "version")
    if not version:
        print("Cargo.toml: no [workspace.package] version", file=sys.stderr)
        return 1

    members = re.search(r"^members\s*=\s*\[(.*?)\]", table(cargo, "workspace"), re.M | re.S)
    for member in re.findall(r'"([^"]+)"', members.group(1) if members else ""):
        body = table((ROOT / member / "Cargo.toml").read_text(), "package")
        if not re.search(r"^version\.workspace\s*=\s*true", body, re.M) and key(body, "version") != version:
            problems.append(f"{member}/Cargo.toml: version {key(body, 'version')!r}, not the workspace's")
    for dep, spec in re.findall(r'^(llmledger-[\w-]+)\s*=\s*\{([^}]*)\}', table(cargo, "workspace.dependencies"), re.M):
        dep_version = re.search(r'version\s*=\s*"([^"]*)"', spec)
        if dep_version and dep_version.group(1) != version:
            problems.append(f"Cargo.toml: [workspace.dependencies] {dep} version {dep_version.group(1)!r}")

    project = table((ROOT / "pyproject.toml").read_text(), "project")
    literal = key(project, "version")
    dynamic = re.search(r'^dynamic\s*=\s*\[[^\]]*"version"', project, re.M)
    if literal is not None and literal != version:
        problems.append(f"pyproject.toml: version {literal!r}")
    if literal is None and not dynamic:
        problems.append("pyproject.toml: neither a version nor dynamic = [\"version\"]")

    pkg = json.loads((ROOT / "package.json").read_text())
    if pkg.get("version") != version:
        problems.append(f"package.json: version {pkg.get('version')!r}")
    wanted = {platform_of(t) for t in pkg.get("napi", {}).get("targets", [])}
    found = set()
    for path in sorted((ROOT / "npm").glob("*/package.json")):
        platform = json.loads(path.read_text())
        found.add(path.parent.name)
        if platform.get("version") != version:
            problems.append(f"npm/{path.parent.name}/package.json: version {platform.get('version')!r}")
        if platform.get("name") != f"@llmledger/{path.parent.name}":
            problems.append(f"npm/{path.parent.name}/package.json: name {platform.get('name')!r}")
    for missing in sorted(wanted - found):
        problems.append(f"npm/{missing}/package.json: missing (package.json napi.targets has it)")
    for extra in sorted(found - wanted):
        problems.append(f"npm/{extra}/: not a target in package.json napi.targets")

    for p in problems:
        print(f"version check: {p} (the workspace version is {version})", file=sys.stderr)
    if not problems:
        print(f"versions agree: {version} (Cargo.toml workspace, crates, pyproject.toml, package.json, "
              f"{len(found)} platform packages)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
