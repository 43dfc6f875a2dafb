"""The plugin manager: entry-point loading, validation, runtime registration, the error policy."""

from __future__ import annotations

import logging
import sys
import types
from collections.abc import Callable
from pathlib import Path

import pytest

from dorm import plugins, signals
from dorm.exceptions import PluginConflictError, PluginError, PluginLoadError
from dorm.plugins import hookimpl

FakeDist = Callable[..., str]

pytestmark = pytest.mark.usefixtures("fresh_manager")

POST_SAVE_PLUGIN = """
from dorm.plugins import hookimpl
SEEN = []
IMPORTS = globals().setdefault("IMPORTS", 0) + 1

@hookimpl
def dorm_post_save(sender, instance, created):
    SEEN.append((sender, instance, created))
"""


def _save(sender: type, instance: object, created: bool = True) -> None:
    signals.post_save.send(
        sender=sender,
        instance=instance,
        created=created,
        raw=False,
        using="default",
        update_fields=None,
    )


def test_entry_point_is_loaded_once_lazily_and_sees_events(fake_dist: FakeDist) -> None:
    module = fake_dist("dorm-fake", "1.2.0", "fake", POST_SAVE_PLUGIN)
    assert module not in sys.modules  # nothing loaded before first use
    pm = plugins.get_plugin_manager()
    assert plugins.get_plugin_manager() is pm
    loaded = sys.modules[module]
    assert loaded.IMPORTS == 1

    class Note:
        pass

    note = Note()
    _save(Note, note)
    assert loaded.SEEN == [(Note, note, True)]
    info = {i.name: i for i in plugins.plugin_infos()}["fake"]
    assert (info.distribution, info.version) == ("dorm-fake", "1.2.0")
    assert info.entry_point == f"fake = {module}"
    assert plugins.hooks_of("fake") == ["dorm_post_save"]


def test_misspelt_hook_fails_at_startup_naming_the_distribution(fake_dist: FakeDist) -> None:
    fake_dist(
        "dorm-typo",
        "0.3.0",
        "typo",
        "from dorm.plugins import hookimpl\n@hookimpl\ndef dorm_post_sav(sender): pass\n",
    )
    with pytest.raises(PluginLoadError) as err:
        plugins.get_plugin_manager()
    message = str(err.value)
    assert "'typo'" in message and "dorm-typo 0.3.0" in message
    assert "unknown hook 'dorm_post_sav'" in message and "dorm_post_save" in message
    # The failed start left no half-built manager behind: the next call fails the same way.
    with pytest.raises(PluginLoadError):
        plugins.get_plugin_manager()


def test_import_error_names_entry_point_distribution_and_version(fake_dist: FakeDist) -> None:
    fake_dist("dorm-broken", "2.0.1", "broken", "import not_a_module_anywhere_123\n")
    with pytest.raises(PluginLoadError) as err:
        plugins.get_plugin_manager()
    message = str(err.value)
    assert "'broken'" in message and "dorm-broken 2.0.1" in message
    assert "ModuleNotFoundError" in message and "not_a_module_anywhere_123" in message
    assert "DORM_DISABLE_PLUGIN_AUTOLOAD=1" in message


def test_autoload_can_be_disabled(fake_dist: FakeDist, monkeypatch: pytest.MonkeyPatch) -> None:
    module = fake_dist("dorm-broken", "2.0.1", "broken", "raise RuntimeError('boom')\n")
    monkeypatch.setenv("DORM_DISABLE_PLUGIN_AUTOLOAD", "1")
    names = [i.name for i in plugins.plugin_infos()]
    assert names == ["dorm.cli.builtin", "dorm.db.backends.registry", "dorm.sql.builtins"]
    assert module not in sys.modules


def test_two_distributions_with_one_entry_point_name_conflict(fake_dist: FakeDist) -> None:
    fake_dist("dorm-one", "1.0.0", "same", POST_SAVE_PLUGIN)
    fake_dist("dorm-two", "1.0.0", "same", POST_SAVE_PLUGIN)
    with pytest.raises(PluginConflictError) as err:
        plugins.get_plugin_manager()
    assert "dorm-one 1.0.0" in str(err.value) and "dorm-two 1.0.0" in str(err.value)


def test_wrapper_on_an_observer_hook_is_rejected(fake_dist: FakeDist) -> None:
    fake_dist(
        "dorm-wrap",
        "1.0.0",
        "wrap",
        "from dorm.plugins import hookimpl\n"
        "@hookimpl(wrapper=True)\n"
        "def dorm_post_query(sql):\n    return (yield)\n",
    )
    with pytest.raises(PluginLoadError, match="dorm_post_query is an observer hook"):
        plugins.get_plugin_manager()


