"""MLServer custom runtime serving a shipped ``model.onnx`` with ONNX Runtime: the MLServer
reference of ``bench/serve_bench.py --mlserver`` (not part of the service).

It runs inside MLServer's own virtual environment (``bench/.venvs/mlserver``, made by
``bench/mlserver_ref.py``), never in the project's: this module imports ``mlserver``, which the
project does not depend on. It follows MLServer's documented custom-runtime example: an
``MLModel`` subclass with ``async def load()`` (the model's ``parameters.uri`` from
``model-settings.json``, through ``mlserver.utils.get_model_uri``) and
``async def predict(payload: InferenceRequest) -> InferenceResponse``; the first input decoded
with ``NumpyCodec``.

The answer has the service's ``/v2`` outputs: ``probabilities`` FP32 (N, 10), ``label`` INT64
(N,), ``outlier`` BOOL (N,) and ``outlier_score`` FP32 (N,), the threshold read from the
graph's metadata, as ``service/inference/runtime_onnx.py`` does; the session has the service's
options (1 intra-op thread, 1 inter-op thread, sequential, every graph optimisation, no
spinning). What it leaves out: the service's pixel range check, its micro-batcher and inline
forward choice, its deadlines and metrics (MLServer keeps its own Prometheus metrics).
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse, ResponseOutput
from mlserver.utils import get_model_uri

INPUT_NAME = "input"
OUTPUT_NAMES = ["probabilities", "score"]
THRESHOLD_KEY = "outlier_threshold"


class DigitsOnnx(MLModel):
    """A digit classifier's ``model.onnx`` on one ONNX Runtime CPU thread."""

    async def load(self) -> bool:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        uri = await get_model_uri(self._settings, wellknown_filenames=["model.onnx"])
        self._session = ort.InferenceSession(uri, options, providers=["CPUExecutionProvider"])
        meta = self._session.get_modelmeta().custom_metadata_map
        self._threshold = float(meta[THRESHOLD_KEY])
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        rows = NumpyCodec.decode_input(payload.inputs[0]).astype(np.float32, copy=False)
        probabilities, score = self._session.run(OUTPUT_NAMES, {INPUT_NAME: rows})
        n = len(rows)
        outputs = [
            ResponseOutput(
                name="probabilities",
                datatype="FP32",
                shape=[n, 10],
                data=probabilities.ravel().tolist(),
            ),
            ResponseOutput(
                name="label", datatype="INT64", shape=[n], data=probabilities.argmax(1).tolist()
            ),
            ResponseOutput(
                name="outlier", datatype="BOOL", shape=[n], data=(score > self._threshold).tolist()
            ),
            ResponseOutput(name="outlier_score", datatype="FP32", shape=[n], data=score.tolist()),
        ]
        return InferenceResponse(model_name=self.name, model_version=self.version, outputs=outputs)
