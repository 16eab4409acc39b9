"""The production deployment files, checked offline (no Docker, no cluster, no network here):

- ``infra/compose/compose.yaml`` against the Compose specification's JSON schema (the copy that
  the ``check-jsonschema`` package ships), then the platform's own rules; the same for it
  merged with ``compose.cluster.yaml`` (ClickHouse 2 shards × 2 replicas + Keeper), whose
  nodes, macros, Keeper ensemble and cluster name must agree with
  ``infra/clickhouse/cluster/*.xml`` and the platform's ``IOC_CLICKHOUSE_CLUSTER``;
- ``infra/k8s/base`` (Kustomize, resolved here: resources and ConfigMap generators) against the
  Kubernetes API's JSON schemas for 1.33 in strict mode (the ``kubernetes-validate`` package
  ships them), then the platform's rules: pinned images, resource requests, probes, selectors
  that select pods, references to ConfigMaps, Secrets and keys that exist, documented settings;
- the Kafka node script against the configuration the secured local cluster runs in the tests.

What this does not prove: that the images exist and start, that Kafka, Karapace, ClickHouse
(and its Keeper) and Grafana accept these settings at run time (except the Kafka properties,
see the last test), and that `kustomize build` gives the same output (kustomize is not
installed here).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import jsonschema
import kubernetes_validate
import pytest
import yaml

from ioc.infra.kafka_cluster import LocalKafkaCluster

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
COMPOSE = INFRA / "compose" / "compose.yaml"
COMPOSE_CLUSTER = INFRA / "compose" / "compose.cluster.yaml"
CLUSTER_DIR = INFRA / "clickhouse" / "cluster"
K8S = INFRA / "k8s" / "base"
KUBERNETES_VERSION = "1.33"
PLATFORM_IMAGE = "ioc-platform"
# Files an operator provides next to compose.yaml (see its header); not in the repository.
OPERATOR_FILES = {"./secrets", "./agencies.toml", "./agencies.env", "./notifier.env",
                  "./notify-routes.yaml"}


def documented_env() -> set[str]:
    """``IOC_*`` names the code documents or reads (settings docstrings, manifests)."""
    names: set[str] = set()
    for folder in ("infra", "connectors", "streams", "schemas", "dashboards"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix in (".py", ".toml", ".yaml", ".yml"):
                names.update(re.findall(r"\bIOC_[A-Z0-9_]*[A-Z0-9]",
                                        path.read_text(encoding="utf-8")))
    return names


def pinned(image: str) -> bool:
    name, _, tag = image.rpartition(":")
    return bool(name) and "/" not in tag and tag not in ("", "latest")


# --------------------------------------------------------------------------- compose


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def test_compose_file_follows_the_compose_specification(compose: dict[str, Any]) -> None:
    schema_file = resources.files("check_jsonschema") / "builtin_schemas/vendor/compose-spec.json"
    schema = json.loads(schema_file.read_text(encoding="utf-8"))
    assert schema["$schema"].startswith("https://json-schema.org/draft-07/")
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(compose), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:20])


def test_compose_services_follow_the_platform_rules(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"kafka-1", "kafka-2", "kafka-3", "schema-registry", "clickhouse", "setup",
            "platform", "worker", "gateway", "notifier", "grafana", "prometheus"} <= set(services)
    problems = compose_problems(services)
    kafka = [services[f"kafka-{i}"] for i in (1, 2, 3)]
    assert sorted(k["environment"]["NODE_ID"] for k in kafka) == ["1", "2", "3"]
    assert services["worker"]["command"] == ["run", "--worker-only"]
    assert services["platform"]["command"] == ["run"]
    assert not problems, "\n".join(problems)


def compose_problems(services: dict[str, Any]) -> list[str]:
    """The platform's rules for Compose services: pinned images, health checks, documented
    settings, mounted files that exist."""
    documented = documented_env()
    problems = []
    for name, svc in services.items():
        image = svc["image"]
        if not (image.startswith(PLATFORM_IMAGE + ":") or pinned(image)):
            problems.append(f"{name}: image {image} is not pinned to a tag")
        if name != "setup" and "healthcheck" not in svc:
            problems.append(f"{name}: no healthcheck")
        if image.startswith(PLATFORM_IMAGE + ":"):
            for var in svc.get("environment", {}):
                if var.startswith("IOC_") and var not in documented:
                    problems.append(f"{name}: {var} is not a documented setting")
        for volume in svc.get("volumes", []):
            host = volume.split(":", 1)[0]
            if host.startswith(".") and not any(host.startswith(f) for f in OPERATOR_FILES):
                if not (COMPOSE.parent / host).exists():
                    problems.append(f"{name}: {host} does not exist")
    return problems


# --------------------------------------------------------------------------- ClickHouse cluster


def compose_merge(base: Any, override: Any, key: str = "") -> Any:
    """``docker compose -f base -f override`` for what these files use: mappings merge (an
    override's ``environment`` key, ``depends_on`` entry or service field wins), a service's
    ``volumes`` merge by container path, other sequences and scalars are replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for k, v in override.items():
            out[k] = compose_merge(base[k], v, k) if k in base else v
        return out
    if key == "volumes" and isinstance(base, list) and isinstance(override, list):
        by_target = {v.split(":")[1]: v for v in base}
        by_target.update({v.split(":")[1]: v for v in override})
        return list(by_target.values())
    return override


@pytest.fixture(scope="module")
def cluster_compose(compose: dict[str, Any]) -> dict[str, Any]:
    override = yaml.safe_load(COMPOSE_CLUSTER.read_text(encoding="utf-8"))
    merged: dict[str, Any] = compose_merge(compose, override)
    return merged


def xml(path: Path) -> ElementTree.Element:
    return ElementTree.parse(path).getroot()  # noqa: S314 - the repository's own files


def test_compose_cluster_variant_follows_the_specification_and_the_rules(
        cluster_compose: dict[str, Any]) -> None:
    schema_file = resources.files("check_jsonschema") / "builtin_schemas/vendor/compose-spec.json"
    schema = json.loads(schema_file.read_text(encoding="utf-8"))
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(cluster_compose), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:20])
    problems = compose_problems(cluster_compose["services"])
    assert not problems, "\n".join(problems)


