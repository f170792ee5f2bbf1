"""The lock files agree with pyproject.toml, and every install takes its lock with hash checking.

requirements/*.txt are written by scripts/lock (uv pip compile --universal --generate-hashes).
A dependency added to pyproject.toml, dropped from it, moved between extras or given a bound its
pin falls outside fails here until ./scripts/lock is run; so does a pin without hashes, or a
layered lock whose pins drifted from the lock under it. The Dockerfile, scripts/dev, scripts/test
and scripts/bench must install from their lock with --require-hashes and resolve nothing else.
"""

from __future__ import annotations

import copy
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
RELOCK = "run ./scripts/lock"


@dataclass(frozen=True)
class Lock:
    path: str
    # The extras of pyproject.toml it holds besides the dependencies.
    extras: tuple[str, ...]
    # The lock it is layered on: scripts/lock passes it as a constraint, so their pins agree.
    base: str | None


LOCKS = (
    Lock("requirements/runtime.txt", (), None),
    Lock("requirements/embedded.txt", ("embedded",), "requirements/runtime.txt"),
    Lock("requirements/dev.txt", ("embedded", "dev"), "requirements/embedded.txt"),
    Lock("requirements/docs.txt", ("embedded", "dev", "docs"), "requirements/dev.txt"),
)
# Which lock each install path takes.
INSTALLERS = {
    "Dockerfile": "requirements/runtime.txt",
    "scripts/dev": "requirements/embedded.txt",
    "scripts/test": "requirements/docs.txt",
    "scripts/bench": "requirements/dev.txt",
    "scripts/docs": "requirements/docs.txt",
}
# The one script that installs a lock into .venv for scripts/dev, scripts/test and scripts/bench.
VENV_INSTALLER = "scripts/install"
# The build backend of pyproject.toml's [build-system], installed before the project is built.
BUILD_LOCK = "requirements/build.txt"

HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})\s*\\?$")


@dataclass(frozen=True)
class Pin:
    name: str
    version: Version
    marker: str
    hashes: tuple[str, ...]
    # uv's "# via" annotations: the requirements that brought the pin in.
    sources: tuple[str, ...]


def parse_pin(entry: list[str]) -> Pin:
    """One entry of a lock: `name==version ; marker \\`, its hash lines, its via comments."""
    requirement = Requirement(entry[0].removesuffix("\\").strip())
    specifiers = list(requirement.specifier)
    if len(specifiers) != 1 or specifiers[0].operator != "==":
        raise ValueError(f"not a pin: {entry[0]}")
    hashes, comments = [], []
    for line in entry[1:]:
        if match := HASH.match(line):
            hashes.append(match.group(1))
        elif line.startswith("#"):
            comments.append(line.removeprefix("#").strip())
        else:
            raise ValueError(f"unexpected line under {entry[0]}: {line}")
    if comments and comments[0].startswith("via"):
        comments[0] = comments[0].removeprefix("via").strip()
    return Pin(
        name=canonicalize_name(requirement.name),
        version=Version(specifiers[0].version),
        marker=str(requirement.marker or ""),
        hashes=tuple(hashes),
        sources=tuple(comment for comment in comments if comment),
    )


def parse_lock(text: str) -> list[Pin]:
    entries: list[list[str]] = []
    for line in text.splitlines():
        if line.startswith((" ", "\t")):
            if not entries:
                raise ValueError(f"indented line before any pin: {line}")
            entries[-1].append(line.strip())
        elif line.strip() and not line.startswith("#"):
            entries.append([line])
    return [parse_pin(entry) for entry in entries]


def declared(pyproject: Mapping[str, Any], extras: Iterable[str]) -> list[Requirement]:
    """The dependencies and the named extras, with the project's references to itself
    (`clerk-replica[embedded]`) expanded into the extras they name."""
    project = pyproject["project"]
    own = canonicalize_name(project["name"])
    wanted, seen = list(extras), set[str]()
    requirements = [Requirement(line) for line in project["dependencies"]]
    while wanted:
        extra = wanted.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for line in project["optional-dependencies"][extra]:
            requirement = Requirement(line)
            if canonicalize_name(requirement.name) == own:
                wanted.extend(requirement.extras)
            else:
                requirements.append(requirement)
    return requirements


