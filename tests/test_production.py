"""What production ships: the services and the generated code, nothing of the development tools."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

from setuptools import find_namespace_packages

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = {"services", "faceitvoice"}
DEVELOPMENT = ("sandbox", "bench", "devtools", "tests")


def _packages() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    find = config["tool"]["setuptools"]["packages"]["find"]
    return [
        package
        for where in find["where"]
        for package in find_namespace_packages(
            where=str(ROOT / where), include=find["include"], exclude=find.get("exclude", ())
        )
    ]


def test_the_package_holds_only_the_services_and_the_generated_code() -> None:
    """setuptools' package discovery finds services and faceitvoice, nothing else."""
    packages = _packages()
    assert {package.split(".")[0] for package in packages} == SHIPPED
    assert "services.run" not in packages and not (ROOT / "services" / "run.py").exists()


def test_the_image_copies_only_what_production_runs() -> None:
    """The Dockerfile copies pyproject, gen and services, not the sandboxes or the benchmarks."""
    copied = re.findall(r"^COPY\s+(?!--from)(\S+)", (ROOT / "Dockerfile").read_text(), re.M)
    assert sorted(copied) == ["gen", "pyproject.toml", "services"]


def test_no_service_module_imports_a_development_tool() -> None:
    """No module under services/ imports the sandboxes, benchmarks, dev tools or tests."""
    offenders = []
    for path in (ROOT / "services").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module]
            offenders += [
                f"{path.relative_to(ROOT)}: {name}"
                for name in names
                if name.split(".")[0] in DEVELOPMENT or name == "services.run"
            ]
    assert offenders == []
