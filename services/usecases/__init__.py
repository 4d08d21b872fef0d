"""The use cases the HTTP layer calls: log in (and out), bind the profile,
readiness. They combine the WeChat adapter, the stores and the crypto."""
