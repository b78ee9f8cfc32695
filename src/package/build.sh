#!/bin/sh
# Runs as root inside the package stage's throwaway chroot (/build/build.sh). Build dependencies come from
# debian/control through apt's own resolver (Build-Depends, -Arch and -Indep); the build runs as the
# unprivileged user "builder" with an environment reduced to a clean PATH and locale, so nothing of the
# runner leaks in. noautodbgsym: -dbgsym packages are not wanted for testing, and the install stage takes
# every .deb. DVC_LINTIAN=1 also runs lintian there.
# Lines starting "debian-vm-ci: " are milestones, "debian-vm-ci: FAILED: " names the step that failed
# (src/package/build-log.ts reads both; build-env.ts holds the same prefixes, user and PATH, a test keeps them equal).
set -eu
export DEBIAN_FRONTEND=noninteractive
milestone() { echo "debian-vm-ci: $*"; }
fail() { echo "debian-vm-ci: FAILED: $*"; exit 1; }
as_builder() {
  runuser -u builder -- env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/home/builder LC_ALL=C.UTF-8 \
    DEB_BUILD_OPTIONS="parallel=$(nproc) noautodbgsym" "$@"
}

cd /build/source
milestone "installing build dependencies"
apt-get build-dep --yes --no-install-recommends ./ || fail "installing the build dependencies (apt-get build-dep) exited with status $?"
chown -R builder: /build

milestone "running dpkg-buildpackage --build=binary"
as_builder dpkg-buildpackage --no-sign --build=binary || fail "dpkg-buildpackage exited with status $?"

mkdir /build/out
for f in /build/*.deb /build/*.udeb /build/*.changes /build/*.buildinfo; do
  if [ -e "$f" ]; then mv "$f" /build/out/; fi
done

if [ "${DVC_LINTIAN:-0}" = 1 ]; then
  milestone "installing lintian"
  apt-get install --yes --no-install-recommends lintian || fail "installing lintian exited with status $?"
  milestone "running lintian"
  status=0
  as_builder lintian --display-info --pedantic /build/out/*.changes > /build/lintian.txt || status=$?
  cat /build/lintian.txt
  mv /build/lintian.txt /build/out/lintian.txt
  echo "$status" > /build/out/lintian.status
fi
# uid 0 in the namespace is the caller outside it: the results come out owned by the caller.
chown -R 0:0 /build/out
milestone "build finished"
