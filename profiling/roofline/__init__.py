"""Each stage against the hardware's limits: FLOPs and bytes per stage, the device's ceilings, the verdict.

``counting`` runs one untimed counting pass (FlopCounterMode + byte and op counters per stage);
``ceilings`` measures (and caches per machine) the peak matmul rate per precision and the copy
bandwidth, beside datasheet values where known; ``analysis`` joins them with timed stage times
into the per-stage table; ``plot`` draws the roofline; ``profiler`` is the suite's roofline profiler (listed
in profiling.profilers.PROFILERS) that runs them; ``onnx_flops`` is the ONNX models' counterpart.
"""
