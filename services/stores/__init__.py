"""Where state lives: sessions, session_keys, login codes, the access token
and rate-limit counters in Redis; users in SQL. Each store takes its client
in its constructor and turns a failing backend into a domain error."""
