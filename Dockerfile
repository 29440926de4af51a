# wagate: one static-ish binary on Debian slim.
#
#   docker build -t wagate .
#   docker run -p 127.0.0.1:8000:8000 -v wagate-data:/data -e WHATSAPP_VERIFY_TOKEN=... wagate
#
# The binary is stripped ([profile.release] in Cargo.toml); README.md, "The release binary",
# says how to keep its symbols in a separate file.
#
# See README.md, "Deploy", for the full command (secrets, Ollama endpoint, stop timeout).

# ---- build ----------------------------------------------------------------------------------
FROM rust:1-bookworm AS build
WORKDIR /src

# Dependencies first, in their own layer: it is rebuilt only when Cargo.toml or Cargo.lock
# change, not on every source edit. Cargo reads the whole manifest even for `--bin wagate`, so
# every target it names (`[[bench]]`, `[[example]]`, `[[test]]`, by `path` or by default
# location) gets an empty stand-in; auto-discovered targets need none.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs \
 && awk -F'"' ' \
      /^\[\[bench\]\]/   { dir = "benches";  next } \
      /^\[\[example\]\]/ { dir = "examples"; next } \
      /^\[\[test\]\]/    { dir = "tests";    next } \
      /^\[/              { dir = "";         next } \
      dir != "" && /^name *=/ { print dir "/" $2 ".rs" } \
      dir != "" && /^path *=/ { print $2 } \
    ' Cargo.toml \
    | while read -r stub; do mkdir -p "$(dirname "$stub")"; echo 'fn main() {}' > "$stub"; done \
 && cargo build --release --locked --bin wagate \
 && rm -rf src

# The real sources (the stand-ins for other targets stay: only the manifest needs them).
# COPY keeps the files' own modification times, which can be older than the stand-in build
# above; touching the crate roots makes Cargo rebuild wagate itself.
COPY src ./src
RUN touch src/main.rs src/lib.rs \
 && cargo build --release --locked --bin wagate \
 && install -m 0755 target/release/wagate /usr/local/bin/wagate

# ---- runtime --------------------------------------------------------------------------------
FROM debian:bookworm-slim

# CA certificates for outbound TLS (Graph API, model servers, HTTP tools). wagate trusts this
# store as well as its built-in roots: for a server behind a private CA, add its certificate in
# a derived image (`USER root`, `COPY my-ca.crt /usr/local/share/ca-certificates/`,
# `RUN update-ca-certificates`, `USER wagate`)
# or point SSL_CERT_FILE at a mounted bundle.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*

# A fixed uid, so a host directory mounted on /data can be given to it (chown 10001).
RUN groupadd --gid 10001 wagate \
 && useradd --uid 10001 --gid wagate --home-dir /data --no-create-home \
      --shell /usr/sbin/nologin wagate \
 && mkdir -p /data \
 && chown wagate:wagate /data

COPY --from=build /usr/local/bin/wagate /usr/local/bin/wagate
# The shipped config; mount your own over it (`-v ./config:/config:ro`).
COPY config /config

# The same settings as `--config`, `--data` and `--listen`.
ENV WAGATE_CONFIG=/config \
    WAGATE_DATA=/data \
    WAGATE_LISTEN=0.0.0.0:8000

# The inbox and conversation memory (wagate.db): keep it on a volume.
VOLUME ["/data"]
EXPOSE 8000
USER wagate:wagate

# The image has no curl: `wagate healthcheck` GETs /healthz itself (3 s timeout, exit 0 on 200).
# It finds the port in WAGATE_LISTEN above (0.0.0.0:8000 -> http://127.0.0.1:8000/healthz); if
# you change the port, change WAGATE_LISTEN rather than passing `--listen` to serve.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["wagate", "healthcheck"]

# wagate handles SIGTERM itself (it runs as PID 1 here): it stops accepting, lets running turns
# finish within `shutdown_grace_seconds` (20 s by default), and exits 0. Give `docker stop`
# more than that: `--stop-timeout 30`.
ENTRYPOINT ["wagate"]
CMD ["serve"]
