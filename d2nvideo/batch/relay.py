"""Warnings of ``convert --jobs`` workers, logged in the parent process.

A worker that wrote its warnings to the terminal itself put them on the progress bar's line
(the parent's log handler prints above the bar; a worker knows nothing of it), and a caller of
the library never saw them in its own logging. Each worker sends every record's level and
message down one pipe, one message a record, short enough that a pipe writes it whole
(``PIPE_BUF``): a worker that dies mid-send cannot garble another's. A thread of the parent logs
them under the worker's logger names.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Any

MESSAGE_BYTES = 3000  # under PIPE_BUF (4096 on Linux) with the header


class ToParent(logging.Handler):
    """A worker's handler: each record down ``conn`` as ``level\\tlogger\\tmessage``."""

    def __init__(self, conn: Any) -> None:
        super().__init__(logging.WARNING)
        self.conn = conn
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:  # the message with its traceback, if any ("Exception in initializer:" said why)
            data = f"{record.levelno}\t{record.name}\t{self.format(record)}".encode(
                "utf-8", "replace"
            )
        except Exception:  # a bad format argument: logging's own report, not the task's error
            self.handleError(record)
            return
        if len(data) > MESSAGE_BYTES:  # a traceback's last lines say what went wrong
            data = data[: MESSAGE_BYTES // 3] + b"\n...\n" + data[-(MESSAGE_BYTES // 2) :]
        with contextlib.suppress(OSError, ValueError):  # the parent is gone or stopping
            self.conn.send_bytes(data)


def install(conn: Any) -> None:
    """In a worker: every warning goes to the parent through ``conn``."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(ToParent(conn))
    root.setLevel(logging.WARNING)


class Relay:
    """In the parent: a pipe whose write end goes to the workers, and a thread that logs what
    comes out of it until :meth:`close`."""

    def __init__(self, context: Any) -> None:
        self.reader, self.writer = context.Pipe(duplex=False)
        self.thread = threading.Thread(target=self._run, name="d2nvideo-worker-logs", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            try:
                data = self.reader.recv_bytes()
            except (EOFError, OSError):
                return
            if not data:  # close()'s end mark
                return
            level, name, message = data.decode("utf-8", "replace").split("\t", 2)
            logging.getLogger(name).log(int(level), "%s", message)

    def close(self) -> None:
        """Log what the workers sent before now, then stop."""
        with contextlib.suppress(OSError):
            self.writer.send_bytes(b"")
        self.thread.join(timeout=5)
        self.writer.close()
        if not self.thread.is_alive():
            self.reader.close()