def lock_violations(
    pyproject: Mapping[str, Any], lock: Lock, pins: list[Pin], base: list[Pin] | None
) -> list[str]:
    where = lock.path
    own = f"{pyproject['project']['name']} (pyproject.toml)"
    violations: list[str] = []
    requirements = declared(pyproject, lock.extras)
    by_name: dict[str, list[Pin]] = {}
    for pin in pins:
        by_name.setdefault(pin.name, []).append(pin)
        if not pin.hashes:
            violations.append(f"{where}: {pin.name}=={pin.version} has no --hash")
    for requirement in requirements:
        name = canonicalize_name(requirement.name)
        if name not in by_name:
            violations.append(f"{where}: {requirement} is in pyproject.toml, not pinned: {RELOCK}")
        for pin in by_name.get(name, []):
            if not requirement.specifier.contains(pin.version, prereleases=True):
                violations.append(
                    f"{where}: {name}=={pin.version} is outside pyproject's {requirement}: {RELOCK}"
                )
    named = {str(canonicalize_name(requirement.name)) for requirement in requirements}
    direct = {pin.name for pin in pins if own in pin.sources}
    for missing in sorted((named - direct) & set(by_name)):
        violations.append(f"{where}: {missing} is not locked as a dependency of {own}: {RELOCK}")
    for stale in sorted(direct - named):
        violations.append(f"{where}: {stale} is locked for {own} but gone from it: {RELOCK}")
    if base is not None:
        layered = {(pin.name, pin.version, pin.marker) for pin in pins}
        for pin in base:
            # A pin the layered lock needs everywhere covers the base's conditional one (the
            # docs extra needs colorama on every platform, the dev lock only on Windows).
            covered = (pin.name, pin.version, "") in layered
            if (pin.name, pin.version, pin.marker) not in layered and not covered:
                violations.append(
                    f"{where}: lacks {pin.name}=={pin.version} of {lock.base}: {RELOCK}"
                )
    return violations


@cache
def pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


@cache
def locked(path: str) -> list[Pin]:
    return parse_lock((ROOT / path).read_text())


def violations_of(lock: Lock, project: Mapping[str, Any] | None = None) -> list[str]:
    base = locked(lock.base) if lock.base else None
    return lock_violations(project or pyproject(), lock, locked(lock.path), base)


def pip_installs(path: str) -> list[str]:
    """The lines of a file that run `pip install`, continuation lines joined."""
    text = (ROOT / path).read_text().replace("\\\n", " ")
    return [
        " ".join(line.split())
        for line in text.splitlines()
        if re.search(r"\bpip\b.*\binstall\b", line) and not line.lstrip().startswith("#")
    ]


@pytest.mark.parametrize("lock", LOCKS, ids=lambda lock: lock.path)
def test_lock_agrees_with_pyproject(lock: Lock) -> None:
    violations = violations_of(lock)
    assert not violations, "\n".join(["The lock and pyproject.toml disagree:", *violations])


def test_locks_cover_every_extra() -> None:
    extras = set(pyproject()["project"]["optional-dependencies"])
    assert extras == {extra for lock in LOCKS for extra in lock.extras}


def test_uvloop_keeps_its_platform_marker() -> None:
    (uvloop,) = (pin for pin in locked("requirements/runtime.txt") if pin.name == "uvloop")
    assert uvloop.marker == 'sys_platform != "win32"'


