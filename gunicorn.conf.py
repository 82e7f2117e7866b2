# gunicorn settings for `make run`, the Procfile and the benchmarks. Each can be overridden on
# the command line (the Procfile binds 0.0.0.0:$PORT that way).
import os

from incrementific.env import envbool, envint, exit_on_bad_setting, load_settings

# A value nobody can read stops gunicorn here, in one line, before it binds or forks; so does one
# of the project's own settings, which every worker would otherwise fail on with a traceback.
with exit_on_bad_setting():
    bind = f"127.0.0.1:{envint('PORT', 8000, minimum=1)}"
    # Redis and SQL answer in well under a millisecond here, so plain sync workers keep both
    # cores busy; WEB_CONCURRENCY sets how many.
    workers = envint("WEB_CONCURRENCY", 3, minimum=1)
    threads = envint("GUNICORN_THREADS", 1, minimum=1)
    accesslog = "-" if envbool("ACCESS_LOG", True) else None
load_settings()

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
