"""The /train HTTP tests of the local backend, run again on the celery backend.

The test functions are those of ``tests/service/jobs/test_train_http.py``, imported as they
are; only the ``jobs_client`` fixture differs: an app with ``job_backend="celery"`` on a fresh
PostgreSQL database and Redis number, with one Celery worker (the compose command) sharing
its models folder. Same HTTP behaviour, same tests.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.http.app import create_app
from tests.integration.stack import running_stack, unreachable_reason
from tests.service.jobs.conftest import TEST_STALL_S, job_settings
from tests.service.jobs.test_train_http import (
    test_cancel_stops_a_running_fit_within_a_second,
    test_curve_plots_render_as_png_and_svg,
    test_job_succeeds_with_a_falling_curve_and_its_version_answers,
    test_killed_worker_fails_its_job_and_the_service_still_predicts,
    test_list_is_newest_first_paginated_and_filtered,
    test_promote_makes_the_new_version_the_default,
    test_queue_full_answers_429_with_retry_after,
    test_stopped_worker_fails_its_job_for_no_progress_and_is_killed,
    test_unknown_job_is_404,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

__all__ = [
    "test_cancel_stops_a_running_fit_within_a_second",
    "test_curve_plots_render_as_png_and_svg",
    "test_job_succeeds_with_a_falling_curve_and_its_version_answers",
    "test_killed_worker_fails_its_job_and_the_service_still_predicts",
    "test_list_is_newest_first_paginated_and_filtered",
    "test_promote_makes_the_new_version_the_default",
    "test_queue_full_answers_429_with_retry_after",
    "test_stopped_worker_fails_its_job_for_no_progress_and_is_killed",
    "test_unknown_job_is_404",
]


@pytest.fixture(scope="module")
def jobs_client(
    tmp_path_factory: pytest.TempPathFactory, tiny_models: Path
) -> Iterator[TestClient]:
    """An app on the celery backend and one Celery worker, shared by the module's tests."""
    reason = unreachable_reason()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true needs PostgreSQL and Redis: {reason}")
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("celery-jobs")
    models = root / "models"
    shutil.copytree(tiny_models, models)
    with running_stack(models, root / "logs") as stack:
        stack.start_worker()
        settings = job_settings(
            root,
            models,
            job_backend="celery",
            database_url=stack.database_url,
            celery_broker_url=stack.broker_url,
            versions_dir=stack.versions_dir,
            job_stall_s=TEST_STALL_S,
        )
        with TestClient(create_app(settings)) as client:
            yield client