@pytest.mark.parametrize(
    "change",
    ["add", "drop", "raise a bound", "move to an extra", "strip hashes", "drift from the base"],
)
def test_a_lock_that_was_not_remade_fails(change: str) -> None:
    project = copy.deepcopy(pyproject())
    runtime, dev = LOCKS[0], LOCKS[2]
    lock, pins = dev, list(locked(dev.path))
    base: list[Pin] | None = locked("requirements/embedded.txt")
    dependencies: list[str] = project["project"]["dependencies"]
    if change == "add":
        dependencies.append("left-pad>=1")
    elif change == "drop":
        dependencies.remove(next(line for line in dependencies if line.startswith("tenacity")))
    elif change == "raise a bound":
        index = next(i for i, line in enumerate(dependencies) if line.startswith("httpx"))
        dependencies[index] = "httpx>=99"
    elif change == "move to an extra":
        lock, pins, base = runtime, list(locked(runtime.path)), None
        dependencies.remove(next(line for line in dependencies if line.startswith("orjson")))
        project["project"]["optional-dependencies"]["embedded"].append("orjson>=3.9,<4")
    elif change == "strip hashes":
        pins = [Pin(pin.name, pin.version, pin.marker, (), pin.sources) for pin in pins]
    else:
        pins = [
            Pin(pin.name, Version("0.0.1"), pin.marker, pin.hashes, pin.sources)
            if pin.name == "starlette"
            else pin
            for pin in pins
        ]
    violations = lock_violations(project, lock, pins, base)
    assert violations and all(lock.path in violation for violation in violations)


def test_parse_lock_reads_markers_hashes_and_sources() -> None:
    text = (
        "# This file was autogenerated by uv via the following command:\n"
        "#    ./scripts/lock\n"
        "uvloop==0.23.0 ; sys_platform != 'win32' \\\n"
        f"    --hash=sha256:{'a' * 64} \\\n"
        f"    --hash=sha256:{'b' * 64}\n"
        "    # via\n"
        "    #   -c requirements/runtime.txt\n"
        "    #   clerk-replica (pyproject.toml)\n"
        "Deprecated==1.3.1\n"
        "    # via svix\n"
    )
    uvloop, deprecated = parse_lock(text)
    assert uvloop == Pin(
        "uvloop",
        Version("0.23.0"),
        'sys_platform != "win32"',
        ("a" * 64, "b" * 64),
        ("-c requirements/runtime.txt", "clerk-replica (pyproject.toml)"),
    )
    assert (deprecated.name, deprecated.hashes, deprecated.sources) == ("deprecated", (), ("svix",))
    with pytest.raises(ValueError, match="not a pin"):
        parse_lock("httpx>=0.27\n")
    with pytest.raises(ValueError, match="unexpected line"):
        parse_lock("httpx==0.28.1 \\\n    --index-url https://example.invalid\n")


@pytest.mark.parametrize(("path", "lock"), INSTALLERS.items())
def test_every_install_takes_its_lock(path: str, lock: str) -> None:
    if path == "Dockerfile":
        installs = pip_installs(path)
        assert f"COPY {BUILD_LOCK} {lock} ./requirements/" in (ROOT / path).read_text()
    else:
        assert f"./{VENV_INSTALLER} {lock}" in (ROOT / path).read_text().splitlines()
        installs = pip_installs(VENV_INSTALLER)
    from_lock = [line for line in installs if " -r " in line]
    assert len(from_lock) == 2 and all("--require-hashes" in line for line in from_lock), installs
    assert from_lock[0].endswith(f"-r {BUILD_LOCK}")
    if path == "Dockerfile":
        assert from_lock[1].endswith(f"-r {lock}")
    else:
        assert from_lock[1].endswith('-r "$lock"')
    # Everything else is the project itself, whose dependencies the lock already installed,
    # built by the locked backend: no build isolation, which would fetch setuptools unpinned.
    assert all("--no-deps" in line for line in installs), installs
    (project,) = [line for line in installs if " -r " not in line]
    assert "--no-build-isolation" in project, installs
    assert len(installs) == 3, installs


def test_the_build_backend_is_locked_with_hashes() -> None:
    required = [Requirement(r) for r in pyproject()["build-system"]["requires"]]
    pins = {pin.name: pin for pin in locked(BUILD_LOCK)}
    dev = {pin.name: pin for pin in locked("requirements/dev.txt")}
    for requirement in required:
        pin = pins[canonicalize_name(requirement.name)]
        assert requirement.specifier.contains(pin.version), f"{pin.name}: {RELOCK}"
        assert pin.hashes, f"{BUILD_LOCK}: {pin.name} has no hashes: {RELOCK}"
        if pin.name in dev:  # one version of it everywhere
            assert dev[pin.name].version == pin.version, f"{pin.name}: {RELOCK}"
