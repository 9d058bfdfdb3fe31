# opsbot in a container: `docker build -t opsbot .`, then
#   docker run -d --name opsbot -v opsbot-data:/var/lib/opsbot --env-file secrets.env -p 8787:8787 opsbot
# (secrets.env: OPSBOT_DISCORD_TOKEN=…, OPSBOT_HOOK_TOKEN=…, OPSBOT_API_TOKEN=…; add
# OPSBOT_DATABASE_URL and [storage] backend = "postgres" for several instances).
# Mount your own bot.toml and commands/ over /etc/opsbot to configure it.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY src src
COPY assets assets
# The manifest names the benches and the test binary: cargo wants them there.
COPY benches benches
COPY tests tests
RUN cargo build --release --locked --bin opsbot

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/opsbot --shell /usr/sbin/nologin opsbot \
 && mkdir -p /var/lib/opsbot && chown opsbot /var/lib/opsbot
COPY --from=build /src/target/release/opsbot /usr/local/bin/opsbot
COPY bot.toml /etc/opsbot/bot.toml
COPY commands /etc/opsbot/commands
# The data in the volume; the intake reachable from outside the container.
RUN sed -i \
      -e 's|^path = "data"|path = "/var/lib/opsbot/data"|' \
      -e 's|^listen = "127.0.0.1:8787"|listen = "0.0.0.0:8787"|' \
      /etc/opsbot/bot.toml \
 && grep -q '^path = "/var/lib/opsbot/data"' /etc/opsbot/bot.toml \
 && grep -q '^listen = "0.0.0.0:8787"' /etc/opsbot/bot.toml
VOLUME /var/lib/opsbot
USER opsbot
WORKDIR /var/lib/opsbot
EXPOSE 8787
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
  CMD curl -fsS http://127.0.0.1:8787/readyz >/dev/null || exit 1
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/opsbot"]
CMD ["run", "--config", "/etc/opsbot/bot.toml"]
