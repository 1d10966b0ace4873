"""The Open Inference Protocol (KServe v2) REST API with Triton's binary tensor data extension:
``codec`` turns its bodies into rows for the data plane and results back into its bodies."""
