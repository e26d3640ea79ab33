#!/bin/busybox sh
# /init (PID 1) of the nested-KVM guest: the Debian arm64 kernel booted at EL2 inside
# qemu-system-aarch64, so /dev/kvm here is real arm64 KVM. Packed by scripts/nested/build.sh.
#
# Kernel command line flags read here: `net` (load the virtio-net modules, eth0 = 10.0.2.15/24).
# Optional run configuration, appended by scripts/nested/run.sh as a second cpio archive:
#   /nested/config     shell variables: NESTED_TESTS (1: run /guest-tests.sh), NESTED_CI,
#                      NESTED_GUEST_BG (1: guest command in the background), NESTED_READY_PORT,
#                      NESTED_READY_TIMEOUT, NESTED_TEST_TIMEOUT
#   /nested/guest-cmd  a shell script to run in the guest (see run.sh --guest-cmd)
#   /nested/only       guest test name globs, one a line (see run.sh --only)
# Output protocol on the console (parsed by run.sh): NESTED-BOOT, NESTED-READY,
# `NESTED-RESULT <name> PASS|FAIL|SKIP <rc>`, NESTED-DONE. Then the machine powers off.
# No `set -e`: PID 1 must reach the power-off whatever fails (its exit would panic the kernel).
set -u

/bin/busybox mkdir -p /proc /sys /dev /tmp /run
/bin/busybox mount -t devtmpfs devtmpfs /dev
# The initramfs has no /dev/console node, so the kernel started us without stdio: attach it now.
exec </dev/console >/dev/console 2>&1
/bin/busybox --install -s /bin
export PATH=/bin HOME=/ TERM=dumb
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t tmpfs tmpfs /tmp

uptime_s() { cut -d' ' -f1 /proc/uptime; }
result() { echo "NESTED-RESULT $1 $2 $3"; }

echo "NESTED-BOOT uptime=$(uptime_s) kernel=$(uname -r)"

NESTED_TESTS=1 NESTED_CI=0 NESTED_GUEST_BG=0 NESTED_READY_PORT="" NESTED_READY_TIMEOUT=120
NESTED_TEST_TIMEOUT=300
# shellcheck source=/dev/null
[ -f /nested/config ] && . /nested/config
export NESTED_CI NESTED_TEST_TIMEOUT

NET=0
for w in $(cat /proc/cmdline); do
  [ "$w" = net ] && NET=1
done

check_kvm() {
  dmesg | grep -E 'kvm \[[0-9]+\]: .*(mode initialized|Hyp mode)'
  if [ -c /dev/kvm ]; then
    result dev-kvm PASS 0
  else
    echo "nested: /dev/kvm missing: the kernel did not start at EL2 (needs -M virt,virtualization=on)"
    result dev-kvm FAIL 1
  fi
}

# Loads the modules build.sh staged for the running kernel (dependencies first) and configures
# eth0 with QEMU user networking's fixed addresses (QEMU docs, "Network emulation", user
# networking: guest 10.0.2.15, gateway 10.0.2.2, 10.0.2.0/24).
net_up() {
  local m i=0 dir
  dir=/lib/modules/$(uname -r)
  [ -f "$dir/order" ] || { echo "nested: no modules staged for kernel $(uname -r) (scripts/nested/build.sh)"; return 1; }
  for m in $(cat "$dir/order"); do
    insmod "$dir/$m.ko" || { echo "nested: insmod $m failed"; return 1; }
  done
  while [ ! -e /sys/class/net/eth0 ]; do
    i=$((i + 1))
    [ $i -gt 100 ] && { echo "nested: eth0 did not appear"; return 1; }
    sleep 0.1
  done
  ip link set lo up && ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 &&
    ip route add default via 10.0.2.2
}

# True when a TCP socket listens on port $1 (/proc/net/tcp: st 0A = TCP_LISTEN, ports in hex).
listening() {
  local hex
  hex=$(printf '%04X' "$1")
  cat /proc/net/tcp /proc/net/tcp6 2>/dev/null |
    awk -v p=":$hex" '$4 == "0A" && substr($2, length($2) - 4) == p { f = 1 } END { exit !f }'
}

# Waits until the background guest command $1 listens on NESTED_READY_PORT (if set), then
# prints NESTED-READY for run.sh to start the host command.
wait_ready() {
  local pid=$1 i=0
  if [ -n "$NESTED_READY_PORT" ]; then
    while ! listening "$NESTED_READY_PORT"; do
      if ! kill -0 "$pid" 2>/dev/null; then
        echo "nested: guest command exited before listening on port $NESTED_READY_PORT"
        return 1
      fi
      i=$((i + 1))
      if [ $i -gt $((NESTED_READY_TIMEOUT * 10)) ]; then
        echo "nested: nothing listens on port $NESTED_READY_PORT after ${NESTED_READY_TIMEOUT}s"
        return 1
      fi
      sleep 0.1
    done
  fi
  echo "NESTED-READY uptime=$(uptime_s) port=${NESTED_READY_PORT:-none}"
}

run_guest_cmd_fg() {
  echo "nested: === guest-cmd: $(cat /nested/guest-cmd)"
  sh /nested/guest-cmd
  rc=$?
  if [ $rc = 0 ]; then result guest-cmd PASS 0; else result guest-cmd FAIL $rc; fi
}

main() {
  local pid="" rc
  check_kvm
  if [ $NET = 1 ]; then
    if net_up; then
      echo "nested: eth0 up at uptime $(uptime_s)"
      result net-up PASS 0
    else
      result net-up FAIL 1
    fi
  fi
  if [ -f /nested/guest-cmd ] && [ "$NESTED_GUEST_BG" = 1 ]; then
    echo "nested: === guest-cmd (background): $(cat /nested/guest-cmd)"
    sh /nested/guest-cmd &
    pid=$!
    wait_ready $pid || result guest-cmd-ready FAIL 1
  fi
  [ "$NESTED_TESTS" = 1 ] && sh /guest-tests.sh
  if [ -n "$pid" ]; then
    wait $pid
    rc=$?
    if [ $rc = 0 ]; then result guest-cmd PASS 0; else result guest-cmd FAIL $rc; fi
  elif [ -f /nested/guest-cmd ]; then
    run_guest_cmd_fg
  fi
}

main
echo "NESTED-DONE uptime=$(uptime_s)"
poweroff -f
# Not reached unless the power-off failed; PID 1 must not exit.
echo o >/proc/sysrq-trigger
while :; do sleep 60; done