def test_runtime_register_validates_and_leaves_nothing_on_failure() -> None:
    bad = types.SimpleNamespace()

    @hookimpl
    def dorm_pre_sav(sender: type) -> None:  # misspelt on purpose
        raise AssertionError("never called")

    bad.dorm_pre_sav = dorm_pre_sav
    with pytest.raises(PluginLoadError, match="unknown hook 'dorm_pre_sav'"):
        plugins.register(bad, name="bad")
    assert plugins.get_plugin_manager().get_plugin("bad") is None
    assert "bad" not in [i.name for i in plugins.plugin_infos()]


def test_runtime_register_rejects_a_taken_name() -> None:
    plugin = types.ModuleType("first")
    plugins.register(plugin, name="mine")
    with pytest.raises(PluginConflictError, match="'mine' is already registered"):
        plugins.register(types.ModuleType("second"), name="mine")
    plugins.unregister("mine")
    with pytest.raises(ValueError, match="not a registered dorm plugin"):
        plugins.unregister("mine")


def test_observer_hook_error_is_logged_and_other_impls_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[str] = []

    class Broken:
        @hookimpl
        def dorm_post_query(self, sql: str) -> None:
            raise RuntimeError("tracer exploded")

    class Working:
        @hookimpl
        def dorm_post_query(self, sql: str, duration: float) -> None:
            seen.append(f"{sql}:{duration}")

    plugins.register(Working(), name="working")
    plugins.register(Broken(), name="broken-tracer")
    with caplog.at_level(logging.ERROR, logger="dorm.plugins"):
        plugins.notify(
            "dorm_post_query",
            alias="default",
            vendor="sqlite",
            sql="SELECT 1",
            params=(),
            duration=0.5,
            rowcount=1,
            error=None,
        )
    assert seen == ["SELECT 1:0.5"]
    [record] = caplog.records
    assert "'broken-tracer'" in record.getMessage()
    assert "dorm_post_query" in record.getMessage()
    assert record.exc_info is not None and str(record.exc_info[1]) == "tracer exploded"


def test_signal_hook_error_propagates_to_the_sender() -> None:
    class Veto:
        @hookimpl
        def dorm_pre_save(self, instance: object) -> None:
            raise PermissionError(f"{instance} is read-only")

    plugins.register(Veto(), name="veto")
    with pytest.raises(PermissionError, match="row-7 is read-only"):
        signals.pre_save.send(
            sender=object, instance="row-7", raw=False, using="default", update_fields=None
        )


def test_registration_hook_error_names_the_plugin_and_applies_nothing() -> None:
    class Broken:
        @hookimpl
        def dorm_register_functions(self) -> list[type]:
            raise KeyError("oops")

    class Fine:
        class Greatest:
            pass

        @hookimpl
        def dorm_register_functions(self) -> list[type]:
            return [self.Greatest]

    plugins.register(Fine(), name="fine")
    plugins.register(Broken(), name="broken")
    with pytest.raises(PluginError, match="'broken' failed in dorm_register_functions: KeyError"):
        plugins.extensions()
    plugins.unregister("broken")
    assert plugins.extensions().functions["Greatest"] is Fine.Greatest


def test_register_hook_must_return_a_list() -> None:
    class Sloppy:
        @hookimpl
        def dorm_register_lookups(self) -> object:
            return {"not": "a list"}

    plugins.register(Sloppy(), name="sloppy")
    with pytest.raises(PluginError, match="'sloppy': dorm_register_lookups must return a list"):
        plugins.extensions()


def test_lazy_exports_import_on_first_use(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``lazy_exports``: a package's re-exports load when first used, not with it."""

    pkg = tmp_path / "lazypkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        "from dorm.plugins import lazy_exports\n"
        "__getattr__, __dir__ = lazy_exports(__name__, {'Thing': 'lazypkg.heavy'})\n"
    )
    (pkg / "heavy.py").write_text("class Thing:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import lazypkg  # type: ignore[import-not-found]

    try:
        assert "lazypkg.heavy" not in sys.modules
        assert "Thing" in dir(lazypkg)
        assert lazypkg.Thing.__module__ == "lazypkg.heavy"
        assert "lazypkg.heavy" in sys.modules and "Thing" in vars(lazypkg)
        with pytest.raises(AttributeError, match="module 'lazypkg' has no attribute 'Other'"):
            lazypkg.Other  # noqa: B018
    finally:
        sys.modules.pop("lazypkg", None)
        sys.modules.pop("lazypkg.heavy", None)
