"""GET /metrics: Prometheus text with the named series, one registry per app."""

from __future__ import annotations

from fastapi.testclient import TestClient

from service.http.app import create_app
from service.settings import Settings


def test_metrics_exposes_the_named_series(client: TestClient) -> None:
    """After a prediction, requests, latency, predictions, batch sizes and models are exposed."""
    client.post("/predict", json={"instances": [[0] * 64] * 3})
    client.get("/models/nope")
    client.get("/no/such/path")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    for line in (
        'digits_http_requests_total{method="POST",route="/predict",status="200"} 1.0',
        'digits_http_requests_total{method="GET",route="/models/{name}",status="404"} 1.0',
        'digits_http_requests_total{method="GET",route="<unmatched>",status="404"} 1.0',
        'digits_http_request_duration_seconds_count{method="POST",route="/predict"} 1.0',
        'digits_predictions_total{model="cnn",version="1"} 3.0',
        'digits_batch_size_rows_sum{model="cnn",version="1"} 3.0',
        "digits_models_loaded 3.0",
    ):
        assert line in text


def test_two_apps_keep_separate_metrics(settings: Settings) -> None:
    """Each app has its own registry: building two never clashes, counts do not mix."""
    with TestClient(create_app(settings)) as first, TestClient(create_app(settings)) as second:
        first.post("/predict", json={"pixels": [0] * 64})
        assert 'route="/predict"' in first.get("/metrics").text
        assert 'route="/predict"' not in second.get("/metrics").text
