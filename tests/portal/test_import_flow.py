"""The house's one-way import flow (docs/architecture.md), read from the source, so a wrong import fails CI."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APPS = ("portal", "monitoring", "scheduling")
ENGINES = ("monitoring.batches", "monitoring.summaries", "scheduling.scheduler", "scheduling.workflows", "scheduling.cutoffs")
INTERFACES = ("admin", "api", "tasks", "views", "console", "management")
# The cross-engine pages and the URL roots are the one place the kernel names the engines.
KERNEL_JOINS = {"portal.console", "portal.urls", "portal.api.urls"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def production_modules() -> dict[str, set[str]]:
    """Every module of the three apps (migrations aside) and the modules it imports."""
    modules = {}
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            imported = set()
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    imported.update(alias.name for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    imported.add(node.module)
                    imported.update(f"{node.module}.{alias.name}" for alias in node.names)
            modules[module_name(path)] = {name for name in imported if name.split(".")[0] in APPS}
    return modules


MODULES = production_modules()


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def engine_of(name: str) -> str | None:
    return next((engine for engine in ENGINES if within(name, engine)), None)


def is_interface(name: str) -> bool:
    engine = engine_of(name)
    rest = name[len(engine) + 1:] if engine else ""
    return bool(rest) and rest.split(".")[0] in INTERFACES


def test_the_walk_found_every_engine():
    assert all(any(within(name, engine) for name in MODULES) for engine in ENGINES)
    assert len(MODULES) > 60


@pytest.mark.parametrize("lowest", ["portal.lib", "portal.clock"])
def test_the_pure_helpers_and_the_clock_import_no_app(lowest):
    wrong = {
        (name, target)
        for name, targets in MODULES.items() if within(name, lowest)
        for target in targets if not within(target, "portal.lib")
    }
    assert wrong == set()


def test_the_kernel_imports_no_engine():
    wrong = {
        (name, target)
        for name, targets in MODULES.items() if within(name, "portal") and name not in KERNEL_JOINS
        for target in targets if target.split(".")[0] != "portal"
    }
    assert wrong == set()


def test_monitoring_imports_nothing_from_scheduling():
    wrong = {(name, t) for name, targets in MODULES.items() if within(name, "monitoring") for t in targets if within(t, "scheduling")}
    assert wrong == set()


def test_an_engine_never_imports_another_engines_interfaces():
    wrong = {
        (name, target)
        for name, targets in MODULES.items() if engine_of(name)
        for target in targets if engine_of(target) not in (None, engine_of(name)) and is_interface(target)
    }
    assert wrong == set()


def test_services_models_and_selectors_import_no_interface():
    lower = ("models", "services", "selectors")
    wrong = {
        (name, target)
        for name, targets in MODULES.items() if engine_of(name) and name.rsplit(".", 1)[-1] in lower
        for target in targets if is_interface(target)
    }
    assert wrong == set()


def test_no_module_only_re_exports_names():
    """Registration modules (an app's models.py, admin.py, api/urls.py) and the django-q2 shims aside."""
    allowed = {"monitoring.models", "scheduling.models", "monitoring.admin", "scheduling.admin", "scheduling.tasks", "scheduling.job_tasks"}
    facades = []
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            name = module_name(path)
            body = [n for n in ast.parse(path.read_text()).body if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]
            if body and all(isinstance(n, (ast.Import, ast.ImportFrom)) for n in body) and name not in allowed:
                if any(isinstance(n, ast.ImportFrom) and n.module != "__future__" for n in body):
                    facades.append(name)
    assert facades == []


def test_no_production_file_is_over_500_lines():
    long = {
        str(path.relative_to(ROOT)): count
        for app in APPS for path in (ROOT / app).rglob("*.py")
        if "migrations" not in path.parts and (count := len(path.read_text().splitlines())) > 500
    }
    assert long == {}
