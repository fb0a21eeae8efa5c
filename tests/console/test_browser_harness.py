"""Which browser the console's tests drive: the one PROPSYNC_CHROMIUM names
(`make test` sets it: a missing one fails), else Debian's /usr/bin/chromium
(a missing one skips the browser tests, saying why)."""

import pytest

from tests.console import conftest


def test_a_named_browser_that_is_missing_fails(monkeypatch, tmp_path):
    monkeypatch.setenv(conftest.CHROMIUM_ENV, str(tmp_path / "no-chromium"))

    with pytest.raises(pytest.fail.Exception, match="does not exist: run `make browser`"):
        conftest.chromium_path()


def test_without_a_name_a_missing_default_browser_skips_with_the_reason(monkeypatch, tmp_path):
    monkeypatch.delenv(conftest.CHROMIUM_ENV, raising=False)
    monkeypatch.setattr(conftest, "DEFAULT_CHROMIUM", str(tmp_path / "no-chromium"))

    with pytest.raises(pytest.skip.Exception, match="`make browser` installs Debian's chromium"):
        conftest.chromium_path()


def test_a_named_browser_that_exists_is_used(monkeypatch, tmp_path):
    browser = tmp_path / "chromium"
    browser.write_text("")
    monkeypatch.setenv(conftest.CHROMIUM_ENV, str(browser))

    assert conftest.chromium_path() == str(browser)
