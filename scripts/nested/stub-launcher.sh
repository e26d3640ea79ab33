#!/bin/sh
# Guest side of the host gdb suite on nested KVM (busybox sh; packed by build.sh as
# /stub-launcher.sh). Serves one command per TCP connection, as the program of a persistent
# `nc -ll -p PORT -e /stub-launcher.sh` server started by scripts/nested/test.sh, so that the
# host's gdb tests (tests/common/gdb.rs, remote mode) can start kvmdbg on real KVM with the
# firmware and options each test needs:
#   start WAIT FIRMWARE [ARGS...]  stop the previous stub, start
#                                  `kvmdbg run /fw/FIRMWARE --backend kvm
#                                  --gdb tcp:0.0.0.0:$STUB_GDB_PORT [-S if WAIT=1] ARGS`
#                                  (FIRMWARE with a leading / is that file, e.g. the staged
#                                  kernel /linux/Image.gz); answers READY once it listens,
#                                  else FAILED and its stderr
#   put NAME                       the rest of the connection's input (up to the client's
#                                  end of input) becomes the file /tmp/stub/files/NAME (an
#                                  initramfs or DTB a test made); answers STORED <bytes>
#   status                         RUNNING, or EXITED <exit status>
#   stdout | stderr                what the stub printed so far
#   stop                           stop the stub; answers STOPPED
#   quit                           stop the stub and the server; answers BYE
set -u
export PATH=/bin
STUB_GDB_PORT=${STUB_GDB_PORT:-1234}
DIR=/tmp/stub
mkdir -p "$DIR"

# The stub's process group (setsid made its shell the leader): the shell and kvmdbg.
stop_stub() {
  if [ -s "$DIR/pid" ]; then
    pid=$(cat "$DIR/pid")
    kill -TERM "-$pid" 2>/dev/null
    # Wait (up to 5 s) for it to go, so the next stub can bind the port.
    i=0
    while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
    kill -KILL "-$pid" 2>/dev/null
  fi
  rm -f "$DIR/pid"
}

start_stub() {
  wait_flag=$1 fw=$2
  shift 2
  stop_stub
  rm -f "$DIR/rc" "$DIR/out" "$DIR/err" "$DIR/pid"
  s=""
  [ "$wait_flag" = 1 ] && s=-S
  case $fw in /*) image=$fw ;; *) image=/fw/$fw ;; esac
  # A new session (setsid), so stop_stub can signal its whole process group: the shell
  # records its own pid (the group id) and kvmdbg's exit status. None of its descriptors may
  # stay on this connection (the client reads the answer to EOF). $0 is the state directory.
  RUST_LOG=info setsid sh -c 'echo $$ >"$0/pid"; kvmdbg run "$@" >"$0/out" 2>"$0/err"; echo $? >"$0/rc.new"; mv "$0/rc.new" "$0/rc"' \
    "$DIR" "$image" --backend kvm --gdb "tcp:0.0.0.0:$STUB_GDB_PORT" $s "$@" </dev/null >/dev/null 2>&1 &
  i=0
  while [ $i -lt 600 ]; do
    if grep -q "waiting for gdb on" "$DIR/err" 2>/dev/null; then
      echo READY
      return
    fi
    if [ -e "$DIR/rc" ]; then
      echo "FAILED"
      cat "$DIR/err"
      return
    fi
    sleep 0.1
    i=$((i + 1))
  done
  echo "FAILED: no 'waiting for gdb' within 60 s"
  cat "$DIR/err"
}

read -r cmd args || exit 0
case $cmd in
  start) # shellcheck disable=SC2086
    start_stub $args ;;
  status)
    # Liveness first: the shell writes rc before it exits, so once it is gone rc is final.
    if [ -s "$DIR/pid" ] && kill -0 "$(cat "$DIR/pid")" 2>/dev/null; then echo RUNNING
    elif [ -e "$DIR/rc" ]; then echo "EXITED $(cat "$DIR/rc")"
    else echo "EXITED killed"; tail -n 5 "$DIR/err"; fi ;;
  stdout) cat "$DIR/out" 2>/dev/null ;;
  stderr) cat "$DIR/err" 2>/dev/null ;;
  put)
    # One plain file name: no directories, nothing hidden.
    case $args in ''|*/*|.*|*' '*) echo "BAD NAME"; exit 0 ;; esac
    mkdir -p "$DIR/files"
    cat >"$DIR/files/$args"
    echo "STORED $(wc -c <"$DIR/files/$args")" ;;
  stop) stop_stub; echo STOPPED ;;
  quit) stop_stub; echo BYE; kill "$(cat "$DIR/server.pid" 2>/dev/null)" 2>/dev/null ;;
  *) echo "UNKNOWN $cmd" ;;
esac
