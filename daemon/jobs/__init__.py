"""The job system: the priority queue (:mod:`.queue`), the worker thread that owns the engine
(:mod:`.worker`), the SQLite journal and clip library (:mod:`.journal`) and the delivery of
finished files into the output folder (:mod:`.delivery`)."""
