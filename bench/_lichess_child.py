"""The Lichess simulator in a process of its own, with games starting at random.

A fake sharing the interpreter (and its GIL) with the code under test would measure
the interpreter; in a child it does not. The parent drives it through a pipe:
`start` begins starting games (Poisson, `rate` a second over random idle players, each
lasting 1 to 10 minutes; one in twenty a correspondence game), `games` returns every
game started since (id, user, start time, clock), `stats` what the simulator saw
(requests, their sizes, the most in flight at once, 429s), `stop` ends it all.
"""

from __future__ import annotations

import random
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

from tests.fakes.lichess import LichessSimulator
from tests.fakes.server import run_asgi_in_thread

CLOCKS = ("1+0", "3+0", "3+2", "5+0", "10+0", "15+10")


class Driver:
    """Starts games at random (Poisson, `rate` a second) while `driving` is set."""

    def __init__(self, sim: LichessSimulator, names: list[str], rate: float, seed: int) -> None:
        self.sim, self.names, self.rate = sim, names, rate
        self.rng = random.Random(seed)
        self.started: list[tuple[str, str, float, str | None]] = []
        self.ends: dict[str, float] = {}
        self.driving = threading.Event()
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            time.sleep(self.rng.expovariate(self.rate))
            self.end_games(time.time())
            if self.driving.is_set():
                self.start_one(time.time())

    def end_games(self, now: float) -> None:
        for name, end in list(self.ends.items()):
            if end <= now:
                self.sim.end_game(name)
                del self.ends[name]

    def start_one(self, now: float) -> None:
        name = self.rng.choice(self.names)
        if name in self.ends:
            return
        clock = None if self.rng.random() < 0.05 else self.rng.choice(CLOCKS)
        game = self.sim.start_game(name, clock)
        self.started.append((game, name, self.sim.games[game][1], clock))
        self.ends[name] = now + self.rng.uniform(60, 600)


def serve(conn: Connection, players: int, rate: float, seed: int) -> None:
    sim = LichessSimulator()
    names = [f"l{i:05d}" for i in range(players)]
    for name in names:
        sim.add_user(name)
    driver = Driver(sim, names, rate, seed)
    commands = {
        "start": driver.driving.set,
        "pause": driver.driving.clear,
        "games": lambda: list(driver.started),
        "stats": lambda: stats(sim),
    }
    with run_asgi_in_thread(sim, lifespan="off") as url:
        threading.Thread(target=driver.run, daemon=True).start()
        conn.send(url)
        while (command := conn.recv()) != "stop":
            conn.send(commands[command]())
        driver.stop.set()
    conn.send(None)


def stats(sim: LichessSimulator) -> dict[str, Any]:
    statuses = sim.status_requests()
    return {
        "requests": len(sim.requests),
        "status_requests": len(statuses),
        "profile_requests": len(sim.requests) - len(statuses),
        "max_ids": max((r.ids for r in statuses), default=0),
        "peak_in_flight": sim.peak_in_flight,
        "overlaps": sim.overlaps,
        "penalised": sim.penalised,
        "first": min((r.started for r in sim.requests), default=0.0),
        "last": max((r.started for r in sim.requests), default=0.0),
        "starts": [r.started for r in statuses],
    }
