"""The servers behind the store as they describe themselves, for ``manage.py check``
(counters/checks.py)."""

from dataclasses import dataclass

import redis
from django.conf import settings

from incrementific.redis import REDIS_ERRORS, connection, unavailable


@dataclass(frozen=True)
class Server:
    """One server the counters depend on, as it describes itself (CONFIG GET, INFO)."""

    address: str
    role: str  # master | slave
    config: dict[str, str]


@dataclass(frozen=True)
class Shard:
    """A primary and its replicas: the whole store, but on a Cluster, where it is one of several."""

    primary: Server
    replicas: list[Server]
    slots: int = 16384  # how many of the Cluster's slots it serves


@dataclass(frozen=True)
class Report:
    """What manage.py check reports (counters/checks.py): the topology, and the servers in it."""

    topology: str  # single | sentinel | cluster
    shards: list[Shard]  # one but on a Cluster
    sentinels: int  # how many of REDIS_SENTINELS answered (0 elsewhere)
    sentinels_named: int  # how many REDIS_SENTINELS names
    master_name: str
    counter_ttls: list[tuple[str, int]]  # a sample of counter keys and their TTLs (-1: none)

    @property
    def primary(self) -> Server:
        return self.shards[0].primary

    @property
    def replicas(self) -> list[Server]:
        return self.shards[0].replicas


_CONFIG = ("appendonly", "appendfsync", "save", "maxmemory-policy", "min-replicas-to-write", "replica-read-only")


def _describe(client, address: str) -> Server:
    config = {}
    for name in _CONFIG:
        config.update(client.config_get(name))
    return Server(address, client.info("replication")["role"], config)


def inspect(ttl_sample: int) -> Report:
    """The servers behind the counters, their settings and a sample of counter TTLs. Raises
    CounterStoreUnavailable if a primary (or, under Sentinel, every Sentinel) cannot be asked."""
    try:
        client = connection.client()
        sample = [key for key, _ in zip(client.scan_iter(match="ctr:*", count=500), range(ttl_sample), strict=False)]
        pipe = client.pipeline(transaction=False)
        for key in sample:
            pipe.ttl(key)
        ttls = [(key.decode(), ttl) for key, ttl in zip(sample, pipe.execute(), strict=True)]
        if connection.topology() == "single":
            kwargs = client.connection_pool.connection_kwargs
            address = kwargs.get("path") or f"{kwargs.get('host')}:{kwargs.get('port')}"
            return Report("single", [Shard(_describe(client, address), [])], 0, 0, "", ttls)
        if connection.topology() == "cluster":
            return Report("cluster", _cluster_shards(client), 0, 0, "", ttls)
        sentinel = connection.sentinel()
        name = settings.REDIS_SENTINEL_MASTER
        host, port = sentinel.discover_master(name)
        answering = 0
        for each in sentinel.sentinels:
            try:
                each.ping()
                answering += 1
            except REDIS_ERRORS:
                pass
        options = connection.data_options()
        replicas = []
        for replica_host, replica_port in sentinel.discover_slaves(name):
            with redis.Redis(replica_host, replica_port, socket_timeout=settings.REDIS_TIMEOUT_SECONDS, **options) as r:
                replicas.append(_describe(r, f"{replica_host}:{replica_port}"))
        primary = _describe(client, f"{host}:{port}")
        return Report("sentinel", [Shard(primary, replicas)], answering, len(sentinel.sentinels), name, ttls)
    except REDIS_ERRORS as exc:
        raise unavailable(exc) from exc


def _cluster_shards(client) -> list[Shard]:
    """Every primary that serves slots, with its replicas, as CLUSTER NODES tells."""
    nodes = client.execute_command("CLUSTER NODES", target_nodes=client.get_random_node())
    by_id = {node["node_id"]: address.split("@")[0] for address, node in nodes.items()}
    shards = []
    for _, node in sorted(nodes.items()):
        flags = node["flags"].split(",")
        if "master" not in flags or not node["slots"] or "fail" in flags:
            continue
        replicas = [
            a.split("@")[0] for a, n in nodes.items() if n["master_id"] == node["node_id"] and "fail" not in n["flags"]
        ]
        slots = sum(int(r[-1]) - int(r[0]) + 1 for r in node["slots"])  # a lone slot is [n]
        shards.append(Shard(_describe_node(by_id[node["node_id"]]), [_describe_node(r) for r in replicas], slots))
    return shards


def _describe_node(address: str) -> Server:
    host, _, port = address.rpartition(":")
    options = connection.data_options()
    options.pop("db", None)
    with redis.Redis(host, int(port), socket_timeout=settings.REDIS_TIMEOUT_SECONDS, **options) as r:
        return _describe(r, address)
