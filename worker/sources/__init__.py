"""The worker's sources (SPEC §6, §10; issue 18 item 2): each watches one signal within
its own request budget, applies its own baseline rule, and emits events; none delivers.

* :mod:`worker.sources.chesscom_archive`: Chess.com's monthly archives, per player on
  the learned schedule (`session` events, once a game has ended).
* :mod:`worker.sources.chesscom_streamers`: Chess.com's streamer list, one read per
  period by one worker (`stream` events).
* :mod:`worker.sources.lichess`: Lichess's status API, a sweep over every Lichess
  player, one request at a time across processes (`session` and `stream` events).

:class:`worker.sources.base.Source` is the interface the runner drives;
:mod:`worker.sources.events` is the one way an event enters the outbox.
"""
