"""``ioc kafka-cluster``: a local multi-broker and/or secured Kafka cluster (KRaft).

    ioc kafka-cluster up [--brokers 3] [--secure] [--port 19192]
    ioc kafka-cluster down | status

The cluster lives in ``$IOC_DATA_DIR/kafka-cluster`` (see ``ioc.infra.kafka_cluster``). With
``--secure`` it prints where ``client.env`` is: ``set -a; . <file>; set +a`` makes every
``ioc`` command talk to it as the super user ``admin``. The demo keeps using the single
plaintext broker of ``ioc kafka up``.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ioc.infra.settings import Settings


def add_cluster_parser(sub: Any) -> None:
    s = sub.add_parser("kafka-cluster", help="a local 3-broker and/or secured Kafka cluster")
    s.add_argument("action", choices=["up", "down", "status"])
    s.add_argument("--brokers", type=int, default=3)
    s.add_argument("--secure", action="store_true",
                   help="SASL_SSL (SCRAM-SHA-512) listeners, TLS, ACL authorizer")
    s.add_argument("--port", type=int, default=19192,
                   help="first port; node i uses port+2(i-1) and the next one")
    s.set_defaults(func=cmd_cluster)


def cmd_cluster(args: argparse.Namespace, settings: Settings) -> int:
    from ioc.infra.kafka_cluster import LocalKafkaCluster
    from ioc.infra.local_kafka import KafkaLauncherError

    directory = settings.data_dir / "kafka-cluster"
    options = {"brokers": args.brokers, "base_port": args.port, "secure": args.secure}
    if args.action != "up" and (directory / "cluster.json").is_file():
        options = json.loads((directory / "cluster.json").read_text())
    try:
        cluster = LocalKafkaCluster(directory, **options)
        if args.action == "up":
            cluster.up()
        elif args.action == "down":
            cluster.down()
    except KafkaLauncherError as exc:
        print(f"ioc kafka-cluster {args.action}: {exc}", file=sys.stderr)
        return 1
    running = cluster.running()
    mode = "SASL_SSL" if cluster.secure else "PLAINTEXT"
    print(f"kafka-cluster: {len(running)}/{cluster.brokers} nodes running  {mode}  "
          f"bootstrap={cluster.bootstrap}  data={cluster.dir}")
    if cluster.secure and running:
        print(f"client settings (admin): set -a; . {cluster.dir / 'client.env'}; set +a")
    return 0 if (running or args.action == "down") else 3
