"""The repository's structural rules (DESIGN.md layout, style rules 1 and 4)."""

import ast
import re
from pathlib import Path

from mailstream.schemas import TOPICS

ROOT = Path(__file__).resolve().parents[1]
SERVICES = {"api-gateway": "gateway", "renderer": "renderer", "sender": "sender", "tracker": "tracker"}


def python_files(folder: Path):
    return [p for p in folder.rglob("*.py") if ".mailstream" not in p.parts]


def imported_modules(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module


def test_every_service_folder_is_a_deployable():
    for folder, package in SERVICES.items():
        base = ROOT / "services" / folder
        for required in ("pyproject.toml", "Dockerfile", f"src/mailstream/{package}/__main__.py", "tests/unit"):
            assert (base / required).exists(), f"services/{folder} lacks {required}"


def test_mailstream_is_a_namespace_package_everywhere():
    assert not list(ROOT.glob("**/src/mailstream/__init__.py"))


def test_a_service_imports_only_itself_core_and_schemas():
    for folder, package in SERVICES.items():
        others = {f"mailstream.{p}" for p in SERVICES.values() if p != package}
        for path in python_files(ROOT / "services" / folder):
            for module in imported_modules(path):
                assert not any(module == o or module.startswith(o + ".") for o in others), (
                    f"{path.relative_to(ROOT)} imports {module}"
                )


def test_core_and_schemas_import_no_service():
    services = tuple(f"mailstream.{p}" for p in SERVICES.values())
    for folder in (ROOT / "libs" / "core", ROOT / "schemas"):
        for path in python_files(folder):
            assert not [m for m in imported_modules(path) if m.startswith(services)], path


def test_topic_names_are_spelled_only_in_the_registry():
    names = [t.name for t in TOPICS]
    pattern = re.compile("|".join(re.escape(f'"{n}"') for n in names))
    offenders = []
    for folder in (ROOT / "services", ROOT / "libs"):
        for path in python_files(folder):
            if "tests" in path.parts:
                continue
            if pattern.search(path.read_text()):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_no_registry_host_is_written_into_the_repository():
    hosts = (
        "pypi.org",
        "files.pythonhosted.org",
        "repo.maven.apache.org",
        "repo1.maven.org",
        "deb.debian.org",
        "registry.npmjs.org",
    )
    tracked = [
        p
        for p in ROOT.rglob("*")
        if p.is_file() and ".git" not in p.parts and ".mailstream" not in p.parts and p.suffix not in (".pyc",)
    ]
    for path in tracked:
        if path.name == "test_layout.py":
            continue
        text = path.read_text(errors="ignore")
        assert not any(h in text for h in hosts), path
