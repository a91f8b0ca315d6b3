"""The packages import one way, as ``../shared/DESIGN.md`` draws them (README: "Layers").

Every ``import`` in ``service/`` is read, at module top or inside a function alike, and a module
may import only its own package and the layers below its own. A test that fails here names the
module, the line and the layer it reached up to: move the code down, or pass the value in.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SERVICE = Path(__file__).resolve().parents[2] / "service"

# Lowest first. A module of a layer may import modules of its own layer's packages only when they
# are in the same package; across packages, only lower layers.
LAYERS: list[tuple[str, ...]] = [
    ("service.domain",),
    ("service.config",),
    ("service.ingest",),
    ("service.nlp",),
    ("service.store",),
    ("service.analytics", "service.teach"),
    ("service.alerts", "service.delivery", "service.jobs"),
    ("service.runtime",),
    ("service.scale", "service.demo"),
    ("service.api", "service.web"),
    ("service.cli",),
]
# the package itself holds only ``__version__``, which any layer may read
SHARED = {"service"}


def _layer_of(module: str) -> tuple[int, str] | None:
    for rank, packages in enumerate(LAYERS):
        for p in packages:
            if module == p or module.startswith(p + "."):
                return rank, p
    return None


def _module_name(path: Path) -> str:
    parts = path.relative_to(SERVICE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    me = _module_name(path).split(".")
    package = me if path.name == "__init__.py" else me[:-1]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            out.append((name, node.lineno))
    return [(n, line) for n, line in out if n == "service" or n.startswith("service.")]


def _sources() -> list[Path]:
    return sorted(p for p in SERVICE.rglob("*.py") if "migrations" not in p.parts)


def upward_imports() -> list[str]:
    found = []
    for path in _sources():
        me = _module_name(path)
        mine = _layer_of(me)
        if mine is None:
            continue
        for name, line in _imports(path):
            if name in SHARED:
                continue
            theirs = _layer_of(name)
            if theirs is None:
                found.append(f"{me}:{line} imports {name}, which is in no layer")
            elif theirs[0] > mine[0] or (theirs[0] == mine[0] and theirs[1] != mine[1]):
                found.append(f"{me}:{line} imports {name} ({theirs[1]}, not below {mine[1]})")
    return found


def test_every_module_is_in_a_layer():
    modules = {_module_name(p) for p in _sources()} - {"service"}
    assert sorted(m for m in modules if _layer_of(m) is None) == []


def test_imports_point_down_the_layers():
    assert upward_imports() == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from service.runtime import Runtime\n", ["imports service.runtime"]),
        ("from service.ingest import dedup\n", []),
        (
            "def f():\n    from service.delivery.digest import compose\n",
            ["imports service.delivery"],
        ),
    ],
)
def test_the_check_sees_a_reach_upwards(tmp_path, monkeypatch, source, expected):
    """The check itself: a store module that imports the runtime (even inside a function) is
    reported; one that imports ingest is not."""
    fake = tmp_path / "service"
    (fake / "store").mkdir(parents=True)
    (fake / "store" / "probe.py").write_text(source, encoding="utf-8")
    monkeypatch.setattr(sys.modules[__name__], "SERVICE", fake)
    found = upward_imports()
    assert len(found) == len(expected)
    for f, e in zip(found, expected):
        assert f.startswith("service.store.probe:") and e in f
