# chopin for the TechEmpower Framework Benchmarks (TFB).
#
# TFB builds this file once per test in benchmark_config.json ("dockerfile":
# "Dockerfile") and passes the test's name as the build arg TFB_TEST_NAME:
#   chopin               the "default" test      -> config/chopin.env
#   chopin-multithread   the "multithread" test  -> config/chopin-multithread.env
# The image records that choice (/etc/chopin/preset), so it starts in the right
# flavour with no extra `docker run` flags. At start, scripts/docker-entrypoint
# applies the preset's variables only where the environment does not already
# set them, so `docker run -e CHOPIN_RUNTIME=multithread ...` still overrides.
# Any config/NAME.env is a valid TFB_TEST_NAME; anything else fails the build.
#
#   docker build -t chopin .                                         # default test
#   docker build --build-arg TFB_TEST_NAME=chopin-multithread -t chopin-mt .
#   docker run --rm --network host chopin
#
# TLS 1.3 on 8081 too, with a certificate and key mounted at run time (none is
# copied into the image; TFB mounts none, so the default command starts plain
# HTTP only, and a missing file fails the start naming it):
#   docker run --rm --network host -v "$PWD/certs:/certs:ro" -v "$PWD/data:/data:ro" \
#     chopin --tls-port 8081 --tls-cert /certs/server.crt --tls-key /certs/server.key
# scripts/httparena-export writes HttpArena's entries, whose images start both
# listeners with no arguments.

ARG TFB_TEST_NAME=chopin

# --- 1. Runtime base with the presets; checks TFB_TEST_NAME first, so a bad
# name fails in seconds rather than after the compile. The choice is made in a
# RUN, whose build cache is keyed on the build arg's value in every builder
# (an ENV using the arg is not, in some: podman/buildah reuses it).
FROM debian:bookworm-slim AS preset
COPY config/*.env /etc/chopin/
COPY scripts/docker-entrypoint /usr/local/bin/chopin-entrypoint
ARG TFB_TEST_NAME
RUN name="${TFB_TEST_NAME}"; \
    case "$name" in */*) name="" ;; esac; \
    if [ -z "$name" ] || [ ! -f "/etc/chopin/$name.env" ]; then \
      echo "ERROR: unknown TFB_TEST_NAME '${TFB_TEST_NAME}': there is no config/${TFB_TEST_NAME}.env." >&2; \
      echo "ERROR: valid names (config/*.env): $(cd /etc/chopin && ls -- *.env | sed 's/[.]env$//' | tr '\n' ' ')" >&2; \
      exit 1; \
    fi; \
    echo "$name" > /etc/chopin/preset

# --- 2. Build. No ARG here, so every preset shares this stage's cache.
FROM rust:1.95-bookworm AS build
WORKDIR /src
# The whole context minus .dockerignore: this repository, or the folder
# scripts/tfb-export writes, which holds only what this build needs.
COPY . .
RUN RUSTFLAGS="-C target-cpu=native" cargo build --release --locked --bin chopin \
 && cp target/release/chopin /usr/local/bin/chopin

# --- 3. Runtime: stage 1 plus the binary.
FROM preset
COPY --from=build /usr/local/bin/chopin /usr/local/bin/chopin
EXPOSE 8080 8081
# sh runs the entrypoint, so it works without the executable bit; it execs
# chopin, which then gets signals directly. Arguments given to `docker run
# IMAGE ...` go to chopin.
ENTRYPOINT ["/bin/sh", "/usr/local/bin/chopin-entrypoint"]
CMD []
