#!/bin/sh
# Makes a DEMO-ONLY CA, a listener certificate for the compose brokers and a client certificate,
# under docker/tls/ (git-ignored). Run again to rotate the listener certificate. Needs openssl.
set -eu
cd "$(dirname "$0")"
mkdir -p tls
cd tls
if [ ! -f ca.key ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
    -subj "/CN=token-broker demo CA" -keyout ca.key -out ca.crt
fi
issue() { # name, subjectAltName, extendedKeyUsage
  printf 'basicConstraints=CA:FALSE\nsubjectAltName=%s\nextendedKeyUsage=%s\n' "$2" "$3" > "$1.ext"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -subj "/CN=$1" -keyout "$1.key.new" -out "$1.csr"
  openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 \
    -extfile "$1.ext" -out "$1.crt.new"
  # In place (same inode), so the containers' bind mounts see the new files.
  cat "$1.key.new" > "$1.key"
  cat "$1.crt.new" > "$1.crt"
  rm -f "$1.key.new" "$1.crt.new" "$1.csr" "$1.ext"
}
issue broker "DNS:localhost,DNS:broker-a,DNS:broker-b,IP:127.0.0.1" serverAuth
issue client "DNS:demo-client" clientAuth
# Readable by the image's user (uid 1000) through the bind mount.
chmod 644 ./*.crt broker.key client.key
echo "made docker/tls/{ca.crt,broker.crt,broker.key,client.crt,client.key}"
