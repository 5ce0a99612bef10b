"""Video: opening and reading with PyAV (``reader``), shot cuts (``shots``),
sequential frame sampling for indexing (``sampler``), single frames and query
clips (``frames``)."""
