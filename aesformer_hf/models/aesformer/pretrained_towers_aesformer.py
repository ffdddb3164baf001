"""Placeholder: replaced by the pretrained-towers implementation."""


def build_from_pretrained_towers(cls, vision, text=None, **config_overrides):
    raise NotImplementedError("from_vision_text_pretrained is being written")
