#!/usr/bin/env bash
# Makes sure MariaDB (127.0.0.1:3306, root without password) and Redis (127.0.0.1:6379) are up:
# starts them when installed but stopped, installs them with apt-get when missing.
# Sourced by scripts/test.sh and scripts/bench.sh; safe to run again.
set -euo pipefail

log() { printf '[services] %s\n' "$*" >&2; }

apt_install() {
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

ensure_mariadb
ensure_redis
