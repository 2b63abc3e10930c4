"""A blocking SQS long poll must not stall the rest of the API (the catalog service long-polls)."""

from __future__ import annotations

import threading
import time

import boto3

from gameday.controlplane import ControlPlane


def test_describe_answers_while_a_receive_message_long_polls() -> None:
    with ControlPlane() as cp:
        kw = {"region_name": "eu-south-1", "endpoint_url": cp.url, "aws_access_key_id": "t",
              "aws_secret_access_key": "t"}
        sqs = boto3.client("sqs", **kw)
        ec2 = boto3.client("ec2", **kw)
        ec2.describe_regions()
        queue = sqs.create_queue(QueueName="long-poll")["QueueUrl"]
        wait_s = 4
        poller = threading.Thread(target=lambda: sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=wait_s))
        poller.start()
        time.sleep(0.3)
        t0 = time.monotonic()
        ec2.describe_regions()
        took = time.monotonic() - t0
        poller.join(timeout=wait_s + 5)
        assert took < wait_s / 2, f"describe_regions waited {took:.2f} s behind a {wait_s} s long poll"
