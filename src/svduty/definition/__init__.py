"""The partnership's local definition of serious violence (PCSC Act 2022 s.13).

- :mod:`.catalogue`: candidate offence codes with maximum penalty, statute and harm weight.
- :mod:`.templates`: starting definitions (`default`, `home-office`, `london-vru`, `broad`).
- :mod:`.rules`: load and validate `definition.toml`; apply it to the warehouse (`sv_events`).
- :mod:`.evidence`: the s.13(6) evidence table for each candidate offence group.
- :mod:`.cli`: `svduty definition show | check | evidence`.
"""
