"""Starts moto's server with DynamoDB made atomic, as the real service is,
and SQS encryption reported as AWS reports it.

moto 5.2.5 serves requests on threads but its DynamoDB backend takes no lock:
TransactWriteItems "rolls back" by restoring a copy of the table taken when it
started, so two concurrent transactions can resurrect or wipe each other's
items. The service relies on transactions for e-mail uniqueness, and its tests
register 32 users with one e-mail at once, so the emulator must be atomic.
One re-entrant lock around every public DynamoDB backend method gives that;
the other services keep moto's threading.

Each further patch below restores one AWS behaviour moto gets wrong and says
what real AWS does and why Terraform needs it.

Not a moto bug, so not patched: the hashicorp/aws 5.100 provider sleeps after
some creates however fast the API answers. These are client-side minimums
(polls and delays in the provider), and moto already answers every poll with
the expected value: aws_s3_bucket_lifecycle_configuration 55 s (10 s delay,
then 10 matching reads 5 s apart), aws_sqs_queue 25 s (6 matching reads 5 s
apart), aws_kms_key 12 s (5 matching reads 1 s apart for each of rotation,
policy and tags), aws_lambda_function 5 s (5 s delay before the first state
read). Real AWS takes at least as long.
"""

import functools
import sys
import threading

from moto.dynamodb.models import DynamoDBBackend
from moto.server import main
from moto.sqs.models import Queue

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


# SQS: a queue encrypted with a KMS key (SSE-KMS) reports
# SqsManagedSseEnabled "false". A queue has only one kind of server-side
# encryption, and AWS returns "false" here once KmsMasterKeyId is set (the
# provider's own acceptance tests check that sqs_managed_sse_enabled is false
# for such a queue). moto 5.2.5 defaults SqsManagedSseEnabled to true and never
# clears it, so GetQueueAttributes claimed both kinds at once, and Terraform
# stored sqs_managed_sse_enabled = true next to kms_master_key_id, a state real
# AWS never produces. This patch only makes the attribute right; it does not
# change how long the apply takes (see the module docstring).
_queue_attributes = Queue.attributes.fget


@functools.wraps(_queue_attributes)
def _attributes_with_one_encryption(self):
    result = _queue_attributes(self)
    if self.kms_master_key_id and "SqsManagedSseEnabled" in result:
        result["SqsManagedSseEnabled"] = "false"
    return result


Queue.attributes = property(_attributes_with_one_encryption)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
