"""/docs and /redoc in a real browser with every request off 127.0.0.1 blocked: the pages
render from the service's own files, and Swagger UI's "Try it out" + "Execute" with the
shown examples answer.

Drives Debian's ``chromium`` through Playwright. Skipped with the reason when either is
missing, unless ``CI=true`` (then it fails: ``.ci/run`` installs both).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.service.live import LiveService, running_service

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
#: A quiet, offline headless Chromium: no sandbox (root in CI), no GPU, no calls home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT_MS = 30_000


def _missing() -> str | None:
    """Why the browser test cannot run here (``None`` when it can)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed (pip install -e '.[dev]')"
    if not os.access(CHROMIUM, os.X_OK):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    return None


@pytest.fixture(scope="module", autouse=True)
def _needs_chromium() -> None:
    """Chromium and Playwright are here, or the module skips (fails under CI=true)."""
    reason = _missing()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true needs the browser test to run: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def live(tiny_models: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    """The service as ``make serve`` runs it, on a copy of the tiny models and a temporary
    job store, shared by this module's tests."""
    workdir = tmp_path_factory.mktemp("docs-page")
    shutil.copytree(tiny_models, workdir / "models")
    with running_service(workdir / "models", workdir) as service:
        yield service


@dataclass
class OfflinePage:
    """A browser page that reaches 127.0.0.1 only, and the URLs it was refused."""

    page: Any  # playwright.sync_api.Page, imported only once the module knows it is there
    blocked: list[str]
    #: What Chromium's console said about the Content-Security-Policy (anything it refused).
    csp_violations: list[str]


@contextlib.contextmanager
def offline_page(**context_options: Any) -> Iterator[OfflinePage]:
    """A page of a headless Chromium that may reach 127.0.0.1 only; every other request is
    aborted and recorded. ``context_options`` go to ``browser.new_context``."""
    from playwright.sync_api import Route, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        context = browser.new_context(**context_options)
        blocked: list[str] = []

        def only_localhost(route: Route) -> None:
            if urlsplit(route.request.url).hostname == "127.0.0.1":
                route.continue_()
            else:
                blocked.append(route.request.url)
                route.abort()

        context.route("**/*", only_localhost)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        violations: list[str] = []
        page.on(
            "console",
            lambda message: (
                violations.append(message.text)
                if "Content Security Policy" in message.text
                else None
            ),
        )
        try:
            yield OfflinePage(page, blocked, violations)
        finally:
            browser.close()


@pytest.fixture
def offline(live: LiveService) -> Iterator[OfflinePage]:
    """An offline page (``offline_page``) once the service is up."""
    with offline_page() as page:
        yield page


def _try_it_out(page: Any, method: str, path: str) -> str:
    """Open an operation in Swagger UI, press "Try it out" and "Execute" with the example
    it shows, and return the status code it displays for the answer."""
    from playwright.sync_api import expect

    operation = page.locator(f".opblock-{method}").filter(
        has=page.locator(f'.opblock-summary-path[data-path="{path}"]')
    )
    operation.locator(".opblock-summary").first.click()
    operation.get_by_role("button", name="Try it out").click()
    operation.get_by_role("button", name="Execute").click()
    status = operation.locator(".live-responses-table tbody .response-col_status").first
    expect(status).to_have_text(re.compile(r"^\s*\d{3}"), timeout=TIMEOUT_MS)
    return status.inner_text().strip()


def test_swagger_ui_renders_offline_and_try_it_out_answers(
    live: LiveService, offline: OfflinePage
) -> None:
    """/docs renders every operation with nothing but 127.0.0.1 reachable, and "Try it out" +
    "Execute" with the shown examples answers 200 on POST /predict and on POST
    /models/{name}/explain (name filled in: cnn), and 202 on POST /train."""
    from playwright.sync_api import expect

    page = offline.page
    page.goto(f"{live.url}/docs")
    expect(page.locator(".opblock").first).to_be_visible()
    paths = set(page.locator(".opblock-summary-path").all_inner_texts())
    assert {"/predict", "/models/{name}/predict", "/train", "/train/{job_id}"} <= {
        p.replace("\u200b", "") for p in paths
    }
    expect(page.get_by_text("Start a training job")).to_be_visible()
    assert _try_it_out(page, "post", "/predict") == "200"
    assert _try_it_out(page, "post", "/models/{name}/explain") == "200"  # name: cnn
    assert _try_it_out(page, "post", "/train") == "202"
    assert offline.blocked == []
    assert offline.csp_violations == []  # the page works under its Content-Security-Policy


def test_redoc_renders_offline(live: LiveService, offline: OfflinePage) -> None:
    """/redoc renders the operations and tag descriptions with nothing but 127.0.0.1
    reachable."""
    from playwright.sync_api import expect

    page = offline.page
    page.goto(f"{live.url}/redoc")
    for summary in ("Start a training job", "Classify digits with the default model"):
        expect(page.get_by_role("heading", name=summary)).to_be_visible(timeout=TIMEOUT_MS)
    expect(page.get_by_text("Training jobs: start one in the background")).to_be_visible()
    # The one request off this host: ReDoc's "powered by" logo (no option turns it off).
    assert set(offline.blocked) <= {"https://cdn.redoc.ly/redoc/logo-mini.svg"}
    # The page's Content-Security-Policy now stops that logo in the browser already; it
    # refuses nothing else.
    assert [v for v in offline.csp_violations if "redoc/logo-mini.svg" not in v] == []
