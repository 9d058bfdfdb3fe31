#!/usr/bin/env python3
"""Errbot's `!echo` through its test backend, as fast as it answers.

Errbot 6.2 (from PyPI) runs in this process with its test backend
(`errbot.backends.test.TestBot`: an in-memory chat, no network, no store
write per command). Two ways of sending:

- one at a time: push `!echo N`, wait for the answer, push the next (one
  user typing as fast as the bot answers);
- pipelined: push all N, then read the N answers (the most the backend takes).

Each prints messages answered per second; the answers are checked.

Setup (a venv outside the repository):
    python3 -m venv /var/tmp/errbot-venv
    /var/tmp/errbot-venv/bin/pip install 'errbot==6.2.*' pytest
(its test backend imports pytest).
Run:
    /var/tmp/errbot-venv/bin/python benches/peers/errbot_echo.py [N] [RUNS]
(defaults 2000 messages, 3 runs of each way).
"""

import logging
import os
import sys
import time

from errbot.backends.test import TestBot


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    bot = TestBot(loglevel=logging.ERROR)
    bot.start(timeout=60)
    try:
        # Warm up (plugins loaded, first command compiled).
        for i in range(50):
            bot.push_message(f"!echo warm {i}")
            assert bot.pop_message(timeout=10) == f"warm {i}"
        print(f"errbot {errbot_version()}, Python {sys.version.split()[0]}, "
              f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        for run in range(runs):
            t0 = time.perf_counter()
            for i in range(n):
                bot.push_message(f"!echo one {i}")
                got = bot.pop_message(timeout=10)
                assert got == f"one {i}", got
            one = n / (time.perf_counter() - t0)
            print(f"run {run + 1}: one at a time {one:.0f} !echo/s", flush=True)

            t0 = time.perf_counter()
            for i in range(n):
                bot.push_message(f"!echo many {i}")
            seen = set()
            for _ in range(n):
                seen.add(bot.pop_message(timeout=30))
            many = n / (time.perf_counter() - t0)
            want = {f"many {i}" for i in range(n)}
            # Errbot's test backend may answer a queued message with
            # something else (its flood or error replies): counted, shown.
            odd = sorted(seen - want)[:3]
            print(f"run {run + 1}: pipelined ({n} queued) {many:.0f} answers/s, "
                  f"{len(want & seen)} of {n} echoed right"
                  + (f"; other answers, e.g. {odd}" if odd else ""))
    finally:
        bot.stop()


def errbot_version():
    try:
        from importlib.metadata import version
        return version("errbot")
    except Exception:  # noqa: BLE001 - only for the banner
        return "unknown"


if __name__ == "__main__":
    main()
