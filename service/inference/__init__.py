"""Inference: model repository and registry, data plane, batcher, runtime."""
