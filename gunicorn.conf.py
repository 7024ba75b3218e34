"""Gunicorn settings for the Procfile's web process (override any of them by env var).

One gevent worker holds every open reply stream as a cheap greenlet. Add workers
(WEB_CONCURRENCY) or instances to use more cores: a stream served by another process
than the one generating its reply follows it through the reply bus (webapp/replies/bus/), so it
streams as smoothly there.
"""

import importlib.util
import os
from pathlib import Path

from gunicorn.glogging import Logger
from gunicorn.workers.base_async import AsyncWorker


def _load_logmask():
    """webapp/web/logmask.py, loaded by path: importing the webapp package here, in the
    master, would create its locks before the gevent worker patches threading."""
    spec = importlib.util.spec_from_file_location(
        "regolo_logmask", Path(__file__).resolve().parent / "webapp" / "web" / "logmask.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


logmask = _load_logmask()


class MaskingLogger(Logger):
    """Gunicorn's logger, with share tokens and conversation ids shortened in access lines."""

    def atoms(self, resp, req, environ, request_time):
        return logmask.mask_values(super().atoms(resp, req, environ, request_time))


class GeventWorker(AsyncWorker):
    """Gunicorn's gevent worker, with gevent imported by the worker process only.

    Gunicorn creates each worker object in the master, then forks. Naming its gevent worker
    ("gevent") would import gevent into the master, about 6 MB that it never runs; this
    stand-in becomes gunicorn's GeventWorker in the forked process, before anything else.
    """

    def init_process(self):
        from gunicorn.workers.ggevent import GeventWorker as Worker

        self.__class__ = Worker
        self.init_process()


bind = f"0.0.0.0:{os.environ.get('PORT', '5000')}"
worker_class = GeventWorker
workers = int(os.environ.get("WEB_CONCURRENCY", "1"))
worker_connections = int(os.environ.get("WORKER_CONNECTIONS", "4000"))
timeout = 60
graceful_timeout = 30
keepalive = 5
# Every line (gunicorn's, the access log's, the app's) goes to stdout, where a PaaS
# collects it; ACCESS_LOG=0 silences the per-request lines.
access_level = "INFO" if os.environ.get("ACCESS_LOG", "1") == "1" else "WARNING"
logconfig_dict = {
    "root": {"level": "INFO", "handlers": ["console"]},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": [], "propagate": True},
        "gunicorn.access": {"level": access_level, "handlers": [], "propagate": True},
    },
}
logger_class = MaskingLogger
# No runtime control socket: it lives at one path per user, so several instances on one
# host (tests, benchmarks, a blue-green deploy) would share it.
control_socket_disable = True


def worker_exit(server, worker):
    """Save the replies a stopping worker was writing as interrupted, keeping their text.

    A worker whose app never loaded (a refused setting) has none.
    """
    if not worker.booted:
        return
    worker.wsgi.extensions["generation"].interrupt_all()


def post_worker_init(worker):
    """Listen on the reply bus from the start; mark replies left by a worker that was
    killed as interrupted, even when unwatched."""
    relay = worker.wsgi.extensions["relay"]
    relay.listen()
    relay.watch_for_dead_replies()
