"""Shared test fixtures: a real S3 endpoint (moto server on 127.0.0.1) and the test device."""

from __future__ import annotations

import os
import socket

import pytest

S3_BUCKET = "raypi-test"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def s3_server():
    """Start a moto S3 server on 127.0.0.1 with bucket ``raypi-test``; yield its endpoint URL.

    Sets ``RAYPI_S3_ENDPOINT``, ``AWS_ENDPOINT_URL`` and fake credentials in ``os.environ`` for
    the session. Ray workers inherit the environment of the driver only when Ray starts, so a
    module that needs S3 inside Ray tasks requests this fixture before starting Ray.
    """
    import boto3
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    env = {
        "RAYPI_S3_ENDPOINT": endpoint,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(
        Bucket=S3_BUCKET
    )
    yield endpoint
    server.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def device() -> str:
    """Return the torch device for tests: ``$RAYPI_TEST_DEVICE`` or ``cpu``."""
    return os.environ.get("RAYPI_TEST_DEVICE", "cpu")


def pytest_collection_modifyitems(config, items):
    """Skip ``gpu`` tests cleanly without CUDA; keep each module on one xdist worker.

    ``make test`` runs the suite on two pytest-xdist workers with ``--dist loadgroup``. Every
    module is one group, so its module-scoped Ray cluster, study and fixtures are built once.
    Modules marked ``fixed_ports`` start Ray heads on fixed ports (the fake autoscaler's GCS on
    6379, a dashboard for Ray Jobs) or expect no other Ray on the machine (``--address auto``
    finds any running cluster): ``make test`` runs them afterwards, serially, by themselves.
    """
    import torch

    no_cuda = not torch.cuda.is_available()
    skip = pytest.mark.skip(reason="needs a CUDA device; none found")
    for item in items:
        if no_cuda and "gpu" in item.keywords:
            item.add_marker(skip)
        group = "fixed-ports" if "fixed_ports" in item.keywords else item.nodeid.split("::")[0]
        item.add_marker(pytest.mark.xdist_group(group))
