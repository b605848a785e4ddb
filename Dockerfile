# The Go workloads, and nothing else: static binaries need no libc, no shell, no loader.
# Built by harness/image.py from a context holding this file and bin/ (one binary per workload);
# the backend sets the entrypoint per container (/bin/<workload>).
FROM scratch
ARG GO_VERSION=unknown
ARG SOURCE_HASH=unknown
LABEL goreclaim="1" \
      goreclaim.go_version="${GO_VERSION}" \
      goreclaim.source_hash="${SOURCE_HASH}"
COPY bin/ /bin/
