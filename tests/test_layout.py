"""The repository's structural rules (DESIGN.md layout, style rules 1 and 4, table ownership)."""

import ast
import re
from pathlib import Path

import pytest

from mailstream.schemas import TOPICS

pytestmark = pytest.mark.unit

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


# --- table ownership (docs/architecture.md "Who owns which table") ---------------------------------

MIGRATIONS = "src/mailstream/{package}/migrations"
_SQL_COMMENT = re.compile(r"--[^\n]*")
_CREATED = re.compile(
    r"\bCREATE\s+(?:(?:OR\s+REPLACE|UNLOGGED|TEMP|TEMPORARY)\s+)*(TABLE|VIEW)\s+(?:IF\s+NOT\s+EXISTS\s+)?([\w.\"]+)",
    re.I,
)
# A relation a statement names: after FROM, JOIN, INTO, UPDATE, TABLE (ALTER/DROP/TRUNCATE TABLE),
# TRUNCATE and REFERENCES; an optional schema and quotes are dropped.
_NAMED = re.compile(r"\b(?:FROM|JOIN|INTO|UPDATE|TABLE|TRUNCATE|REFERENCES)\s+(?:ONLY\s+)?([\w.\"]+)", re.I)


def _relation(raw: str) -> str:
    return raw.replace('"', "").rsplit(".", 1)[-1].lower()


def owned_relations() -> tuple[dict[str, str], dict[str, str], list[str]]:
    """(table -> owning service folder, view -> declaring service folder, conflicts) from every
    service's migrations: a table belongs to the service whose migrations CREATE it."""
    tables: dict[str, str] = {}
    views: dict[str, str] = {}
    conflicts = []
    for folder, package in SERVICES.items():
        for path in sorted((ROOT / "services" / folder / MIGRATIONS.format(package=package)).glob("*.sql")):
            for kind, raw in _CREATED.findall(_SQL_COMMENT.sub("", path.read_text())):
                name, into = _relation(raw), tables if kind.upper() == "TABLE" else views
                if (tables.get(name) or views.get(name) or folder) != folder:
                    conflicts.append(f"{name} is created by {tables.get(name) or views.get(name)} and {folder}")
                into[name] = folder
    return tables, views, conflicts


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def sql_texts(path: Path):
    """(line, text) of the SQL a file may hold: a migration whole (comments dropped), or each
    string literal of a Python module (docstrings left out)."""
    if path.suffix == ".sql":
        yield 1, _SQL_COMMENT.sub("", path.read_text())
        return
    tree = ast.parse(path.read_text())
    docstrings = _docstrings(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield node.lineno, node.value


def foreign_tables_named(folder: str, tables: dict[str, str]) -> list[str]:
    """`file:line: table (owner)` for each place a service's code or migrations name another service's table."""
    package = SERVICES[folder]
    base = ROOT / "services" / folder
    files = [p for p in python_files(base / "src") if "tests" not in p.parts]
    files += sorted((base / MIGRATIONS.format(package=package)).glob("*.sql"))
    offenders = []
    for path in files:
        for line, text in sql_texts(path):
            for match in _NAMED.finditer(text):
                name = _relation(match.group(1))
                owner = tables.get(name)
                if owner is not None and owner != folder:
                    at = line + text.count("\n", 0, match.start())
                    offenders.append(f"{path.relative_to(ROOT)}:{at}: {name} (owned by {owner})")
    return offenders


def test_each_table_and_view_is_created_by_one_service():
    tables, views, conflicts = owned_relations()
    assert tables and views, "no CREATE TABLE / CREATE VIEW found in services/*/src/mailstream/*/migrations"
    assert conflicts == []


def test_a_service_names_another_services_tables_only_through_its_views():
    tables, _, _ = owned_relations()
    offenders = [o for folder in SERVICES for o in foreign_tables_named(folder, tables)]
    assert offenders == [], "read another service's data through a view its owner declares:\n" + "\n".join(offenders)


def test_the_ownership_rule_finds_a_foreign_table_in_sql(tmp_path):
    """The rule itself: FROM/JOIN/INTO/UPDATE in a string literal, a schema prefix, and not a docstring."""
    module = tmp_path / "adapter.py"
    module.write_text(
        '"""Reads FROM stats in prose only."""\n'
        'Q = "SELECT s.x FROM public.stats s JOIN suppression_reasons r USING (account_id)"\n'
        'W = """INSERT INTO\n    send_outcomes (a) VALUES (1)"""\n'
    )
    tables = {"stats": "tracker", "send_outcomes": "tracker"}
    named = [(line, _relation(m.group(1))) for line, text in sql_texts(module) for m in _NAMED.finditer(text)]
    foreign = [(line, name) for line, name in named if tables.get(name, "gateway") != "gateway"]
    assert foreign == [(2, "stats"), (3, "send_outcomes")]
