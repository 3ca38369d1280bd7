"""Real servers for fault tests, one module per job: ``processes`` (ports, stopping, manage.py,
polling), ``gunicorn`` (a server on a free port), ``raw_http`` (raw-socket HTTP), ``clients``
(tenants, bodies, bursts), ``ledger`` (the database's view of the quota), ``postgres`` (a
private PostgreSQL cluster), ``entrypoint`` (a server started through bin/entrypoint)."""
