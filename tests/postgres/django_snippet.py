"""The Django recipe of docs/transactional-enqueue.md, run in its own process by the tests.

Usage: python -m tests.postgres.django_snippet DBNAME PORT -> prints "<kept id> <rolled back id>".
"""

from __future__ import annotations

import sys
import tempfile

import django
from django.conf import settings

from conveyor.app import Conveyor
from conveyor.backend.postgres.transactional import enqueue


def main(dbname: str, port: str) -> None:
    settings.configure(
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.postgresql",  # psycopg 3 is used when installed
                "NAME": dbname,
                "USER": "postgres",
                "HOST": "127.0.0.1",
                "PORT": port,
            }
        },
        INSTALLED_APPS=[],
        USE_TZ=True,
    )
    django.setup()
    from django.db import connection, transaction

    app = Conveyor(f"postgresql://postgres@127.0.0.1:{port}/{dbname}", result_store=tempfile.mkdtemp())

    @app.task(name="shop.receipt", queue="mail")
    def receipt(order_id: int) -> int:
        return order_id

    with transaction.atomic():
        with connection.cursor() as cur:
            cur.execute("INSERT INTO orders VALUES (21)")
        kept = enqueue(connection.connection, app, "shop.receipt", {"order_id": 21})

    rolled_back = ""
    try:
        with transaction.atomic():
            with connection.cursor() as cur:
                cur.execute("INSERT INTO orders VALUES (22)")
            rolled_back = enqueue(connection.connection, app, "shop.receipt", {"order_id": 22})
            raise RuntimeError("roll back")
    except RuntimeError:
        pass
    print(kept, rolled_back)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
