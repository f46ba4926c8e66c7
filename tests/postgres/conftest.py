from tests.postgres.server import pg_private_url, pg_server

__all__ = ["pg_private_url", "pg_server"]
