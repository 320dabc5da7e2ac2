"""The wire: the OSC contract as data (:mod:`.contract`), incoming messages parsed into typed
requests (:mod:`.requests`) and the UDP transport that receives them and sends replies
(:mod:`.osc`). Importing this package imports nothing else: clients read :mod:`.contract` alone,
without torch or threads."""
