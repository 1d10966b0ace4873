# Sourced by deploy/smoke.sh and deploy/k8s_smoke.sh (not run): podman with runc (crun fails on
# setrlimit on these machines) through a containers.conf of its own (CONTAINERS_CONF), so the
# machine's podman configuration is left alone.
podman_conf() {  # folder: writes folder/containers.conf and exports CONTAINERS_CONF
  # Limits no higher than this machine's hard ones: podman's defaults (nofile and nproc at
  # 1048576/4194304) are refused here ("error setting rlimit ... operation not permitted").
  local nofile
  nofile=$(ulimit -Hn)
  [[ $nofile =~ ^[0-9]+$ ]] || nofile=65536
  cat >"$1/containers.conf" <<EOF
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
[containers]
log_driver = "k8s-file"
default_ulimits = ["nofile=$nofile:$nofile", "nproc=8192:8192"]
EOF
  export CONTAINERS_CONF=$1/containers.conf
}
