"""Backbone configs: dataclasses that read and write the config.json a directory carries."""

from __future__ import annotations

import dataclasses

from textmaker.errors import TextmakerError

MAX_PARAMETERS = 2_000_000_000  # a config asking for more is damaged or not meant for this machine

_KINDS = {"int": ("a whole number", lambda v: isinstance(v, int) and not isinstance(v, bool)),
          "float": ("a number", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)),
          "str": ("text", lambda v: isinstance(v, str)),
          "bool": ("true or false", lambda v: isinstance(v, bool))}


class DictConfig:
    model_type = ""

    @classmethod
    def from_dict(cls, d: dict, source: str = "config.json"):
        """Known fields only (Hugging Face configs carry many more), each of the right type, and a
        model of a size this machine could hold: checked before anything is allocated."""
        if not isinstance(d, dict):
            raise TextmakerError(f"{source}: the encoder settings are not a JSON object")
        values = {}
        for f in dataclasses.fields(cls):
            if f.name in d:
                what, ok = _KINDS[f.type]
                if not ok(d[f.name]):
                    raise TextmakerError(f"{source}: {f.name} is {d[f.name]!r}, expected {what}; the file is damaged")
                values[f.name] = d[f.name]
        config = cls(**values)
        for f in dataclasses.fields(cls):
            value = getattr(config, f.name)
            if f.type == "int" and value < (0 if f.name.endswith("_id") else 1):
                raise TextmakerError(f"{source}: {f.name} is {value}; it must be positive")
        if config.parameters() > MAX_PARAMETERS:
            raise TextmakerError(f"{source}: these sizes make {config.parameters():,} parameters, more than "
                                 f"{MAX_PARAMETERS:,}; the file is damaged or not a model for textmaker")
        config.check(source)
        return config

    def parameters(self) -> int:
        """About how many parameters the config describes."""
        return 0

    def check(self, source: str) -> None:
        """Consistency of the sizes with each other."""

    def to_dict(self) -> dict:
        return {"model_type": self.model_type, **dataclasses.asdict(self)}
