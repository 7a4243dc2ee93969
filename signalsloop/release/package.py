"""Build one self-contained, deployable folder per agent function.

``python -m signalsloop.release.package [--out build/functions] [AGENT ...]`` (``make package``)
writes ``<out>/<agent>/`` holding ``main.py``, the agent's own package under
``functions/<agent>/``, the vendored ``shared/`` library, a ``requirements.txt``
pinned to the exact versions installed here (transitive dependencies included),
a ``.gcloudignore`` and a ``DEPLOY.txt``. Cloud Run's buildpack sees only that
folder, so nothing may be imported from the repository and every version is
pinned: what was tested here is what gets deployed.

Each agent's folder is wiped first, and nothing in the output depends on time
or on the order of the file system, so building twice gives identical bytes.
"""

from __future__ import annotations

import argparse
import importlib.metadata as metadata
import shutil
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import NormalizedName, canonicalize_name

from shared.errors import ConfigurationError, SignalsLoopError
from signalsloop import ROOT

FUNCTIONS_DIR = ROOT / "functions"
SHARED_DIR = ROOT / "shared"
DEFAULT_OUT = ROOT / "build" / "functions"
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", ".DS_Store", ".pytest_cache", ".mypy_cache")
# Installers, never runtime dependencies of a function.
SKIPPED: frozenset[str] = frozenset({"pip"})

# Cloud Run's python311 runtime: markers are evaluated for it, not for the laptop.
TARGET_MARKERS = {
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "os_name": "posix",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "python_version": "3.11",
}

GCLOUDIGNORE = """\
# Only this folder is uploaded; keep caches and local secrets out of it.
.gcloudignore
DEPLOY.txt
__pycache__/
*.py[cod]
.env
.env.*
.venv/
"""


# Folders deployed as a Cloud Run service (``python main.py`` from a Procfile)
# rather than a function: the dashboard keeps websockets open and serves pages.
SERVICES: frozenset[str] = frozenset({"dashboard"})
PROCFILE = "web: python main.py\n"
# Functions called from outside rather than by the doorbell: no agents row, and
# the caller's own request signature instead of the bearer secret.
CALLBACKS: dict[str, str] = {
    "slack_actions": "Slack's interaction callbacks: set the Slack app's Interactivity Request URL to it; "
                     "every request must carry Slack's signature (SLACK_SIGNING_SECRET, 401 otherwise)",
}


def function_names() -> list[str]:
    """Every folder that has an HTTP entry point (agents, and the services)."""
    return sorted(p.parent.name for p in FUNCTIONS_DIR.glob("*/main.py"))


def target_environment() -> dict[str, str]:
    env = {key: str(value) for key, value in default_environment().items()}
    env.update(TARGET_MARKERS)
    if not env["python_full_version"].startswith("3.11."):
        env["python_full_version"] = "3.11.0"
    return env


# --- resolving requirements to pins ---------------------------------------------------


@dataclass
class Resolution:
    """Installed distributions reached from the direct requirements."""

    pins: dict[NormalizedName, tuple[str, str]] = field(default_factory=dict)  # key -> (name, version)
    extras: dict[NormalizedName, set[str]] = field(default_factory=dict)
    missing: dict[NormalizedName, Requirement] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = []
        for key in sorted(self.pins):
            name, version = self.pins[key]
            extras = sorted(self.extras.get(key, ()))
            out.append(f"{name}{'[' + ','.join(extras) + ']' if extras else ''}=={version}")
        for key in sorted(self.missing):
            out.append(f"{self.missing[key]}  # not installed where this was built: unpinned")
        return out


def read_requirements(path: Path) -> list[Requirement]:
    """A requirements file's requirement lines (no options, no includes)."""
    reqs = []
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-"):
            raise ConfigurationError(f"{path}:{number}: pip options are not supported here: {line}")
        try:
            reqs.append(Requirement(line))
        except InvalidRequirement as exc:
            raise ConfigurationError(f"{path}:{number}: {exc}") from exc
    return reqs


