"""The project's scripts (scripts/*.py), imported by the tests as modules."""

from __future__ import annotations

import importlib.util
from types import ModuleType

from fer_utils.paths import PROJECT_ROOT


def load_script(name: str) -> ModuleType:
    """``scripts/<name>.py`` as a module (its ``if __name__ == "__main__"`` part not run)."""
    spec = importlib.util.spec_from_file_location(name, PROJECT_ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
