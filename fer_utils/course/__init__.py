"""The course's study and report layer: what writes the notebooks' and the README's conclusions.

One module per notebook's study (``ablation`` for 02, ``architectures`` for 03, ``final_model``, ``ensemble``,
``distillation`` and ``levers`` for 04, ``face_study`` and ``scenes`` for 06 and 07,
``transfer`` for 08, ``own_faces`` for 09), the records they share
(``records``), every target the course states (``targets``), the one verdict rule (``verdicts``), each
chapter's Summary made from the records (``summaries``),
and the grids on Ray (``cluster``). It imports the library (``fer_utils``); the library never imports
it. ``fu.course.<module>`` imports a module on first use.
"""

import importlib

MODULES = ("ablation", "architectures", "cluster", "distillation", "ensemble", "face_study", "final_model", "lab_hooks",
           "levers", "own_faces", "records", "scenes", "summaries", "targets", "transfer", "verdicts")
__all__ = list(MODULES)


def __getattr__(name: str):
    if name in MODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
