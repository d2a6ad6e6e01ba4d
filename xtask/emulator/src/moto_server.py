"""Starts moto's server with DynamoDB made atomic, as the real service is,
SQS encryption and redrive policies reported as AWS reports them, SQS event
source mappings kept on the alias and their consumers left to the local
runtime, and Secrets Manager rotation left to the local runtime.

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
import json
import sys
import threading
import time

from moto.awslambda import utils as awslambda_utils
from moto.awslambda.models import LambdaBackend
from moto.dynamodb.models import DynamoDBBackend
from moto.secretsmanager.models import SecretsManagerBackend
from moto.server import main
from moto.sqs.models import Queue, sqs_backends

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
#
# SQS, redrive policies. A dead-letter queue's RedriveAllowPolicy (which source
# queues may move messages into it): AWS returns it from GetQueueAttributes once
# it is set. moto 5.2.5 stores it (every attribute CreateQueue or
# SetQueueAttributes gets) but never returns it, so the provider waits for it to
# read back until the apply times out (3 min) on every declared queue's
# dead-letter queue. And a queue's RedrivePolicy: AWS returns it as compact
# JSON, moto with spaces after ':' and ',', which every plan after the apply
# would show as a change.
_queue_attributes = Queue.attributes.fget


@functools.wraps(_queue_attributes)
def _attributes_as_aws_reports_them(self):
    result = _queue_attributes(self)
    if self.kms_master_key_id and "SqsManagedSseEnabled" in result:
        result["SqsManagedSseEnabled"] = "false"
    redrive_allow_policy = getattr(self, "redrive_allow_policy", None)
    if redrive_allow_policy:
        result["RedriveAllowPolicy"] = redrive_allow_policy
    if self.redrive_policy:
        result["RedrivePolicy"] = json.dumps(self.redrive_policy, separators=(",", ":"))
    return result


Queue.attributes = property(_attributes_as_aws_reports_them)


# Lambda, event source mappings from SQS. Two AWS behaviours:
#
# 1. A mapping created for a function's alias (`function:<name>:live`) keeps
#    that ARN as its FunctionArn, so Lambda invokes whatever version the alias
#    points at. moto 5.2.5 stores the version the alias pointed at when the
#    mapping was made (`function:<name>:1`), so every plan after the apply
#    would move the mapping back to the alias.
# 2. Lambda polls the queue and invokes the function in its own runtime. moto
#    5.2.5 instead receives every message the moment it is sent and invokes
#    its own Lambda backend, which needs Docker (not available here): each
#    send would count a receive of the message and leave it invisible, until
#    the redrive policy moved it to the dead-letter queue unhandled. Here the
#    consumer runs in the local runtime (the local API server polls the queue
#    as Lambda does), so the mapping is recorded and reported but moto never
#    delivers messages itself.
_create_event_source_mapping = LambdaBackend.create_event_source_mapping


@functools.wraps(_create_event_source_mapping)
def _mapping_as_aws_keeps_it(self, spec):
    requested = spec.get("FunctionName", "")
    mapping = _create_event_source_mapping(self, spec)
    for queue in sqs_backends[self.account_id][self.region_name].queues.values():
        if queue.lambda_event_source_mappings.get(mapping.function_arn) is mapping:
            del queue.lambda_event_source_mappings[mapping.function_arn]
    if requested.startswith("arn:") and requested.count(":") == 7:
        mapping.function_arn = requested
    return mapping


LambdaBackend.create_event_source_mapping = _mapping_as_aws_keeps_it


# Secrets Manager, rotation. Two AWS behaviours the rotation function
# (functions/secrets-rotation) and the readers rely on:
#
# 1. RotateSecret with a rotation function records the rotation (rules, the
#    function, rotation enabled) and the token's version staged AWSPENDING, then
#    invokes the function once per step. moto 5.2.5 invokes through its own
#    Lambda backend, which needs Docker (not available here), and afterwards
#    makes the token's version the default one whatever the steps did. Here the
#    rotation function runs in the local runtime instead (`cargo xtask secret
#    rotate` drives the four steps through it; the tests call its handler), so
#    RotateSecret stops where AWS would invoke the function: everything before
#    the invocation is moto's own code, and AWSCURRENT stays where it is until
#    the function's finishSecret moves it, as on AWS. It answers the new
#    version's id, as AWS does.
# 2. UpdateSecretVersionStage moving AWSCURRENT makes that version the one
#    GetSecretValue returns without a stage, as on AWS. moto 5.2.5 moves the
#    label but keeps returning the old version's value (it reads a separate
#    "default version" that only PutSecretValue and RotateSecret move), so a
#    finished rotation would never reach the readers.
class _StepsRunElsewhere(Exception):
    """Raised where moto would invoke the rotation function."""


class _RotationFunctionElsewhere:
    """What RotateSecret sees as the Lambda backend: the function is not moto's
    to look up or run."""

    def get_function(self, *args, **kwargs):
        return None

    def invoke(self, *args, **kwargs):
        raise _StepsRunElsewhere()


_ROTATING = threading.local()
_lambda_backend = awslambda_utils.get_backend


@functools.wraps(_lambda_backend)
def _lambda_backend_outside_rotation(account_id, region):
    if getattr(_ROTATING, "active", False):
        return _RotationFunctionElsewhere()
    return _lambda_backend(account_id, region)


awslambda_utils.get_backend = _lambda_backend_outside_rotation
_rotate_secret = SecretsManagerBackend.rotate_secret


@functools.wraps(_rotate_secret)
def _rotate_secret_leaving_the_steps(
    self,
    secret_id,
    client_request_token=None,
    rotation_lambda_arn=None,
    rotation_rules=None,
    rotate_immediately=True,
):
    # A call that names no function rotates with the one configured before, as on
    # AWS (`cargo xtask secret rotate`); moto forgets it and would then make the
    # empty pending version current.
    if not rotation_lambda_arn and self._is_valid_identifier(secret_id):
        rotation_lambda_arn = self.secrets[secret_id].rotation_lambda_arn or None
    _ROTATING.active = True
    try:
        return _rotate_secret(
            self,
            secret_id,
            client_request_token,
            rotation_lambda_arn,
            rotation_rules,
            rotate_immediately,
        )
    except (_StepsRunElsewhere, UnboundLocalError) as stopped:
        secret = self.secrets[secret_id]
        # moto 5.2.5 names the new version only for a secret that has one already, and
        # fails on its unset id where it would invoke the function for an empty secret
        # (Terraform turning rotation on before the first value): the rotation is
        # recorded by then, as on AWS, so that failure means the same as the stop.
        if isinstance(stopped, UnboundLocalError) and secret.versions:
            raise
        secret.last_rotation_date = int(time.time())
        # The new version's id, as AWS answers (moto answers the current one's);
        # none when the secret has no value yet (Terraform turning rotation on).
        pending = next(
            (
                version_id
                for version_id, version in secret.versions.items()
                if "AWSPENDING" in version["version_stages"]
            ),
            None,
        )
        return secret.to_short_dict(version_id=pending)
    finally:
        _ROTATING.active = False


SecretsManagerBackend.rotate_secret = _rotate_secret_leaving_the_steps
_update_stage = SecretsManagerBackend.update_secret_version_stage


@functools.wraps(_update_stage)
def _update_stage_moving_the_default(
    self, secret_id, version_stage, remove_from_version_id, move_to_version_id
):
    result = _update_stage(
        self, secret_id, version_stage, remove_from_version_id, move_to_version_id
    )
    if version_stage == "AWSCURRENT" and move_to_version_id:
        self.secrets[secret_id].set_default_version_id(move_to_version_id)
    return result


SecretsManagerBackend.update_secret_version_stage = _update_stage_moving_the_default


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
