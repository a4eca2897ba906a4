"""Backbone configs: dataclasses that read and write the config.json a directory carries."""

from __future__ import annotations

import dataclasses


class DictConfig:
    model_type = ""

    @classmethod
    def from_dict(cls, d: dict):
        """Known fields only: Hugging Face configs carry many more."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def to_dict(self) -> dict:
        return {"model_type": self.model_type, **dataclasses.asdict(self)}
