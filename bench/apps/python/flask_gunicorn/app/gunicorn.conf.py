"""gunicorn settings: threaded workers, logs to stderr. The bind address comes from the command line."""
worker_class = "gthread"
workers = 2
threads = 4
timeout = 30
graceful_timeout = 5
accesslog = "-"
errorlog = "-"
loglevel = "info"
