"""Configuration names and defaults, resolved at the edge: flag > DWSCHED_* env > default.

click resolves flags and environment variables (each option's --help names its variable);
this module owns the names and the defaults so that every command agrees on them.
"""

from __future__ import annotations

DATABASE_URL_ENV = "DWSCHED_DATABASE_URL"
DEFAULT_DATABASE_URL = "sqlite:///dwsched.db"
DEMO_DATABASE_URL = "sqlite:///dwsched-demo.db"
DEMO_QUIET_ENV = "DWSCHED_DEMO_QUIET"
HOST_ENV = "DWSCHED_HOST"
DEFAULT_HOST = "127.0.0.1"
PORT_ENV = "DWSCHED_PORT"
DEFAULT_PORT = 8765
TIMEZONE_ENV = "DWSCHED_DEFAULT_TIMEZONE"
DEFAULT_TIMEZONE = "Asia/Shanghai"
LOG_LEVEL_ENV = "DWSCHED_LOG_LEVEL"
WORKERS_ENV = "DWSCHED_WORKERS"
ENGINE_ENV = "DWSCHED_ENGINE"
SLOTS_ENV = "DWSCHED_SLOTS"
GROUP_SLOTS_ENV = "DWSCHED_GROUP_SLOTS"
SERVED_GROUPS_ENV = "DWSCHED_SERVED_GROUPS"
THROTTLE_ENV = "DWSCHED_THROTTLE"
# Requests a second per AccessKey, RATE/BURST per action class (Get*/List* read, others write).
DEFAULT_THROTTLE = "read=200/400,write=20/40"
ENDPOINT_ENV = "DWSCHED_ENDPOINT"
DEFAULT_ENDPOINT = "127.0.0.1:8765"
ACCESS_KEY_ID_ENV = "ALIBABA_CLOUD_ACCESS_KEY_ID"
ACCESS_KEY_SECRET_ENV = "ALIBABA_CLOUD_ACCESS_KEY_SECRET"
# The server key that seals AccessKeySecrets: the key itself (wins), else its file, by
# default beside a SQLite database (`<file>.key`), or in the user's config directory.
SECRET_KEY_ENV = "DWSCHED_SECRET_KEY"
SECRET_KEY_FILE_ENV = "DWSCHED_SECRET_KEY_FILE"
DEFAULT_SECRET_KEY_DIR = "~/.config/dwsched"
# Transport: whom to believe about a request's origin, and how long and how many clients
# may hold the server's connections (docs/deployment.md).
FORWARDED_ALLOW_IPS_ENV = "DWSCHED_FORWARDED_ALLOW_IPS"
DEFAULT_FORWARDED_ALLOW_IPS = ""  # trust nobody's X-Forwarded-For / X-Forwarded-Proto
MAX_CONNECTIONS_ENV = "DWSCHED_MAX_CONNECTIONS"
DEFAULT_MAX_CONNECTIONS = 10_000  # per process, and always below its file-descriptor limit
HEADER_TIMEOUT_ENV = "DWSCHED_HEADER_TIMEOUT"
DEFAULT_HEADER_TIMEOUT = 10.0  # seconds for a request's line and headers to arrive
BODY_TIMEOUT_ENV = "DWSCHED_BODY_TIMEOUT"
DEFAULT_BODY_TIMEOUT = 30.0  # seconds for a request's whole body to arrive
KEEP_ALIVE_TIMEOUT_ENV = "DWSCHED_KEEP_ALIVE_TIMEOUT"
DEFAULT_KEEP_ALIVE_TIMEOUT = 5  # seconds an idle keep-alive connection stays open
# Tasks: the OS user they run as (default dwsched-task when dwsched runs as root, else its own
# user; `same`: its own user) and the server variables passed on to them by name.
TASK_USER_ENV = "DWSCHED_TASK_USER"
TASK_ENV_ENV = "DWSCHED_TASK_ENV"
TASK_SANDBOX_ENV = "DWSCHED_TASK_SANDBOX"
# Monitoring (docs/metrics.md): the log format; where /metrics is served (empty: on the API's
# port; HOST:PORT: a listener of its own) and to whom (networks, and a bearer token).
LOG_FORMAT_ENV = "DWSCHED_LOG_FORMAT"
METRICS_LISTEN_ENV = "DWSCHED_METRICS_LISTEN"
METRICS_ALLOW_ENV = "DWSCHED_METRICS_ALLOW"
DEFAULT_METRICS_ALLOW = "127.0.0.0/8,::1/128"  # loopback only
METRICS_TOKEN_ENV = "DWSCHED_METRICS_TOKEN"
# Alerts (docs/alerts.md "Configuration"): the console address notices link to, the SMTP
# server for Mail (its password from the environment only), the outbound guard's ranges.
CONSOLE_URL_ENV = "DWSCHED_CONSOLE_URL"
SMTP_ENV = "DWSCHED_SMTP"
SMTP_FROM_ENV = "DWSCHED_SMTP_FROM"
SMTP_USER_ENV = "DWSCHED_SMTP_USER"
SMTP_PASSWORD_ENV = "DWSCHED_SMTP_PASSWORD"
SMTP_TLS_ENV = "DWSCHED_SMTP_TLS"
ALERT_DENY_ENV = "DWSCHED_ALERT_DENY"
ALERT_ALLOW_ENV = "DWSCHED_ALERT_ALLOW"
