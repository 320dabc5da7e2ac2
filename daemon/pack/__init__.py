"""Sample packs: many tagged clips from one pack file, resumable, locally or on Ray.

``plan`` reads and checks ``PACK.toml``; ``output`` owns the pack folder (which clips exist,
atomic writes, the run lock); ``manifest`` writes ``manifest.csv``/``manifest.json``; ``local``
renders with one engine (the daemon's batching); ``run`` is the driver; ``ray_backend`` spreads
the clips over Ray actors. User guide: docs/packs.md.
"""