def test_compose_cluster_nodes_match_the_cluster_definition(
        cluster_compose: dict[str, Any]) -> None:
    """2 shards × 2 replicas: each node's macros are its place in ``remote_servers``; the
    Keeper ensemble is the three keeper services; the platform names the same cluster, and the
    macros the migrations' Replicated engines use exist on every node."""
    from ioc.infra.cluster_ddl import EVERYWHERE_REPLICA, SHARDED_PATH

    services = cluster_compose["services"]
    config = xml(CLUSTER_DIR / "cluster.xml")
    remote, macro_section = config.find("remote_servers"), config.find("macros")
    secret = config.find("remote_servers/ioc/secret")
    listener = config.find("interserver_http_host")
    assert remote is not None and macro_section is not None
    assert secret is not None and listener is not None
    [cluster] = list(remote)
    shards = cluster.findall("shard")
    assert len(shards) == 2 and all(len(s.findall("replica")) == 2 for s in shards)
    assert all(s.findtext("internal_replication") == "true" for s in shards)
    secret_env = secret.get("from_env")
    macros = {m.tag: m.get("from_env") or m.text for m in macro_section}
    assert set(re.findall(r"{(\w+)}", SHARDED_PATH + "{replica}" + EVERYWHERE_REPLICA)) \
        <= set(macros) | {"database"}
    nodes = {}
    for number, shard in enumerate(shards, start=1):
        for replica in shard.findall("replica"):
            host = replica.findtext("host")
            assert replica.findtext("port") == "9000"
            svc = services[host]
            env = svc["environment"]
            assert svc["image"].startswith("clickhouse/clickhouse-server:")
            assert env[macros["shard"]] == str(number), host
            assert env[macros["replica"]] == host   # unique, and the interserver host name
            assert env[secret_env].startswith("${IOC_CH_CLUSTER_SECRET")
            mounts = {v.split(":")[1]: v.split(":")[0] for v in svc["volumes"]}
            assert mounts["/etc/clickhouse-server/config.d/ioc-cluster.xml"] == \
                "../clickhouse/cluster/cluster.xml"
            assert mounts["/etc/clickhouse-server/users.d/ioc-cluster.xml"] == \
                "../clickhouse/cluster/users-cluster.xml"
            assert mounts["/etc/clickhouse-server/users.d/ioc.xml"] == \
                "../clickhouse/server/users.xml"
            nodes[host] = number
    assert listener.get("from_env") == macros["replica"]
    ch_services = {n for n, s in services.items() if "clickhouse-server" in s.get("image", "")}
    assert set(nodes) == ch_services and len(nodes) == 4
    # ClickHouse Keeper: the nodes' zookeeper section and the Raft ensemble agree
    keeper = xml(CLUSTER_DIR / "keeper.xml").find("keeper_server")
    assert keeper is not None
    port = keeper.findtext("tcp_port")
    raft = {s.findtext("hostname"): s.findtext("id")
            for s in keeper.iter("server")}
    assert {(n.findtext("host"), n.findtext("port")) for n in config.iter("node")} == \
        {(h, port) for h in raft}
    for host, server_id in raft.items():
        assert services[host]["environment"]["KEEPER_SERVER_ID"] == server_id
        assert services[host]["image"].startswith("clickhouse/clickhouse-keeper:")
    for host in nodes:
        assert set(raft) <= set(services[host]["depends_on"]), host
    # the platform runs with the same cluster name; setup waits for every node
    for name in ("setup", "platform", "worker", "gateway", "notifier"):
        assert services[name]["environment"]["IOC_CLICKHOUSE_CLUSTER"] == cluster.tag, name
    assert set(nodes) <= set(services["setup"]["depends_on"])
    # readers may join two sharded tables (docs/operations.md §5)
    profiles = xml(CLUSTER_DIR / "users-cluster.xml").find("profiles")
    server_profiles = xml(INFRA / "clickhouse" / "server" / "users.xml").find("profiles")
    assert profiles is not None and server_profiles is not None
    assert {p.tag for p in server_profiles} <= {p.tag for p in profiles}
    assert {p.findtext("distributed_product_mode") for p in profiles} == {"global"}


