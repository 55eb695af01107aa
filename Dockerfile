# chopin for the TechEmpower Framework Benchmarks (TFB).
#
# TFB builds this file once per test in benchmark_config.json ("dockerfile":
# "Dockerfile") and passes the test's name as the build arg TFB_TEST_NAME:
#   chopin               the "default" test      -> config/chopin.env
#   chopin-multithread   the "multithread" test  -> config/chopin-multithread.env
# The image bakes that choice in (ENV CHOPIN_PRESET), so it starts in the right
# flavour with no extra `docker run` flags. At start, scripts/docker-entrypoint
# applies the preset's variables only where the environment does not already
# set them, so `docker run -e CHOPIN_RUNTIME=multithread ...` still overrides.
# Any config/NAME.env is a valid TFB_TEST_NAME; anything else fails the build.
#
#   docker build -t chopin .                                         # default test
#   docker build --build-arg TFB_TEST_NAME=chopin-multithread -t chopin-mt .
#   docker run --rm --network host chopin

ARG TFB_TEST_NAME=chopin

# --- 1. Check the preset first, so a bad TFB_TEST_NAME fails in seconds, not
# after the compile (the classic builder runs stages in order).
FROM debian:bookworm-slim AS preset
ARG TFB_TEST_NAME
COPY config/*.env /etc/chopin/
RUN name="${TFB_TEST_NAME}"; \
    case "$name" in */*) name="" ;; esac; \
    if [ -z "$name" ] || [ ! -f "/etc/chopin/$name.env" ]; then \
      echo "ERROR: unknown TFB_TEST_NAME '${TFB_TEST_NAME}': there is no config/${TFB_TEST_NAME}.env." >&2; \
      echo "ERROR: valid names (config/*.env): $(cd /etc/chopin && ls -- *.env | sed 's/[.]env$//' | tr '\n' ' ')" >&2; \
      exit 1; \
    fi

# --- 2. Build. No ARG here, so every preset shares this stage's cache.
FROM rust:1.95-bookworm AS build
WORKDIR /src
# The whole context minus .dockerignore: Cargo.toml may name targets under
# tests/, examples/ or benches/, and cargo refuses a manifest whose targets are
# missing, even when building only the chopin binary.
COPY . .
RUN RUSTFLAGS="-C target-cpu=native" cargo build --release --locked --bin chopin \
 && cp target/release/chopin /usr/local/bin/chopin

# --- 3. Runtime: the binary, the presets and the entrypoint.
FROM debian:bookworm-slim
ARG TFB_TEST_NAME
COPY --from=preset /etc/chopin/ /etc/chopin/
COPY scripts/docker-entrypoint /usr/local/bin/chopin-entrypoint
COPY --from=build /usr/local/bin/chopin /usr/local/bin/chopin
ENV CHOPIN_PRESET=${TFB_TEST_NAME}
EXPOSE 8080
# sh runs the entrypoint, so it works without the executable bit; it execs
# chopin, which then gets signals directly. Arguments given to `docker run
# IMAGE ...` go to chopin.
ENTRYPOINT ["/bin/sh", "/usr/local/bin/chopin-entrypoint"]
CMD []
