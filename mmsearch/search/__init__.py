"""Search: query → encode → filter → retrieve → fuse → rank → page.

``query`` is the typed request, ``encode`` turns its parts into vectors,
``filters`` into allowed segment ids, ``retrieve`` finds candidates,
``moments`` merges video frames, ``fusion`` holds the pure fusion functions and
``rank`` the order they are applied in; ``results`` is what comes back.
"""
