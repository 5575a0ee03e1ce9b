"""Reach a Ray cluster before anything starts: an address nobody answers at is bad input."""

from __future__ import annotations

import os
import socket

CONNECT_SECONDS = 5.0
"""How long the probe waits for the cluster's port to accept a connection."""

RAY_CLIENT_PORT = 10001
"""The port ``ray://host`` means when it names none (Ray client server's default)."""


class UnreachableCluster(ValueError):
    """``runtime.address`` names no Ray cluster that answers; the message is one line."""


def split_address(address: str) -> tuple[str, int]:
    """Host and port of ``host:port``, ``[v6]:port`` or ``ray://host[:port]``.

    Raises UnreachableCluster (one line) when ``address`` has neither form.
    """
    rest = address.removeprefix("ray://")
    host, sep, port = rest.rpartition(":")
    if not sep or "]" in port:
        host, port = rest, str(RAY_CLIENT_PORT) if address.startswith("ray://") else ""
    host = host.strip("[]")
    if not host or not port.isdigit():
        raise UnreachableCluster(
            f"runtime.address={address!r}: allowed: null (start a local Ray), auto, host:port "
            "(a cluster's GCS address, as `ray start --head` prints it) or ray://host:port"
        )
    return host, int(port)


def check_ray_address(address: str | None, timeout: float = CONNECT_SECONDS) -> None:
    """Refuse, within ``timeout`` seconds, a Ray address at which nothing accepts connections.

    ``ray.init`` would otherwise retry for minutes, printing connection warnings. ``null``
    starts a local Ray (nothing to reach); ``auto`` means the cluster Ray itself would find
    (``RAY_ADDRESS``, else the last one ``ray start`` started on this machine).
    """
    if address is None:
        return
    target = _auto_address() if address == "auto" else address
    if target is None:
        raise UnreachableCluster(
            "runtime.address='auto': no running Ray cluster found (RAY_ADDRESS is not set and "
            "`ray start` started none on this machine); allowed: a cluster's address, or null "
            "to start a local Ray"
        )
    if target == "auto":  # Ray's lookup was not available: Ray refuses at once if it finds none
        return
    host, port = split_address(target)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as err:
        reason = err.strerror or type(err).__name__
        if isinstance(err, TimeoutError | socket.timeout):
            reason = f"no answer in {timeout:g} s"
        shown = address if address == target else f"{address} (RAY_ADDRESS={target})"
        raise UnreachableCluster(
            f"runtime.address={shown!r}: no Ray cluster answers at {host}:{port} ({reason}); "
            "allowed: the address of a running cluster (`ray start --head` prints it), or null "
            "to start a local Ray"
        ) from None


def _auto_address() -> str | None:
    """The cluster address ``ray.init(address="auto")`` would use, or None when it finds none."""
    try:  # Ray's own lookup (private: where it moved, fall back to RAY_ADDRESS or Ray itself)
        from ray._private.services import get_ray_address_from_environment
    except ImportError:
        return os.environ.get("RAY_ADDRESS") or "auto"
    try:
        return get_ray_address_from_environment("auto", None)
    except Exception:  # a lookup that fails finds no cluster: ray.init would refuse as well
        return None