def installed(name: str) -> metadata.Distribution | None:
    try:
        return metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return None


def applies(req: Requirement, extras: Iterable[str], env: dict[str, str]) -> bool:
    """Whether a requirement counts for the target, under any of the requested extras."""
    if req.marker is None:
        return True
    return any(req.marker.evaluate({**env, "extra": extra}) for extra in extras)


def dependencies(dist: metadata.Distribution, extras: set[str], env: dict[str, str],
                 warnings: list[str]) -> list[Requirement]:
    """The requirements ``dist`` declares that apply for ``extras`` ("" is the base)."""
    found = []
    for line in dist.requires or []:
        try:
            req = Requirement(line)
        except InvalidRequirement:
            warnings.append(f"{dist.metadata['Name']}: ignoring unparseable requirement {line!r}")
            continue
        if applies(req, extras, env):
            found.append(req)
    return found


def resolve(direct: Sequence[Requirement], env: dict[str, str] | None = None) -> Resolution:
    """Pin ``direct`` and everything it needs to the versions installed here.

    A direct requirement that is not installed is an error (run ``make install``);
    a transitive one that is not installed (a dependency only the target platform
    needs) is kept unpinned with a warning, so the build still deploys.
    """
    env = env or target_environment()
    result = Resolution()
    walked: dict[NormalizedName, set[str]] = {}
    queue: list[tuple[Requirement, bool]] = [(r, True) for r in direct if applies(r, [""], env)]
    while queue:
        req, is_direct = queue.pop(0)
        key = canonicalize_name(req.name)
        if key in SKIPPED:
            continue
        wanted = {str(canonicalize_name(e)) for e in req.extras}
        result.extras.setdefault(key, set()).update(wanted)
        new = ({""} | wanted) - walked.setdefault(key, set())
        if not new:
            continue
        walked[key] |= new
        dist = installed(req.name)
        if dist is None:
            if is_direct:
                raise ConfigurationError(f"{req.name} is not installed in this environment: run `make install`")
            result.missing.setdefault(key, req)
            result.warnings.append(f"{req.name} (needed by the target) is not installed here: left unpinned")
            continue
        result.pins[key] = (dist.metadata["Name"], dist.version)
        if is_direct and not req.specifier.contains(dist.version, prereleases=True):
            result.warnings.append(f"installed {dist.metadata['Name']} {dist.version} does not satisfy {req}")
        queue.extend((child, False) for child in dependencies(dist, new, env, result.warnings))
    return result


def pinned_requirements(agent: str, resolution: Resolution) -> str:
    header = [
        f"# Pinned by `python -m signalsloop.release.package` from functions/{agent}/requirements.txt",
        "# with the versions installed where the tests ran (transitive dependencies included).",
        "# Do not edit: change the direct requirements and rebuild.",
    ]
    return "\n".join([*header, *resolution.lines()]) + "\n"


# --- building the folder ----------------------------------------------------------------


