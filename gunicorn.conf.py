# gunicorn settings for `make run`, the Procfile and the benchmarks. Each can be overridden on
# the command line (the Procfile binds 0.0.0.0:$PORT that way).
import os

from incrementific.env import envbool, envchoice, envint, exit_on_bad_setting, load_settings

# A value nobody can read stops gunicorn here, in one line, before it binds or forks; so does one
# of the project's own settings, which every worker would otherwise fail on with a traceback.
with exit_on_bad_setting():
    bind = f"127.0.0.1:{envint('PORT', 8000, minimum=1)}"
    # Redis and SQL answer in well under a millisecond here, so plain sync workers keep both
    # cores busy; WEB_CONCURRENCY sets how many.
    workers = envint("WEB_CONCURRENCY", 3, minimum=1)
    threads = envint("GUNICORN_THREADS", 1, minimum=1)
    accesslog = "-" if envbool("ACCESS_LOG", True) else None
    log_format = envchoice("LOG_FORMAT", "text", ("text", "json"))
    # prometheus_client's multiprocess mode (incrementific/metrics.py) reads this when imported:
    # set before any worker imports it, and emptied when the server starts (on_starting).
    _data_dir = os.path.abspath(os.environ.get("DATA_DIR", "./var"))
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", os.path.join(_data_dir, "prometheus"))
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)  # any process that inherits it writes there
load_settings()

# gunicorn's combined format, with the time taken and the request's id (X-Request-ID, which the
# app sets on every answer: incrementific/wsgi.py, application()).
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(D)sus [%({x-request-id}o)s]'
if log_format == "json":
    # gunicorn's own lines as JSON objects too (incrementific/logs.py splits an access line into
    # method, path, status, duration and request id).
    _stream = {"class": "logging.StreamHandler", "formatter": "json"}
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "root": {"level": "INFO", "handlers": []},
        "formatters": {"json": {"()": "incrementific.logs.JsonFormatter"}},
        "handlers": {
            "error_console": {**_stream, "stream": "ext://sys.stderr"},
            "access_console": {**_stream, "stream": "ext://sys.stdout"},
        },
        "loggers": {
            "gunicorn.error": {"handlers": ["error_console"], "level": "INFO", "propagate": False},
            "gunicorn.access": {"handlers": ["access_console"] if accesslog else [], "propagate": False},
        },
    }

# A request line (method, path and query) up to gunicorn's most, 8190 bytes, what a proxy in front
# passes by default (nginx's large_client_header_buffers): the app answers it, in JSON. A longer
# one is gunicorn's own 414, an HTML page; the schema documents it (incrementific/schema.py).
limit_request_line = 8190
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "sync")
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# gunicorn 27's control socket defaults to one path per user, which a second instance on the
# same machine (make soak, make bench, a test) would fight over. Nothing here uses it.
control_socket_disable = True
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")


def post_worker_init(worker):
    # Everything loaded so far (Django, the URLconf, the app) lives as long as the worker:
    # freezing it keeps the cyclic GC from walking it again on every full collection.
    import gc

    gc.freeze()


def on_starting(server):
    # Files a previous server left would be summed into this one's numbers.
    import shutil

    folder = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder, exist_ok=True)


def worker_exit(server, worker):
    from incrementific import metrics

    metrics.flush()  # the last second's counts, before the worker's files are marked dead


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
