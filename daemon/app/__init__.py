"""The app: :class:`~daemon.app.daemon.Daemon` wires config, journal, engine, worker, live
playback and the OSC front-end, starts them in order and stops them in reverse."""
