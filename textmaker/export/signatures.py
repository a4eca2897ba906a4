"""What an exported file takes and gives, per task, backbone and format, declared as data.

Each runtime has its own conventions, and an exported file follows them so that the
runtime loads it unchanged:
- TFLite: MediaPipe Tasks' and TFLite Task Library's names (`ids`, `mask`,
  `segment_ids`; `probability`, `start_logits`, `end_logits`), int32 inputs of a fixed
  [1, seq_len] shape. A classifier outputs probabilities (softmax in the graph), as
  MediaPipe's classification output expects; the average-word-embedding model takes
  `ids` alone and derives its padding mask from them, as MediaPipe's regex models do.
- ONNX: Hugging Face's names (`input_ids`, `attention_mask`, `token_type_ids`; `logits`,
  `start_logits`, `end_logits`), int64, dynamic batch and sequence axes.
"""

from __future__ import annotations

from dataclasses import dataclass

from textmaker.errors import TextmakerError

BATCH_KEYS = ("input_ids", "attention_mask", "token_type_ids")  # what a padded batch holds


@dataclass(frozen=True)
class Signature:
    inputs: dict[str, str]  # input name in the file -> the batch key it is fed from, in order
    outputs: tuple[str, ...]
    probabilities: bool = False  # the classifier's output is softmax(logits)
    per_token: bool = False  # outputs have a sequence axis (QA)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.inputs)


_HF = {"input_ids": "input_ids", "attention_mask": "attention_mask", "token_type_ids": "token_type_ids"}
_TFLITE_BERT = {"ids": "input_ids", "mask": "attention_mask", "segment_ids": "token_type_ids"}

SIGNATURES: dict[tuple[str, str, str], Signature] = {
    ("text_classifier", "bert", "onnx"): Signature(_HF, ("logits",)),
    ("text_classifier", "awe", "onnx"): Signature({"input_ids": "input_ids", "attention_mask": "attention_mask"},
                                                  ("logits",)),
    ("text_classifier", "bert", "tflite"): Signature(_TFLITE_BERT, ("probability",), probabilities=True),
    ("text_classifier", "awe", "tflite"): Signature({"ids": "input_ids"}, ("probability",), probabilities=True),
    ("question_answerer", "bert", "onnx"): Signature(_HF, ("start_logits", "end_logits"), per_token=True),
    ("question_answerer", "bert", "tflite"): Signature(_TFLITE_BERT, ("start_logits", "end_logits"),
                                                       per_token=True),
}


def backbone_kind(preprocessor) -> str:
    return "awe" if preprocessor.kind == "words" else "bert"


def signature(task: str, preprocessor, fmt: str) -> Signature:
    key = (task, backbone_kind(preprocessor), fmt)
    if key not in SIGNATURES:
        raise TextmakerError(f"no {fmt} export for a {key[1]} {task}")
    return SIGNATURES[key]


def from_metadata(meta: dict) -> Signature:
    """The signature an export directory's metadata.json records."""
    s = meta["signature"]
    return Signature(dict(s["inputs"]), tuple(s["outputs"]), s.get("probabilities", False), s.get("per_token", False))


def to_metadata(sig: Signature) -> dict:
    return {"inputs": sig.inputs, "outputs": list(sig.outputs), "probabilities": sig.probabilities,
            "per_token": sig.per_token}
