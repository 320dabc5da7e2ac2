"""Clients of the daemon: a Python client (``clients.client``: the threaded face and every public
name; ``clients.aio``: the asyncio face; one core under both in ``clients.core``,
``clients.commands`` and ``clients.messages``) and the ``musicldm-send`` CLI (python-osc only, no
torch), and example Max/MSP and Pure Data patches under ``max/`` and ``pd/``."""
