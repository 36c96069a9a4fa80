#!/usr/bin/env python3
"""Writes a synthetic Swarm stack with N services (default 1000) to stdout, for bench/migrate.sh.

Every service carries what a real Spring service on Swarm has: image, environment, ports,
deploy.resources / update_config / placement, a healthcheck and a network."""
import sys

n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
out = ['version: "3.9"', "services:"]
for i in range(n):
    out += [
        f"  svc{i:04d}:",
        f"    image: registry.example.com/team{i % 17}/svc{i:04d}:1.{i % 9}.{i % 5}",
        "    environment:",
        "      SPRING_PROFILES_ACTIVE: swarm",
        f"      SERVICE_INDEX: \"{i}\"",
        "      JAVA_OPTS: -Xmx256m -XX:+UseG1GC",
        "    ports:",
        f"      - \"{20000 + i}:8080\"",
        "    networks: [backend]",
        "    healthcheck:",
        "      test: [\"CMD-SHELL\", \"wget -qO- http://localhost:8080/actuator/health || exit 1\"]",
        "      interval: 15s",
        "      timeout: 3s",
        "      retries: 3",
        "    deploy:",
        f"      replicas: {1 + i % 4}",
        "      resources:",
        "        limits: {cpus: \"0.50\", memory: 512M}",
        "        reservations: {cpus: \"0.10\", memory: 128M}",
        "      update_config: {parallelism: 1, delay: 10s, order: start-first}",
        "      placement:",
        f"        constraints: [\"node.labels.zone == z{i % 3}\"]",
    ]
out += ["networks:", "  backend:", "    driver: overlay"]
print("\n".join(out))
