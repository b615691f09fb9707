#!/usr/bin/env bash
# Makes sure MariaDB (127.0.0.1:3306, root without password) and Redis (127.0.0.1:6379) are up:
# starts them when installed but stopped, installs them with apt-get when missing.
# Also makes sure a local Redis Cluster of three masters without replicas runs on 127.0.0.1
# ports 7101, 7102 and 7103 (data and logs under /var/lib/iam-tokens-cluster/<port>), for the
# Redis Cluster test suite, which reads
# IAM_TEST_REDIS_CLUSTER=redis://127.0.0.1:7101,redis://127.0.0.1:7102,redis://127.0.0.1:7103
# (exported at the end unless already set). A healthy cluster is left alone; a partial, broken
# or stale one (e.g. old nodes-*.conf) is shut down, wiped and created afresh.
# Also installs nginx and Caddy (Debian's packages) when missing, for the gateway tests.
# Also installs Debian's chromium and chromium-driver when missing, for the console's browser tests.
# Sourced by scripts/test.sh and scripts/bench.sh; safe to run again.
set -euo pipefail

log() { printf '[services] %s\n' "$*" >&2; }

# Waits (up to 10 min) while another apt-get or dpkg runs: it holds dpkg's lock.
wait_for_apt() {
  local i
  for i in $(seq 1 600); do
    pgrep -x 'apt-get|apt|dpkg|unattended-upgr' >/dev/null 2>&1 || return 0
    [ "$i" -eq 1 ] && log "waiting for another apt-get or dpkg to finish"
    sleep 1
  done
}

apt_install() {
  wait_for_apt
  if [ -z "${APT_UPDATED:-}" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

mariadb_tcp_ok() {
  mysqladmin --protocol=tcp -h127.0.0.1 -P3306 -uroot ping >/dev/null 2>&1
}

wait_for() {
  local what=$1 check=$2
  for _ in $(seq 1 60); do
    if $check; then return 0; fi
    sleep 0.5
  done
  log "$what did not come up"
  return 1
}

ensure_mariadb() {
  if command -v mysqladmin >/dev/null 2>&1 && mariadb_tcp_ok; then return 0; fi
  if ! command -v mariadbd >/dev/null 2>&1 && [ ! -x /usr/sbin/mariadbd ]; then
    log "installing MariaDB"
    apt_install mariadb-server mariadb-client
  fi
  log "starting MariaDB"
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql \
    >/dev/null 2>&1 || (/usr/sbin/mariadbd --user=mysql >/dev/null 2>&1 &)
  wait_for "MariaDB socket" "mysqladmin -uroot ping" || true
  if ! mariadb_tcp_ok; then
    # A fresh Debian install authenticates root through the unix socket only.
    mysql -uroot -e "ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD('') OR unix_socket; FLUSH PRIVILEGES;" \
      >/dev/null 2>&1 || true
  fi
  wait_for "MariaDB on 127.0.0.1:3306" mariadb_tcp_ok
}

redis_ok() { redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; }

ensure_redis() {
  if command -v redis-cli >/dev/null 2>&1 && redis_ok; then return 0; fi
  if ! command -v redis-server >/dev/null 2>&1; then
    log "installing Redis"
    apt_install redis-server
  fi
  log "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/iam-tokens.log >/dev/null
  wait_for "Redis on 127.0.0.1:6379" redis_ok
}

REDIS_CLUSTER_PORTS="7101 7102 7103"
REDIS_CLUSTER_DIR=/var/lib/iam-tokens-cluster

redis_cluster_ping_ok() { [ "$(redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null)" = PONG ]; }

# One node reports a complete, healthy cluster of exactly our three masters.
redis_cluster_node_ok() {
  local info
  info=$(redis-cli -h 127.0.0.1 -p "$1" cluster info 2>/dev/null) || return 1
  case $info in *cluster_state:ok*) ;; *) return 1 ;; esac
  case $info in *cluster_slots_assigned:16384*) ;; *) return 1 ;; esac
  case $info in *cluster_known_nodes:3[!0-9]*) ;; *) return 1 ;; esac
}

redis_cluster_all_ping() {
  local p
  for p in $REDIS_CLUSTER_PORTS; do redis_cluster_ping_ok "$p" || return 1; done
}

redis_cluster_all_down() {
  local p
  for p in $REDIS_CLUSTER_PORTS; do
    if redis-cli -h 127.0.0.1 -p "$p" ping >/dev/null 2>&1; then return 1; fi
  done
}

redis_cluster_all_ok() {
  local p nodes
  redis_cluster_all_ping || return 1
  for p in $REDIS_CLUSTER_PORTS; do redis_cluster_node_ok "$p" || return 1; done
  nodes=$(redis-cli -h 127.0.0.1 -p 7101 cluster nodes 2>/dev/null) || return 1
  for p in $REDIS_CLUSTER_PORTS; do
    case $nodes in *"127.0.0.1:$p@"*) ;; *) return 1 ;; esac
  done
}

ensure_redis_cluster() {
  if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
    log "installing Redis (for the cluster)"
    apt_install redis-server
  fi
  if redis_cluster_all_ok; then return 0; fi
  local p out
  log "(re)creating the Redis Cluster on 127.0.0.1:7101-7103"
  for p in $REDIS_CLUSTER_PORTS; do
    redis-cli -h 127.0.0.1 -p "$p" shutdown nosave >/dev/null 2>&1 || true
  done
  wait_for "Redis Cluster nodes to stop" redis_cluster_all_down
  for p in $REDIS_CLUSTER_PORTS; do
    rm -rf "${REDIS_CLUSTER_DIR:?}/$p"
    mkdir -p "$REDIS_CLUSTER_DIR/$p"
    redis-server --daemonize yes --bind 127.0.0.1 --port "$p" --save "" --appendonly no \
      --cluster-enabled yes --cluster-config-file "nodes-$p.conf" \
      --dir "$REDIS_CLUSTER_DIR/$p" --logfile "$REDIS_CLUSTER_DIR/$p/redis.log" \
      --cluster-node-timeout 2000 >/dev/null
  done
  wait_for "Redis Cluster nodes on 127.0.0.1:7101-7103" redis_cluster_all_ping
  if ! out=$(redis-cli --cluster create 127.0.0.1:7101 127.0.0.1:7102 127.0.0.1:7103 \
    --cluster-replicas 0 --cluster-yes 2>&1); then
    log "redis-cli --cluster create failed:"
    printf '%s\n' "$out" >&2
    return 1
  fi
  wait_for "Redis Cluster state ok on 127.0.0.1:7101-7103" redis_cluster_all_ok
  log "Redis Cluster up on 127.0.0.1:7101-7103"
}

# The gateways of the forward-auth tests (SPEC B13): Debian's nginx and Caddy, run by the tests
# themselves with the configs in deploy/ (the system services the packages bring are not used).
ensure_gateways() {
  local missing=()
  [ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1 || missing+=(nginx)
  command -v caddy >/dev/null 2>&1 || missing+=(caddy)
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    apt_install "${missing[@]}"
  fi
}

# The console's browser tests (SPEC B14): Debian's Chromium, driven through its chromedriver,
# both started by the tests themselves.
ensure_browser() {
  if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then return 0; fi
  log "installing chromium and chromium-driver"
  apt_install chromium chromium-driver
}

ensure_mariadb
ensure_redis
ensure_redis_cluster
ensure_gateways
ensure_browser

export IAM_TEST_REDIS_CLUSTER="${IAM_TEST_REDIS_CLUSTER:-redis://127.0.0.1:7101,redis://127.0.0.1:7102,redis://127.0.0.1:7103}"
