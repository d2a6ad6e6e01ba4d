"""Starts moto's server with DynamoDB made atomic, as the real service is.

moto 5.2.5 serves requests on threads but its DynamoDB backend takes no lock:
TransactWriteItems "rolls back" by restoring a copy of the table taken when it
started, so two concurrent transactions can resurrect or wipe each other's
items. The service relies on transactions for e-mail uniqueness, and its tests
register 32 users with one e-mail at once, so the emulator must be atomic.
One re-entrant lock around every public DynamoDB backend method gives that;
the other services keep moto's threading.
"""

import functools
import sys
import threading

from moto.dynamodb.models import DynamoDBBackend
from moto.server import main

_LOCK = threading.RLock()


def _serialised(method):
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        with _LOCK:
            return method(*args, **kwargs)

    return wrapper


for _name, _member in list(vars(DynamoDBBackend).items()):
    if not _name.startswith("_") and callable(_member):
        setattr(DynamoDBBackend, _name, _serialised(_member))

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
