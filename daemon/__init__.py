"""The musicldm-daemon process: OSC and MIDI front-ends, job queue, worker, playback, delivery.

It stands on :mod:`musicldm_core` and never the other way round.
"""

__version__ = "0.1.0"
