"""The package's shape: three bands without loops, and dvc.yaml stating what every stage reads.

Bands: the library (everything but ``pipeline/``, ``apps/`` and ``cli``) imports neither the pipeline
nor the apps; the pipeline and the apps do not import each other; only ``cli`` wires them.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from facedet.stages import stage_specs

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
# Package markers that only dispatch (lazy attribute, stage runner): they change no stage's result.
DISPATCH_ONLY = {"facedet", "facedet.pipeline"}


def _modules() -> dict[str, Path]:
    modules = {}
    for path in sorted((SRC / "facedet").rglob("*.py")):
        name = ".".join(path.relative_to(SRC).with_suffix("").parts)
        modules[name.removesuffix(".__init__")] = path
    return modules


MODULES = _modules()


def _imports(module: str) -> set[str]:
    """The facedet modules ``module`` imports anywhere in its file (lazy imports included)."""
    path = MODULES[module]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.split(".")[: len(module.split(".")) - node.level + (path.name == "__init__.py")]
                base = ".".join(parts + ([base] if base else []))
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            while name and name not in MODULES:
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


def _band(module: str) -> str:
    for band in ("pipeline", "apps"):
        if module == f"facedet.{band}" or module.startswith(f"facedet.{band}."):
            return band
    return "cli" if module == "facedet.cli" or module.startswith("facedet.cli.") else "library"


ALLOWED = {
    "library": {"library"},
    "pipeline": {"pipeline", "library"},
    "apps": {"apps", "library"},
    "cli": {"cli", "pipeline", "apps", "library"},
}


def test_no_band_imports_a_higher_or_sibling_band():
    breaches = [
        f"{m} ({_band(m)}) imports {i} ({_band(i)})"
        for m in MODULES
        for i in _imports(m)
        if _band(i) not in ALLOWED[_band(m)]
    ]
    assert breaches == []


def test_no_import_loops():
    graph = {m: _imports(m) for m in MODULES}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    loops = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for other in sorted(graph[module]):
            if state.get(other) == 1:
                loops.append(
                    " -> ".join(path[path.index(other) :] + [module, other])
                    if other in path
                    else f"{module} -> {other}"
                )
            elif other not in state:
                visit(other, path + [module])
        state[module] = 2

    for module in MODULES:
        if module not in state:
            visit(module, [])
    assert loops == []


def test_the_checker_sees_a_breach(tmp_path):
    """The band rule is not vacuous: a library module importing the pipeline is a breach."""
    assert _band("facedet.coco") == "library" and "pipeline" not in ALLOWED["library"]
    assert _band("facedet.apps.sweep") == "apps" and "pipeline" not in ALLOWED["apps"]
    assert "facedet.pipeline.train" in _reach("facedet.pipeline.train")
    assert "facedet.model.dense" in _reach("facedet.pipeline.train")


def _reach(module: str) -> set[str]:
    seen, todo = set(), [module]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        parts = current.split(".")
        todo += _imports(current) | {".".join(parts[:i]) for i in range(1, len(parts))}
    return seen


SPECS = stage_specs(ROOT)


@pytest.mark.parametrize("stage", sorted(SPECS))
def test_stage_code_deps_cover_everything_it_imports(stage):
    deps = [ROOT / d for d in SPECS[stage].deps]
    uncovered = sorted(
        str(MODULES[m].relative_to(ROOT))
        for m in _reach(f"facedet.pipeline.{stage}") - DISPATCH_ONLY
        if not any(MODULES[m] == d or d in MODULES[m].parents for d in deps)
    )
    assert uncovered == [], f"dvc.yaml stage {stage!r} lacks deps for the code it runs"


@pytest.mark.parametrize("stage", sorted(SPECS))
def test_stage_params_are_keys_of_params_yaml(stage):
    params = OmegaConf.create(yaml.safe_load((ROOT / "params.yaml").read_text()))
    missing = [k for k in SPECS[stage].params if OmegaConf.select(params, k, default="<missing>") == "<missing>"]
    assert missing == []
    assert "paths" not in SPECS[stage].params, "declare the exact paths.* keys the stage reads"


# Settings that change how a training runs or logs, not the model it makes: not params of train.
RUNTIME_TRAIN_KEYS = (
    "train.num_workers",
    "train.pin_memory",
    "train.devices",
    "train.accelerator",
    "train.strategy",
    "train.num_nodes",
    "train.resume",
)
RUNTIME_TRAINER_KEYS = ("trainer.log_every_n_steps", "trainer.enable_model_summary")


def _declared(key: str, params: tuple[str, ...]) -> bool:
    return any(key == p or key.startswith(p + ".") for p in params)


def test_runtime_knobs_do_not_retrain():
    params = SPECS["train"].params
    for knob in (*RUNTIME_TRAIN_KEYS, *RUNTIME_TRAINER_KEYS, "tracking", "tracking.experiment"):
        assert not _declared(knob, params), knob
    assert "train" not in params and "model" in params and "src/facedet/evaluation" in SPECS["train"].deps


def _stale_trainer_keys(trainer: dict, params: tuple[str, ...]) -> list[str]:
    """Keys of a conf/trainer/ option that reach Lightning but would not retrain when changed: neither
    ``${train.X}`` with train.X a train param or a runtime knob, nor a train param, nor a runtime knob."""
    stale = []
    for name, value in trainer.items():
        key = f"trainer.{name}"
        follows = re.fullmatch(r"\$\{(train\.[\w.]+)\}", value) if isinstance(value, str) else None
        if follows:
            ok = _declared(follows[1], params) or follows[1] in RUNTIME_TRAIN_KEYS
        else:
            ok = name == "defaults" or _declared(key, params) or key in RUNTIME_TRAINER_KEYS
        if not ok:
            stale.append(key)
    return stale


@pytest.mark.parametrize("option", sorted(p.name for p in (ROOT / "conf" / "trainer").glob("*.yaml")))
def test_every_trainer_key_retrains_or_is_a_runtime_knob(option):
    params = SPECS["train"].params
    # The check is not vacuous: a new Trainer argument, or one following an unlisted train.* key, is stale.
    assert _stale_trainer_keys({"gradient_clip_val": 1.0, "max_epochs": "${train.nope}"}, params) == [
        "trainer.gradient_clip_val",
        "trainer.max_epochs",
    ]
    trainer = yaml.safe_load((ROOT / "conf" / "trainer" / option).read_text())
    assert _stale_trainer_keys(trainer, params) == [], "declare them as params of dvc.yaml's train stage"


def test_every_stage_module_is_a_dvc_stage():
    from facedet.pipeline import stage_names

    assert stage_names() == sorted(SPECS)


def _hand_clipped_boxes(source: str) -> list[int]:
    """Lines of ``np.clip(x, 0, [w, h, w, h])``: boxes clipped to a frame by hand."""
    return [
        node.lineno
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "clip"
        and len(node.args) == 3
        and isinstance(node.args[2], (ast.List, ast.Tuple))
        and len(node.args[2].elts) == 4
    ]


def test_boxes_are_clipped_only_by_the_boxes_module():
    assert _hand_clipped_boxes("np.clip(out, 0, [w, h, w, h])") == [1]  # the check sees the pattern
    hand_written = [
        f"{path.relative_to(ROOT)}:{line}"
        for module, path in MODULES.items()
        if module != "facedet.boxes"
        for line in _hand_clipped_boxes(path.read_text())
    ]
    assert hand_written == [], "use facedet.boxes.clip_boxes / clip_box"


def _module_map() -> list[str]:
    """The first word of each line of the module map (its code block in docs/architecture.md)."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    block = text[text.index("**Module map.**") :].split("```")[1]
    return [line.split()[0] for line in block.splitlines()[1:] if line.strip() and not line.startswith("──")]


def _names_only(path: Path) -> bool:
    """An ``__init__.py`` that holds nothing but its docstring."""
    body = ast.parse(path.read_text()).body
    return path.name == "__init__.py" and len(body) <= 1 and all(isinstance(n, ast.Expr) for n in body)


def test_the_module_map_has_one_line_per_module():
    listed = _module_map()
    modules = sorted(path.relative_to(SRC / "facedet").as_posix() for path in MODULES.values() if not _names_only(path))
    assert len(listed) == len(set(listed)), "a module listed twice"
    assert sorted(listed) == modules, "docs/architecture.md's module map and src/facedet/ disagree"


def test_albumentations_update_check_is_turned_off_in_one_place():
    """facedet/__init__.py sets NO_ALBUMENTATIONS_UPDATE; nothing else restates it."""
    files = [*SRC.rglob("*.py"), *(ROOT / "tests").rglob("*.py"), *(ROOT / "experiments").glob("*.py")]
    setters = [
        f for f in [*files, ROOT / "Makefile"] if f != Path(__file__) and "NO_ALBUMENTATIONS_UPDATE" in f.read_text()
    ]
    assert setters == [SRC / "facedet" / "__init__.py"]


def test_mlflow_is_called_from_the_tracking_package_only():
    """Experiment tracking has one home (facedet.tracking): no other module imports MLflow."""
    importers = set()
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            if any(name.split(".")[0] == "mlflow" for name in names):
                importers.add(module)
    assert importers and all(module.startswith("facedet.tracking.") for module in importers), importers


MAX_FUNCTION_LINES = 80
MAX_MODULE_LINES = 400


def _long_functions(source: str, limit: int) -> list[tuple[str, int]]:
    """(name, lines) of every function or method longer than ``limit`` lines, decorators left out."""
    return [
        (node.name, node.end_lineno - node.lineno + 1)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > limit
    ]


def test_no_function_is_longer_than_a_screen():
    assert _long_functions("def f():\n" + "    x = 1\n" * 3, limit=3) == [("f", 4)]  # the check sees one
    long = [
        f"{path.relative_to(ROOT)}: {name} ({lines} lines)"
        for path in MODULES.values()
        for name, lines in _long_functions(path.read_text(), MAX_FUNCTION_LINES)
    ]
    assert long == [], f"split them into named steps of at most {MAX_FUNCTION_LINES} lines"


def test_at_most_one_module_is_long():
    long = sorted(
        f"{path.relative_to(ROOT)} ({n} lines)"
        for path in MODULES.values()
        if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    )
    assert len(long) <= 1, f"split modules over {MAX_MODULE_LINES} lines by responsibility: {long}"


DOCUMENTED = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
SPHINX_ROLE = re.compile(r":(?:py:)?(?:func|mod|class|data|meth|attr|exc|obj):`[^`]+`")


def _sphinx_roles(source: str) -> list[int]:
    """Lines of docstrings that use a Sphinx role (``:func:`x` ``), which the API reference shows raw."""
    found = []
    for node in ast.walk(ast.parse(source)):
        doc = ast.get_docstring(node, clean=False) if isinstance(node, DOCUMENTED) else None
        if doc and SPHINX_ROLE.search(doc):
            found.append(node.body[0].lineno)
    return found


def test_docstrings_use_markdown_cross_references_not_sphinx_roles():
    assert _sphinx_roles('def f():\n    """See :func:`g`."""\n') == [2]  # the check sees one
    found = [
        f"{path.relative_to(ROOT)}:{line}" for path in MODULES.values() for line in _sphinx_roles(path.read_text())
    ]
    assert found == [], "write [`name`][] (a link, resolved where the docstring is) or `name`, as mkdocstrings renders"
