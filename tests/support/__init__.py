"""What the tests share, in plugin modules that only the directories needing them load.

`settings` and `purity` are light (the root conftest loads them for every test); `factories`
builds domain values; `databases` (SQLAlchemy, PostgreSQL) and `server` (uvicorn, the official
SDK) are imported by the conftests of the directories that need a database or a live server,
never by tests/domain.
"""