def deploy_text(agent: str) -> str:
    """DEPLOY.txt: the exact gcloud command for this folder, and why it is public."""
    from signalsloop.release.deploy import DEFAULT_REGION, describe_command, gcloud_deploy_command, shell
    from signalsloop.release.deploy_service import service_text

    if agent in SERVICES:
        return service_text(agent)

    deploy = gcloud_deploy_command(agent, Path("."), region=DEFAULT_REGION, project=None,
                                   supabase_url="https://<project-ref>.supabase.co")
    describe = describe_command(agent, region=DEFAULT_REGION, project=None)
    if agent in CALLBACKS:
        return f"""\
SignalsLoop function `{agent}`: a self-contained Cloud Run function (2nd gen).
{CALLBACKS[agent]}.

From the repository: make deploy AGENT={agent}   (builds, deploys, prints the URL)
By hand, from this folder (secrets must exist in Google Secret Manager first):

{shell(deploy)}

then take the URL from

{shell(describe)}
"""
    return f"""\
SignalsLoop agent function `{agent}`: a self-contained Cloud Run function (2nd gen).

From the repository: make deploy AGENT={agent}   (builds, deploys, records agents.endpoint_url)
By hand, from this folder (secrets must exist in Google Secret Manager first):

{shell(deploy)}

then record the URL in the agent registry:

{shell(describe)}
update public.agents set endpoint_url = '<that url>' where name = '{agent}';

Why --allow-unauthenticated: the caller is Supabase's pg_net (the doorbell),
which cannot mint Google identity tokens, so Cloud Run's IAM check would refuse
it. The function does its own authentication instead: every request must carry
`Authorization: Bearer <SIGNALSLOOP_SECRET>` (compared in constant time, 401
otherwise, before the body is read). Supabase reads the same secret from the
Vault secret named `signalsloop_secret`; keep the two equal.
"""


def check_destination(dest: Path) -> None:
    """Refuse to wipe anything that holds, or lies inside, the sources."""
    resolved = dest.resolve()
    for source in (FUNCTIONS_DIR, SHARED_DIR):
        if source.is_relative_to(resolved) or resolved.is_relative_to(source):
            raise ConfigurationError(f"refusing to build into {dest}: it overlaps the sources in {source}")


def copy_sources(agent: str, dest: Path) -> None:
    """main.py at the top, as Cloud Run expects; the packages it imports beside it."""
    agent_dir = FUNCTIONS_DIR / agent

    def ignore(directory: str, names: list[str]) -> set[str]:
        skipped = set(IGNORE(directory, names))
        if Path(directory) == agent_dir:  # main.py is at the top; the pinned file replaces this one
            skipped |= {"main.py", "requirements.txt"} & set(names)
        return skipped

    shutil.copyfile(agent_dir / "main.py", dest / "main.py")
    (dest / "functions").mkdir()
    shutil.copyfile(FUNCTIONS_DIR / "__init__.py", dest / "functions" / "__init__.py")
    shutil.copytree(agent_dir, dest / "functions" / agent, ignore=ignore, copy_function=shutil.copyfile)
    shutil.copytree(SHARED_DIR, dest / "shared", ignore=IGNORE, copy_function=shutil.copyfile)


def build(agent: str, out: Path = DEFAULT_OUT) -> tuple[Path, Resolution]:
    """Build ``<out>/<agent>/`` from scratch; return it and how it was pinned."""
    if agent not in function_names():
        raise ConfigurationError(f"unknown agent {agent!r}: expected one of {', '.join(function_names())}")
    dest = out / agent
    check_destination(dest)
    resolution = resolve(read_requirements(FUNCTIONS_DIR / agent / "requirements.txt"))
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    copy_sources(agent, dest)
    (dest / "requirements.txt").write_text(pinned_requirements(agent, resolution))
    if agent in SERVICES:
        (dest / "Procfile").write_text(PROCFILE)
    (dest / ".gcloudignore").write_text(GCLOUDIGNORE)
    (dest / "DEPLOY.txt").write_text(deploy_text(agent))
    return dest, resolution


# --- command line -------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m signalsloop.release.package",
                                     description="Build self-contained Cloud Run function folders, one per agent.")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output root (default: build/functions)")
    parser.add_argument("agents", nargs="*", metavar="AGENT", help="agents to build (default: all)")
    return parser


def main(args: Sequence[str] | None = None) -> int:
    parsed = build_parser().parse_args(args)
    try:
        for agent in parsed.agents or function_names():
            dest, resolution = build(agent, parsed.out)
            for warning in resolution.warnings:
                print(f"warning: {agent}: {warning}", file=sys.stderr)
            print(f"{agent}: {dest} ({len(resolution.pins)} pinned distributions)")
    except SignalsLoopError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