# --------------------------------------------------------------------------- kubernetes


def kustomize(base: Path) -> list[dict[str, Any]]:
    """The objects ``kustomize build`` would emit for this base, as far as it uses kustomize:
    resources, ConfigMap generators (content from the named files), namespace, labels."""
    k = yaml.safe_load((base / "kustomization.yaml").read_text(encoding="utf-8"))
    allowed = {"apiVersion", "kind", "namespace", "labels", "resources", "configMapGenerator",
               "images"}
    assert set(k) <= allowed, f"kustomization uses {set(k) - allowed}: extend this resolver"
    docs: list[dict[str, Any]] = []
    for resource in k["resources"]:
        docs.extend(d for d in yaml.safe_load_all((base / resource).read_text(encoding="utf-8"))
                    if d)
    for gen in k.get("configMapGenerator", []):
        data = {}
        for entry in gen["files"]:
            key, _, path = entry.partition("=")
            file = base / (path or key)
            assert file.is_file(), f"configMapGenerator {gen['name']}: {file} missing"
            data[key if path else file.name] = file.read_text(encoding="utf-8")
        docs.append({"apiVersion": "v1", "kind": "ConfigMap",
                     "metadata": {"name": gen["name"]}, "data": data})
    images = {i["name"]: i for i in k.get("images", [])}
    for doc in docs:
        if doc["kind"] != "Namespace":
            doc["metadata"]["namespace"] = k["namespace"]
        for c in containers(doc):
            if c["image"] in images:
                c["image"] = f"{images[c['image']]['newName']}:{images[c['image']]['newTag']}"
    return docs


