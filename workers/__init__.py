"""The engine: settings, database, relay client, storage and services. The only I/O below api/."""
