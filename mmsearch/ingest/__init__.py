"""Ingestion: paths → discover → decode (``workers``) → chunk / sample → embed → store.

``indexer`` runs the pipeline with its incremental rules, ``video`` turns one
video into frame segments, ``ocr_pass`` reads the words of indexed images
later, and ``report`` holds what a run says back (skips, progress, counts).
"""