def pod_spec(doc: dict[str, Any]) -> dict[str, Any] | None:
    if doc["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        return doc["spec"]["template"]["spec"]
    return None


def containers(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    spec = pod_spec(doc)
    if spec:
        yield from spec.get("initContainers", [])
        yield from spec["containers"]


@pytest.fixture(scope="module")
def k8s() -> list[dict[str, Any]]:
    return kustomize(K8S)


def test_kubernetes_manifests_validate_against_the_api_schemas(k8s: list[dict[str, Any]]
                                                               ) -> None:
    problems = []
    for doc in k8s:
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            problems.append(f"{doc['kind']}/{doc['metadata']['name']}: {exc.message}")
    assert not problems, "\n".join(problems)
    kinds = {(d["kind"], d["metadata"]["name"]) for d in k8s}
    assert {("StatefulSet", "kafka"), ("StatefulSet", "clickhouse"), ("Deployment", "ioc-worker"),
            ("Deployment", "ioc-platform"), ("Deployment", "ioc-gateway"),
            ("Deployment", "ioc-notifier"), ("Deployment", "grafana"),
            ("Deployment", "prometheus"), ("Deployment", "schema-registry"),
            ("Job", "ioc-setup")} <= kinds


def test_kubernetes_workloads_follow_the_platform_rules(k8s: list[dict[str, Any]]) -> None:
    documented = documented_env()
    config_maps = {d["metadata"]["name"]: d for d in k8s if d["kind"] == "ConfigMap"}
    secrets = {d["metadata"]["name"]: d for d in k8s if d["kind"] == "Secret"}
    claims = {d["metadata"]["name"] for d in k8s if d["kind"] == "PersistentVolumeClaim"}
    problems = []

    def need(kind: str, name: str, key: str | None, where: str, optional: bool = False) -> None:
        found = (config_maps if kind == "ConfigMap" else secrets).get(name)
        if found is None:
            if not optional:
                problems.append(f"{where}: {kind} {name} does not exist")
            return
        keys = set(found.get("data", {})) | set(found.get("stringData", {}))
        if key is not None and key not in keys:
            problems.append(f"{where}: {kind} {name} has no key {key}")

    for doc in k8s:
        spec = pod_spec(doc)
        if spec is None:
            continue
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        for c in containers(doc):
            cw = f"{where}/{c['name']}"
            if not pinned(c["image"]):
                problems.append(f"{cw}: image {c['image']} is not pinned to a tag")
            requests = c.get("resources", {}).get("requests", {})
            if not {"cpu", "memory"} <= set(requests):
                problems.append(f"{cw}: no cpu and memory requests")
            if doc["kind"] != "Job" and not ("readinessProbe" in c and "livenessProbe" in c):
                problems.append(f"{cw}: readiness and liveness probes needed")
            runs_platform = PLATFORM_IMAGE in c["image"]
            for env in c.get("env", []):
                if runs_platform and env["name"].startswith("IOC_") and \
                        env["name"] not in documented:
                    problems.append(f"{cw}: {env['name']} is not a documented setting")
                ref = env.get("valueFrom", {})
                if "secretKeyRef" in ref:
                    need("Secret", ref["secretKeyRef"]["name"], ref["secretKeyRef"]["key"], cw)
                if "configMapKeyRef" in ref:
                    need("ConfigMap", ref["configMapKeyRef"]["name"],
                         ref["configMapKeyRef"]["key"], cw)
            for src in c.get("envFrom", []):
                for kind, field in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
                    if field in src:
                        need(kind, src[field]["name"], None, cw, src[field].get("optional", False))
                        found = (config_maps if kind == "ConfigMap" else secrets).get(
                            src[field]["name"], {})
                        for var in {**found.get("data", {}), **found.get("stringData", {})}:
                            if runs_platform and var.startswith("IOC_") and var not in documented:
                                problems.append(f"{cw}: {var} is not a documented setting")
            mounts = {m["name"] for m in c.get("volumeMounts", [])}
            volumes = {v["name"] for v in spec.get("volumes", [])}
            templates = {t["metadata"]["name"] for t in
                         doc["spec"].get("volumeClaimTemplates", [])}
            for m in mounts - volumes - templates:
                problems.append(f"{cw}: volume {m} is not defined")
        for v in spec.get("volumes", []):
            sources = [v, *v.get("projected", {}).get("sources", [])]
            for s in sources:
                if "configMap" in s:
                    cm = s["configMap"]
                    need("ConfigMap", cm["name"], None, where, cm.get("optional", False))
                    for item in cm.get("items", []):
                        need("ConfigMap", cm["name"], item["key"], where)
                secret = s.get("secret")
                if secret:
                    name = secret.get("secretName") or secret.get("name")
                    need("Secret", name, None, where, secret.get("optional", False))
                    for item in secret.get("items", []):
                        need("Secret", name, item["key"], where)
            claim = v.get("persistentVolumeClaim", {}).get("claimName")
            if claim is not None and claim not in claims:
                problems.append(f"{where}: PVC {claim} missing")
    assert not problems, "\n".join(problems)


def matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions", []):
        value = labels.get(expr["key"])
        if expr["operator"] == "In" and value not in expr["values"]:
            return False
        if expr["operator"] == "Exists" and value is None:
            return False
    return True


def test_services_budgets_and_policies_select_existing_pods(k8s: list[dict[str, Any]]) -> None:
    pods = []  # (workload, labels, container ports)
    for doc in k8s:
        if pod_spec(doc) is not None:
            ports = {p["containerPort"] for c in containers(doc) for p in c.get("ports", [])}
            pods.append((doc["metadata"]["name"], doc["spec"]["template"]["metadata"]["labels"],
                         ports))
            if doc["kind"] != "Job":
                assert matches(doc["spec"]["selector"], pods[-1][1]), doc["metadata"]["name"]
    problems = []
    for doc in k8s:
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        if doc["kind"] == "Service":
            selected = [p for p in pods if matches({"matchLabels": doc["spec"]["selector"]},
                                                   p[1])]
            if not selected:
                problems.append(f"{name} selects no pods")
            for port in doc["spec"]["ports"]:
                target = port.get("targetPort", port["port"])
                if not all(target in p[2] for p in selected):
                    problems.append(f"{name}: port {target} is not a port of every pod it selects")
        elif doc["kind"] in ("PodDisruptionBudget", "NetworkPolicy"):
            selector = doc["spec"]["selector" if doc["kind"] == "PodDisruptionBudget"
                                   else "podSelector"]
            if selector and not any(matches(selector, p[1]) for p in pods):
                problems.append(f"{name} selects no pods")
            for rule in doc["spec"].get("ingress", []):
                for peer in rule.get("from", []):
                    if "podSelector" in peer and not any(matches(peer["podSelector"], p[1])
                                                         for p in pods):
                        problems.append(f"{name}: a 'from' selects no pods")
    assert not problems, "\n".join(problems)
    budgets = {d["metadata"]["name"] for d in k8s if d["kind"] == "PodDisruptionBudget"}
    assert {"kafka", "clickhouse", "ioc-worker", "ioc-gateway"} <= budgets


# --------------------------------------------------------------------------- Kafka, Prometheus


def node_script_properties() -> dict[str, str]:
    text = (INFRA / "kafka" / "start-node.sh").read_text(encoding="utf-8")
    body = text.split("<<PROPERTIES\n", 1)[1].split("\nPROPERTIES\n", 1)[0]
    return dict(line.split("=", 1) for line in body.splitlines() if line)


def test_production_kafka_nodes_run_the_security_settings_the_tests_run(tmp_path: Path) -> None:
    cluster = LocalKafkaCluster(tmp_path, brokers=3, base_port=30000, secure=True, log=print)
    cluster._write_properties(cluster.nodes[0])
    text = (cluster.nodes[0].dir / "server.properties").read_text(encoding="ascii")
    tested = dict(line.split("=", 1) for line in text.splitlines()[1:])
    deployed = node_script_properties()
    same = ["process.roles", "controller.listener.names", "inter.broker.listener.name",
            "listener.security.protocol.map", "sasl.enabled.mechanisms",
            "sasl.mechanism.inter.broker.protocol", "ssl.keystore.type", "ssl.truststore.type",
            "listener.name.controller.ssl.client.auth", "authorizer.class.name", "super.users",
            "allow.everyone.if.no.acl.found", "default.replication.factor",
            "min.insync.replicas", "offsets.topic.replication.factor",
            "transaction.state.log.min.isr", "unclean.leader.election.enable",
            "auto.create.topics.enable"]
    assert {k: deployed.get(k) for k in same} == {k: tested[k] for k in same}
    # the mapping rule: the script escapes $1 for the shell
    assert deployed["ssl.principal.mapping.rules"].replace("\\$", "$") == \
        tested["ssl.principal.mapping.rules"]
    assert set(tested) - set(deployed) <= {"num.partitions", "group.initial.rebalance.delay.ms"}


def test_prometheus_configs_keep_the_job_names_and_rules() -> None:
    reference = yaml.safe_load((INFRA / "prometheus" / "prometheus.yml").read_text())
    jobs = {j["job_name"] for j in reference["scrape_configs"]}
    for path in (INFRA / "compose" / "prometheus.yml", K8S / "prometheus.yml"):
        config = yaml.safe_load(path.read_text())
        assert {j["job_name"] for j in config["scrape_configs"]} == jobs, path
        assert config["rule_files"] == ["rules.yml"], path


def test_dockerfile_pins_its_base_images_and_runs_ioc() -> None:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    bases = re.findall(r"^FROM\s+(\S+)", text, re.MULTILINE)
    assert bases and all(pinned(b) for b in bases)
    assert 'ENTRYPOINT ["ioc"]' in text
    assert re.search(r"^USER\s+\d+", text, re.MULTILINE), "the image must not run as root"
    assert "-c requirements.lock" in text  # the exact tested dependency set
