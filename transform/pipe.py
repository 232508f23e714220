"""Length-prefixed pickles over a pipe: how Sentinel talks to its own child processes.

Only between a parent and the ``python -m …`` child it started (never a network, never
untrusted data: unpickling runs code).
"""

from __future__ import annotations

import pickle
import struct
from typing import IO, Any

_LENGTH = struct.Struct("<Q")


def send_pickled(pipe: IO[bytes], obj: object) -> None:
    """Write ``obj`` as one length-prefixed pickle and flush."""
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    pipe.write(_LENGTH.pack(len(data)))
    pipe.write(data)
    pipe.flush()


def receive_pickled(pipe: IO[bytes]) -> Any:
    """Read one length-prefixed pickle; ``EOFError`` when the other side closed first."""
    head = pipe.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        raise EOFError("the other process closed the pipe")
    (size,) = _LENGTH.unpack(head)
    return pickle.loads(pipe.read(size))
