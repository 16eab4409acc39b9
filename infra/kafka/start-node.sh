#!/usr/bin/env bash
# Starts one production Kafka node (KRaft, combined broker + controller) inside the official
# apache/kafka image, for infra/compose/compose.yaml and infra/k8s (StatefulSet kafka).
#
# The properties are those of the secured local cluster that the tests run
# (infra/kafka_cluster.py, secure mode): SASL_SSL + SCRAM-SHA-512 for clients and replication,
# mutual TLS on the controller listener, StandardAuthorizer with no access unless an ACL allows
# it, replication factor 3 and min.insync.replicas 2, no topic auto-creation. The super user
# `admin` gets its SCRAM credential when the log dir is formatted (first start only), so the
# cluster never runs without one. Passwords are read from files (Docker/Kubernetes secrets),
# never from the command line of the broker.
#
# Environment:
#   NODE_ID            this node's id; or NODE_ID_FROM_HOSTNAME=1 (StatefulSet: kafka-0 -> 1)
#   VOTERS             controller.quorum.voters, e.g. 1@kafka-1:9094,2@kafka-2:9094,3@kafka-3:9094
#   ADVERTISED_HOST    host name clients use for this node (must be in its certificate's SAN)
#   CLUSTER_ID         the cluster id (same on every node; `kafka-storage random-uuid`)
#   SECRETS_DIR        folder with admin-password, store-password, node.p12, truststore.p12
#   DATA_DIR           log dir (default /var/lib/kafka/data)
set -euo pipefail

if [[ "${NODE_ID_FROM_HOSTNAME:-0}" == "1" ]]; then
  NODE_ID=$(( ${HOSTNAME##*-} + 1 ))
fi
: "${NODE_ID:?}" "${VOTERS:?}" "${ADVERTISED_HOST:?}" "${CLUSTER_ID:?}" "${SECRETS_DIR:?}"
DATA_DIR="${DATA_DIR:-/var/lib/kafka/data}"
CONFIG="${CONFIG_DIR:-/tmp/kafka-config}/server.properties"
ADMIN_PASSWORD="$(cat "$SECRETS_DIR/admin-password")"
STORE_PASSWORD="$(cat "$SECRETS_DIR/store-password")"

mkdir -p "$(dirname "$CONFIG")" "$DATA_DIR"
umask 077
cat > "$CONFIG" <<PROPERTIES
process.roles=broker,controller
node.id=${NODE_ID}
controller.quorum.voters=${VOTERS}
controller.listener.names=CONTROLLER
listeners=SASL_SSL://0.0.0.0:9093,CONTROLLER://0.0.0.0:9094
advertised.listeners=SASL_SSL://${ADVERTISED_HOST}:9093
inter.broker.listener.name=SASL_SSL
listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:SSL
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="${ADMIN_PASSWORD}";
ssl.keystore.type=PKCS12
ssl.keystore.location=${SECRETS_DIR}/node.p12
ssl.keystore.password=${STORE_PASSWORD}
ssl.key.password=${STORE_PASSWORD}
ssl.truststore.type=PKCS12
ssl.truststore.location=${SECRETS_DIR}/truststore.p12
ssl.truststore.password=${STORE_PASSWORD}
listener.name.controller.ssl.client.auth=required
ssl.principal.mapping.rules=RULE:^CN=([^,]+)(,.*)?$/\$1/,DEFAULT
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:admin;User:ioc-kafka-node
allow.everyone.if.no.acl.found=false
log.dirs=${DATA_DIR}
num.partitions=6
default.replication.factor=3
min.insync.replicas=2
offsets.topic.replication.factor=3
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
share.coordinator.state.topic.replication.factor=3
share.coordinator.state.topic.min.isr=2
unclean.leader.election.enable=false
auto.create.topics.enable=false
PROPERTIES

if [[ ! -f "$DATA_DIR/meta.properties" ]]; then
  /opt/kafka/bin/kafka-storage.sh format --ignore-formatted -t "$CLUSTER_ID" -c "$CONFIG" \
    --add-scram "SCRAM-SHA-512=[name=admin,password=${ADMIN_PASSWORD}]"
fi
exec /opt/kafka/bin/kafka-server-start.sh "$CONFIG"
