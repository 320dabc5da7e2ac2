"""Clients of the daemon: a Python client and the ``musicldm-send`` CLI (python-osc only, no
torch), and example Max/MSP and Pure Data patches under ``max/`` and ``pd/``."""
