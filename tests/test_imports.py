"""The package's import seams: data does not import metrics, evaluate does not import run, and
no ImportError guard hides a broken module of the package."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GUARDS = {"ImportError", "ModuleNotFoundError"}


def imports_in(node: ast.AST) -> set[str]:
    """Every module imported anywhere under ``node`` (``from a import b``: ``a`` and ``a.b``)."""
    out: set[str] = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Import):
            out.update(a.name for a in n.names)
        elif isinstance(n, ast.ImportFrom) and n.module:
            out.add(n.module)
            out.update(f"{n.module}.{a.name}" for a in n.names)
    return out


def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), str(path))


def test_data_never_imports_metrics_and_evaluate_never_imports_run():
    for path in (REPO / "personpose" / "data").rglob("*.py"):
        assert not any(m.startswith("personpose.metrics") for m in imports_in(parse(path))), path
    evaluate = imports_in(parse(REPO / "personpose" / "evaluate.py"))
    assert not any(m.startswith("personpose.run") for m in evaluate)
    code = (
        "import sys; import personpose.data.annotate; a = 'personpose.metrics' in sys.modules; "
        "import personpose.evaluate; print(a, 'personpose.run' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def guarded_own_imports(path: Path) -> list[int]:
    """Lines of ``try:`` blocks that import the package and catch ImportError."""
    return [
        node.lineno
        for node in ast.walk(parse(path))
        if isinstance(node, ast.Try)
        and any(m.startswith("personpose") for s in node.body for m in imports_in(s))
        and any(
            h.type is not None and GUARDS & set(re.findall(r"\w+", ast.unparse(h.type)))
            for h in node.handlers
        )
    ]


def test_no_import_error_guard_around_the_package():
    for path in [*(REPO / "personpose").rglob("*.py"), *(REPO / "experiments").rglob("*.py")]:
        assert not guarded_own_imports(path), f"{path}:{guarded_own_imports(path)}"
