"""/musicldm/queued reaches a reply target before /musicldm/started (issue 10, item 6).

The race: the OSC thread puts a job on the queue and then sends ``/queued``; the worker thread
may take the job and send ``/started`` in between. Here the worker's side of the race is made
certain: the queue's ``put`` hands the job to a thread that sends ``/started`` at once, and waits
a little for it. With the reply order held across "queue, then announce", that thread's send is
held back until ``/queued`` is out, whatever the scheduling; without it, ``/started`` goes first.
Over real UDP, with the tiny model.
"""

from __future__ import annotations

import socket
import threading
from typing import Any

from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder

from tests.support import running_daemon


def _send(sock: socket.socket, port: int, address: str, *args: Any) -> None:
    builder = OscMessageBuilder(address)
    for arg in args:
        builder.add_arg(arg)
    sock.sendto(builder.build().dgram, ("127.0.0.1", port))


def test_queued_reaches_the_reply_target_before_started(tiny_engine, tmp_path) -> None:
    target = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    target.bind(("127.0.0.1", 0))
    target.settimeout(30)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender.bind(("127.0.0.1", 0))
    try:
        with running_daemon(tiny_engine, tmp_path, reply_to=(target.getsockname(),)) as daemon:
            put = daemon.queue.put

            def put_then_race(job: Any, **kwargs: Any) -> int:
                position = put(job, **kwargs)
                rival = threading.Thread(target=daemon.replies.started, args=(job,))
                rival.start()
                rival.join(0.3)  # as if the worker took the job this instant
                return position

            daemon.queue.put = put_then_race  # type: ignore[method-assign]
            _send(sender, daemon.address[1], "/musicldm/generate", "order", "id", 77, "steps", 1)
            seen: list[str] = []
            while "/musicldm/done" not in seen:
                message = OscMessage(target.recv(65536))
                if message.params and message.params[0] == 77:
                    seen.append(message.address)
        assert seen.index("/musicldm/queued") < seen.index("/musicldm/started")
    finally:
        target.close()
        sender.close()
