"""Headless Chromium for the web UI's tests and screenshots: Debian's chromium (scripts/chromium.sh), driven by
Playwright (never `playwright install`), and the helpers that read the UI's views.

Test modules take the ``browser`` and ``page`` fixtures by importing them from here."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM_SH = Path(__file__).resolve().parent.parent / "scripts" / "chromium.sh"


class NoChromium(RuntimeError):
    """Chromium is not installed and cannot be installed here (scripts/chromium.sh exited 3)."""


@contextmanager
def chromium() -> Iterator:
    """A headless Chromium (a Playwright ``Browser``), closed on exit; ``NoChromium`` if there is none."""
    found = subprocess.run([str(CHROMIUM_SH)], capture_output=True, text=True, timeout=600)
    if found.returncode == 3:
        raise NoChromium(found.stderr.strip())
    if found.returncode != 0:
        raise RuntimeError(f"scripts/chromium.sh failed: {found.stderr.strip()}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=found.stdout.strip(), args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def browser():
    try:
        with chromium() as b:
            yield b
    except NoChromium as exc:
        pytest.skip(f"no Chromium: {exc}")


@pytest.fixture
def page(browser):
    """A page in a fresh context; ``page.dialogs`` collects the messages of any alert/confirm a page opens."""
    context = browser.new_context()
    pg = context.new_page()
    pg.dialogs = []
    pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
    yield pg
    context.close()


def open_view(page, url: str, route: str) -> None:
    """Goes to ``url`` and waits until the UI has rendered the view of ``route``."""
    page.goto(url)
    page.wait_for_selector(f'#view[data-route="{route}"]', timeout=15_000)


def assert_nothing_injected(page) -> None:
    assert page.evaluate("window.__pwned") is None and page.dialogs == []
    assert page.locator("#view script, #view img").count() == 0


def shown_runs(page) -> list[str]:
    return page.locator("tr.run").evaluate_all("rows => rows.map(r => r.dataset.runId)")
