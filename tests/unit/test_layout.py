"""The layout of DESIGN.md "Parts" as rules: who may import what, where settings and metrics live, how
thin a handler is. Each failure names the file, the line and the import or call that breaks the rule."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAMBDAS = ROOT / "lambdas"
COMMON = LAMBDAS / "common"
FUNCTIONS = sorted(p.parent.name for p in LAMBDAS.glob("*/handler.py"))
# What infra may take from the Lambda code: the CDK-free, boto3-free contracts and settings.
INFRA_MAY_IMPORT = (
    "lambdas.common.contracts",
    "lambdas.common.settings",
    "lambdas.common.retention",
    "lambdas.common.messages",  # the alarm descriptions and the dump's failure mail, in the configured language
    "lambdas.common.texts",  # the catalogue's parts (lambdas.common.messages merges them)
)
# Modules that may send metrics or read the environment (everything else gets clients and settings).
PUBLISHERS = {"publishing.py", "observability.py"}
ENVIRONMENT_READERS = {"settings.py"}
MAX_HANDLER_LINES = 20  # the decorated handler function
MAX_HANDLER_MODULE_LINES = 40


def _py(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, module) of every import in ``path``, relative imports resolved."""
    package = ".".join(_relative(path).with_suffix("").parts[:-1])
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            yield node.lineno, module
            for alias in node.names:  # ``from lambdas.common import jobs`` imports lambdas.common.jobs
                yield node.lineno, f"{module}.{alias.name}"


def _relative(path: Path) -> Path:
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else Path(path.name)


def _where(path: Path, line: int) -> str:
    return f"{_relative(path)}:{line}"


def _violations(paths: list[Path], allowed: Callable[[str], bool]) -> list[str]:
    return [
        f"{_where(p, line)} imports {module}"
        for p in paths
        for line, module in _imports(p)
        if not allowed(module)
    ]


def _first_party(module: str) -> bool:
    return module.split(".", maxsplit=1)[0] in {"lambdas", "infra", "cli", "tests", "app"}


def test_the_rules_see_every_function() -> None:
    assert FUNCTIONS == [
        "ami_backup",
        "drill",
        "iam_review",
        "offsite_copy",
        "prune",
        "rds_snapshot",
        "report",
        "restore_test",
        "verify",
    ]


@pytest.mark.parametrize("function", FUNCTIONS)
def test_a_function_package_imports_only_lambdas_common(function: str) -> None:
    def allowed(module: str) -> bool:
        return not _first_party(module) or module == "lambdas.common" or module.startswith("lambdas.common.")

    assert _violations(_py(LAMBDAS / function), allowed) == [], (
        "a function package imports only lambdas.common (DESIGN.md, Parts)"
    )


def test_infra_imports_only_the_cdk_free_parts_of_lambdas_common() -> None:
    def allowed(module: str) -> bool:
        if not module.startswith("lambdas") or module in ("lambdas", "lambdas.common"):
            return True  # the packages themselves are empty
        return any(module == m or module.startswith(f"{m}.") for m in INFRA_MAY_IMPORT)

    paths = [*_py(ROOT / "infra"), ROOT / "app.py"]
    assert _violations(paths, allowed) == [], f"infra may import only {', '.join(INFRA_MAY_IMPORT)}"


def test_contracts_import_nothing_but_the_standard_library() -> None:
    def allowed(module: str) -> bool:
        top = module.split(".", maxsplit=1)[0]
        return top in sys.stdlib_module_names or top == "__future__"

    assert _violations([COMMON / "contracts.py"], allowed) == []


def test_what_infra_imports_loads_without_boto3_botocore_or_powertools() -> None:
    """Importing them in a process where those packages cannot be imported (as at synth time)."""
    blocked = "boto3", "botocore", "aws_lambda_powertools", "aws_xray_sdk"
    code = "\n".join(
        [
            "import sys",
            *(f"sys.modules[{name!r}] = None" for name in blocked),
            *(f"import {module}" for module in INFRA_MAY_IMPORT),
            "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('lambdas',))",
            "print(' '.join(loaded))",
        ]
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    loaded = set(run.stdout.split())
    assert {m for m in loaded if not m.startswith("lambdas.common.texts.")} <= {
        "lambdas",
        "lambdas.common",
        *INFRA_MAY_IMPORT,
    }


def _calls_environment(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Attribute) and node.attr in {"environ", "getenv", "putenv"}:
            found.append(f"{_where(path, node.lineno)} reads os.{node.attr}")
        if isinstance(node, ast.ImportFrom) and node.module == "os":
            names = {a.name for a in node.names} & {"environ", "getenv"}
            found += [f"{_where(path, node.lineno)} imports os.{name}" for name in sorted(names)]
    return found


def test_no_module_of_the_domain_reads_the_environment_except_settings() -> None:
    paths = [p for p in _py(LAMBDAS) if p.name not in ENVIRONMENT_READERS and "dump" not in p.parts]
    assert [v for p in paths for v in _calls_environment(p)] == [], "read settings with Settings.from_env()"


def test_only_the_publishing_modules_and_the_handlers_touch_metrics() -> None:
    def allowed(module: str) -> bool:
        return not (
            module in ("lambdas.common.observability.metrics", "lambdas.common.publishing")
            or module.startswith(("aws_lambda_powertools.metrics", "lambdas.common.publishing."))
        )

    paths = [p for p in _py(COMMON) if p.name not in PUBLISHERS]
    assert _violations(paths, allowed) == [], "domain code returns results; handlers publish them"


@pytest.mark.parametrize("function", FUNCTIONS)
def test_every_handler_is_thin(function: str) -> None:
    path = LAMBDAS / function / "handler.py"
    source = path.read_text()
    [handler] = [n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef) and n.name == "handler"]
    start = min([d.lineno for d in handler.decorator_list] + [handler.lineno])
    length = (handler.end_lineno or start) - start + 1
    assert length <= MAX_HANDLER_LINES, (
        f"{_where(path, start)}: handler is {length} lines; move the work to jobs/"
    )
    assert len(source.splitlines()) <= MAX_HANDLER_MODULE_LINES, (
        f"{path.relative_to(ROOT)} is more than an entry"
    )
    assert {p.name for p in (LAMBDAS / function).glob("*.py")} <= {"__init__.py", "handler.py"}


def test_the_rules_catch_a_violation(tmp_path: Path) -> None:
    """The checks above are not vacuous: a file that breaks each rule is reported with its line."""
    bad = tmp_path / "probe.py"
    bad.write_text(
        "import os\nfrom lambdas.report import handler\nfrom lambdas.common.publishing import x\n"
        "value = os.environ['X']\n"
    )
    assert _violations([bad], lambda m: not _first_party(m) or m.startswith("lambdas.common")) == [
        "probe.py:2 imports lambdas.report",
        "probe.py:2 imports lambdas.report.handler",
    ]
    assert _calls_environment(bad) == ["probe.py:4 reads os.environ"]
    assert _violations([bad], lambda m: not m.startswith("lambdas.common.publishing")) == [
        "probe.py:3 imports lambdas.common.publishing",
        "probe.py:3 imports lambdas.common.publishing.x",
    ]


def _calls(path: Path, names: set[str]) -> list[str]:
    return [
        f"{_where(path, node.lineno)} calls {node.func.attr}()"
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in names
    ]


def test_only_the_mail_adapter_sends_mail() -> None:
    paths = [p for p in _py(LAMBDAS) if p != COMMON / "aws" / "mail.py"]
    assert [c for p in paths for c in _calls(p, {"send_email", "publish", "send_raw_email"})] == []
