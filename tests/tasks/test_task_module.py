"""The task registry, --include-package and the gitnetic.tasks entry-point group."""

from __future__ import annotations

import importlib.metadata
import sys
import textwrap

import pytest

from gitnetic.common.errors import TaskError
from gitnetic.common.imports import import_module_and_submodules, include_packages
from gitnetic.tasks.task_module import ENTRY_POINT_GROUP, TaskModule


def test_register_lookup_and_list(clean_registry):
    @TaskModule.register("unit-task-a")
    class A(TaskModule[int, str]):
        pass

    assert TaskModule.by_name("unit-task-a") is A
    assert A.task_name == "unit-task-a"
    assert "unit-task-a" in TaskModule.list_tasks()
    task = A("tok", 1, "dm")
    assert (task.tokenizer, task.module, task.datamodule) == ("tok", 1, "dm")


def test_duplicate_name_with_other_class_is_rejected(clean_registry):
    @TaskModule.register("unit-dup")
    class First(TaskModule):
        pass

    TaskModule.register("unit-dup")(First)  # same class again: fine (module imported twice)
    with pytest.raises(TaskError, match="already registered"):

        @TaskModule.register("unit-dup")
        class Second(TaskModule):
            pass

    with pytest.raises(TaskError, match="TaskModule subclass"):
        TaskModule.register("unit-not-a-task")(dict)


def test_unknown_task_is_one_line_with_hint(clean_registry):
    @TaskModule.register("unit-known")
    class Known(TaskModule):
        pass

    with pytest.raises(TaskError) as info:
        TaskModule.by_name("no-such-task")
    msg = str(info.value)
    assert "\n" not in msg and "unit-known" in msg and "--include-package" in msg


def test_base_setup_is_abstract_and_params_are_found():
    with pytest.raises(NotImplementedError):
        TaskModule.setup(())
    params = TaskModule.Params()
    assert TaskModule.get_params((params,)) is params
    with pytest.raises(TaskError):
        TaskModule.get_params(())


def _write_package(root, name: str, task_name: str) -> None:
    pkg = root / name
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")  # registration lives only in a submodule
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "deep.py").write_text(
        textwrap.dedent(
            f"""
            from gitnetic.tasks.task_module import TaskModule

            @TaskModule.register({task_name!r})
            class Deep(TaskModule):
                pass
            """
        )
    )


def test_include_package_imports_submodules_from_cwd(tmp_path, monkeypatch, clean_registry):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    _write_package(tmp_path, "unit_plugin_pkg", "unit-deep-task")
    modules = include_packages(["unit_plugin_pkg"])
    assert "unit_plugin_pkg.sub.deep" in {m.__name__ for m in modules}
    assert TaskModule.by_name("unit-deep-task").__name__ == "Deep"


def test_include_package_accepts_a_py_file(tmp_path, clean_registry):
    path = tmp_path / "unit_single_file.py"
    path.write_text(
        "from gitnetic.tasks.task_module import TaskModule\n"
        "@TaskModule.register('unit-file-task')\nclass F(TaskModule):\n    pass\n"
    )
    import_module_and_submodules(str(path))
    assert TaskModule.by_name("unit-file-task").__name__ == "F"


def test_include_package_errors_are_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TaskError, match="no module named 'unit_missing_mod'") as info:
        include_packages(["unit_missing_mod"])
    assert "\n" not in str(info.value)
    (tmp_path / "unit_broken_mod.py").write_text("def f(:\n")
    with pytest.raises(TaskError, match="SyntaxError.*unit_broken_mod.py"):
        include_packages(["unit_broken_mod"])
    (tmp_path / "unit_raising_mod.py").write_text("import os\nraise RuntimeError('boom')\n")
    with pytest.raises(TaskError, match="RuntimeError: boom") as info:
        include_packages(["unit_raising_mod"])
    assert "\n" not in str(info.value)


def test_entry_point_plugins_load_lazily(tmp_path, monkeypatch, clean_registry):
    (tmp_path / "unit_ep_plugin.py").write_text(
        "from gitnetic.tasks.task_module import TaskModule\n"
        "@TaskModule.register('unit-ep-task')\nclass P(TaskModule):\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    ep = importlib.metadata.EntryPoint(name="unit-ep-task", value="unit_ep_plugin", group=ENTRY_POINT_GROUP)
    broken = importlib.metadata.EntryPoint(
        name="unit-broken", value="unit_no_such_plugin", group=ENTRY_POINT_GROUP
    )

    def fake_entry_points(group=None, **_):
        return [ep, broken] if group == ENTRY_POINT_GROUP else []

    monkeypatch.setattr(importlib.metadata, "entry_points", fake_entry_points)
    monkeypatch.setattr(TaskModule, "_entry_points_loaded", False)
    assert "unit_ep_plugin" not in sys.modules
    assert TaskModule.by_name("unit-ep-task").__name__ == "P"
    assert "unit-ep-task" in TaskModule.list_tasks()  # the broken plugin is skipped, not fatal
    with pytest.raises(TaskError, match="unit-broken.*failed to load"):
        TaskModule.by_name("unit-broken")
