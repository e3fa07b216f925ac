"""MyData kernel: configuration, database, key store, errors, clock, i18n and the web shell."""
