#!/usr/bin/env bash
# Makes the TLS material of a production Kafka cluster with the JDK's keytool (the same steps
# infra/kafka_cluster.py runs for the local secured cluster): a CA, one node key pair signed by
# it for every broker host name, a PKCS12 trust store, and ca.pem for the clients
# (IOC_KAFKA_CA_FILE). Use your organisation's CA instead when it has one.
#
#   infra/security/make-certs.sh OUT_DIR kafka-1 kafka-2 kafka-3 [more SAN host names ...]
#
# OUT_DIR gets: ca.p12 (keep offline), ca.pem, node.p12, truststore.p12, store-password,
# admin-password. Rotation: see docs/operations.md ("Certificates and rotation").
set -euo pipefail
out="${1:?usage: make-certs.sh OUT_DIR HOST...}"; shift
[[ $# -ge 1 ]] || { echo "name at least one broker host" >&2; exit 2; }
mkdir -p "$out"; cd "$out"; umask 077
[[ -f store-password ]] || head -c 24 /dev/urandom | base64 | tr -d '/+=' > store-password
[[ -f admin-password ]] || head -c 24 /dev/urandom | base64 | tr -d '/+=' > admin-password
pw="$(cat store-password)"
san="SAN=$(printf 'dns:%s,' "$@")dns:localhost"
rm -f node.p12 node.csr node.crt truststore.p12
if [[ ! -f ca.p12 ]]; then
  keytool -genkeypair -alias ca -dname "CN=IOC Kafka CA,O=IOC" -keyalg RSA -keysize 3072 \
    -validity 3650 -ext bc:c -keystore ca.p12 -storetype PKCS12 -storepass "$pw"
fi
keytool -exportcert -rfc -alias ca -keystore ca.p12 -storepass "$pw" -file ca.pem
keytool -genkeypair -alias node -dname "CN=ioc-kafka-node,O=IOC" -keyalg RSA -keysize 2048 \
  -validity 825 -ext "$san" -keystore node.p12 -storetype PKCS12 -storepass "$pw"
keytool -certreq -alias node -keystore node.p12 -storepass "$pw" -file node.csr
keytool -gencert -rfc -alias ca -keystore ca.p12 -storepass "$pw" -infile node.csr \
  -outfile node.crt -validity 825 -ext "$san" -ext ku:c=digitalSignature,keyEncipherment \
  -ext eku=serverAuth,clientAuth
keytool -importcert -noprompt -alias ca -keystore node.p12 -storepass "$pw" -file ca.pem
keytool -importcert -alias node -keystore node.p12 -storepass "$pw" -file node.crt
keytool -importcert -noprompt -alias ca -keystore truststore.p12 -storetype PKCS12 \
  -storepass "$pw" -file ca.pem
rm -f node.csr node.crt
echo "TLS material for $* in $out"
